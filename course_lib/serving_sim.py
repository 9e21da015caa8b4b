"""A simulated server: the serving loop on a simulated clock, with step times from a cost
model measured on this machine; and what its sweeps say about capacity and replicas.

Arithmetic layer. A real serving run (course_lib.serving_loop) takes as long as its
traffic: a minute of traffic is a minute of waiting. The simulator runs the very same loop
(course_lib.scheduler.run) with an engine that does no arithmetic at all: each prefill
adds `CostModel.prefill_s(tokens)` to a clock, each decode step `CostModel.decode_s(batch)`.
The cost model is two straight lines fitted to step times measured on the real engine
(serving_loop.measure_step_times):

    prefill seconds = fixed + per token x tokens in the pass
    decode seconds  = fixed + per sequence x batch size

where the prompts admitted together are padded to the longest of them (course_lib.
serving_loop), so a prefill pass holds (prompts x longest prompt) tokens.

A sweep over load then takes milliseconds instead of minutes. What the simulator leaves
out (the loop's own bookkeeping, the noise of a shared machine, a decode step's slight
growth with context) is what separates it from a real run; notebook 09 measures the gap
at three loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from course_lib import validate
from course_lib.formatting import fmt
from course_lib.scheduler import MAX_SLOTS, Policy, RunSummary, ServingRun, run
from course_lib.traffic import Request


@dataclass(frozen=True)
class CostModel:
    """Seconds per step of one server: straight lines in prompt tokens and in batch size."""

    prefill_fixed_s: float
    prefill_per_token_s: float
    decode_fixed_s: float
    decode_per_sequence_s: float

    def __post_init__(self) -> None:
        for field in ("prefill_fixed_s", "prefill_per_token_s", "decode_fixed_s",
                      "decode_per_sequence_s"):
            validate.positive(field, getattr(self, field), allow_zero=True)

    def prefill_s(self, tokens: float) -> float:
        """One prefill pass over `tokens` tokens (all its prompts, padding included)."""
        seconds = self.prefill_fixed_s + self.prefill_per_token_s * validate.positive(
            "tokens", tokens, allow_zero=True)
        return validate.result("prefill seconds", seconds, tokens=tokens)

    def decode_s(self, batch_size: int) -> float:
        seconds = self.decode_fixed_s + self.decode_per_sequence_s * validate.whole(
            "batch_size", batch_size, lowest=0)
        return validate.result("decode seconds", seconds, batch_size=batch_size)

    def with_chunked_prefill(self) -> CostModel:
        """The same steps with prefill's fixed part dropped: prompts ride along in the
        decode steps (chunked prefill, as vLLM and SGLang do), which read the weights
        anyway, so a prompt adds only its own arithmetic."""
        return replace(self, prefill_fixed_s=0.0)

    def describe(self) -> str:
        """'prefill 1.5 ms + 48.5 µs per token; decode 1.27 ms + 0.173 ms per sequence'."""
        return (f"prefill {fmt(self.prefill_fixed_s * 1e3)} ms + "
                f"{fmt(self.prefill_per_token_s * 1e6)} µs per token; decode "
                f"{fmt(self.decode_fixed_s * 1e3)} ms + {fmt(self.decode_per_sequence_s * 1e3)}"
                f" ms per sequence")


def fit_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through the points, neither below 0
    (a step never takes negative time, nor less time for more work)."""
    xs, ys = validate.series("x", x), validate.series("y (step seconds)", y, allow_zero=False)
    if xs.size < 2 or xs.shape != ys.shape or np.ptp(xs) == 0:
        raise ValueError("a line needs at least two points with different x, and one y per x")
    slope, intercept = np.polyfit(xs, ys, 1)
    if slope < 0:
        return float(np.mean(ys)), 0.0
    if intercept < 0:
        return 0.0, float(np.dot(xs, ys) / np.dot(xs, xs))
    return float(intercept), float(slope)


def fit_cost_model(prefill_tokens: Sequence[int], prefill_seconds: Sequence[float],
                   decode_batches: Sequence[int], decode_seconds: Sequence[float]) -> CostModel:
    """A CostModel through measured step times: prefill passes by the tokens they held,
    decode steps by their batch size."""
    validate.series("prefill_tokens", prefill_tokens)
    validate.series("decode_batches", decode_batches)
    validate.series("prefill_seconds", prefill_seconds, allow_zero=False)  # a step takes time
    validate.series("decode_seconds", decode_seconds, allow_zero=False)
    return CostModel(*fit_line(prefill_tokens, prefill_seconds),
                     *fit_line(decode_batches, decode_seconds))


def fit_to_runs(runs: Sequence[ServingRun]) -> tuple[CostModel, list[float]]:
    """A cost model fitted to every step that real runs took, and its jitter (each decode
    step's time divided by the model's): the machine as it was during those runs."""
    runs = validate.items("runs", runs, ServingRun)
    prefill = [(n, t) for r in runs for n, t in zip(r.prefill_tokens, r.prefill_seconds,
                                                     strict=True)]
    decode = [(b, t) for r in runs for b, t in zip(r.batch_sizes, r.decode_seconds,
                                                   strict=True)]
    if len(prefill) < 2 or len(decode) < 2:
        raise ValueError(f"runs must hold at least two prefill passes and two decode steps to fit "
                         f"lines to, got {len(prefill)} and {len(decode)}")
    cost = fit_cost_model(*zip(*prefill, strict=True), *zip(*decode, strict=True))
    return cost, [t / cost.decode_s(b) for b, t in decode]


class SimulatedEngine:
    """An engine whose steps only move a clock forward by what the cost model says, each
    step multiplied by a factor drawn at random from `jitter` if given (measured step
    times divided by the cost model's: the noise of a real machine)."""

    def __init__(self, cost: CostModel, slots: int, context: int,
                 jitter: Sequence[float] = (), seed: int = 0):
        self.cost = validate.instance("cost", cost, CostModel)
        self.slots = validate.whole("slots", slots, highest=MAX_SLOTS)
        self.context = validate.whole("context", context)
        jitter = validate.series("jitter", jitter, allow_zero=False, allow_empty=True)
        self.jitter = jitter if jitter.size else None
        self.rng = np.random.default_rng(validate.whole("seed", seed, lowest=0))
        self.clock = 0.0

    def _noise(self) -> float:
        return 1.0 if self.jitter is None else float(self.rng.choice(self.jitter))

    def now(self) -> float:
        return self.clock

    def wait_until(self, t: float) -> None:
        self.clock = max(self.clock, t)

    def prefill(self, slots: Sequence[int], requests: Sequence[Request]) -> None:
        longest = max(request.prompt_tokens for request in requests)
        self.clock += self.cost.prefill_s(len(requests) * longest) * self._noise()

    def decode(self, slots: Sequence[int]) -> None:
        self.clock += self.cost.decode_s(len(slots)) * self._noise()


def simulate(requests: Sequence[Request], policy: Policy, cost: CostModel, *, context: int,
             queue_limit: int = 256, time_bound_s: float = 3600.0,
             jitter: Sequence[float] = (), seed: int = 0) -> ServingRun:
    """The serving loop on a simulated clock: what a real run of `requests` would record."""
    validate.instance("policy", policy, Policy)
    engine = SimulatedEngine(cost, policy.max_batch, context, jitter, seed)
    return run(requests, engine, policy, queue_limit=queue_limit, time_bound_s=time_bound_s)


@validate.checked
def agreement(real: RunSummary, simulated: RunSummary) -> dict[str, float]:
    """Relative gap, simulated / real - 1, of p50 and p99 time per output token and of
    throughput (output tokens per second)."""
    if real.served == 0:  # nothing to compare with: every gap would divide by zero
        raise ValueError("real must be the summary of a run that served requests, got one that "
                         "served none")
    pairs = {"p50 TPOT": (real.tpot_p50_s, simulated.tpot_p50_s),
             "p99 TPOT": (real.tpot_p99_s, simulated.tpot_p99_s),
             "throughput": (real.tokens_per_s, simulated.tokens_per_s)}
    return {name: sim / measured - 1 for name, (measured, sim) in pairs.items()}


# --- Capacity and replicas ------------------------------------------------------------------


def capacity_requests_per_s(cost: CostModel, batch_size: int, prompt_tokens: float,
                            output_tokens: float) -> float:
    """Requests per second one server sustains with `batch_size` sequences decoding at once,
    if each request has a prefill pass of its own (which pauses decoding) and shares
    output_tokens - 1 decode steps with batch_size - 1 others. A lower bound where several
    requests share a prefill pass."""
    validate.instance("cost", cost, CostModel)
    batch = validate.whole("batch_size", batch_size, highest=MAX_SLOTS)
    validate.positive("prompt_tokens", prompt_tokens, allow_zero=True)
    validate.positive("output_tokens", output_tokens)
    per_request = (cost.prefill_s(prompt_tokens)
                   + max(output_tokens - 1, 0) * cost.decode_s(batch) / batch)
    if per_request == 0:
        raise ValueError(f"prompt_tokens ({prompt_tokens!r}) and output_tokens "
                         f"({output_tokens!r}) take no time by this cost model: no capacity")
    return 1.0 / per_request


def highest_load_within(loads: Sequence[float], p99s: Sequence[float], target: float) -> float:
    """The highest of `loads` (ascending) whose p99 latency meets `target`, with every lower
    load meeting it too; 0 if even the lowest misses it."""
    levels = validate.series("loads", loads)
    if np.any(np.diff(levels) < 0):
        raise ValueError(f"loads must be in ascending order, got {loads!r:.80}")
    if validate.series("p99s", p99s, allow_nan=True).size != levels.size:
        raise ValueError(f"p99s must hold one p99 per load: {len(p99s)} for {len(loads)} loads")
    validate.positive("target", target)
    best = 0.0
    for load, p99 in zip(loads, p99s, strict=True):
        if not p99 <= target:  # NaN (nothing served) misses the target too
            break
        best = load
    return best


def replicas_needed(requests_per_s: float, per_replica_requests_per_s: float,
                    max_utilisation: float) -> int:
    """Replicas to serve requests_per_s when each may run at most max_utilisation of its
    capacity (the load fraction at which the latency target still holds)."""
    rate = validate.positive("requests_per_s", requests_per_s)
    capacity = validate.positive("per_replica_requests_per_s", per_replica_requests_per_s)
    usable = validate.positive("max_utilisation", max_utilisation, upper=1)
    usable_capacity = capacity * usable  # 0 only where the product underflows
    needed = rate / usable_capacity if usable_capacity > 0 else math.inf
    return math.ceil(validate.result("replicas needed", needed, requests_per_s=requests_per_s,
                                     per_replica_requests_per_s=per_replica_requests_per_s))


# --- Speculative decoding, in expectation ---------------------------------------------------


def expected_tokens_per_step(acceptance: float, k: int) -> float:
    """Tokens one speculative round yields on average when each of the k proposals is
    accepted with probability `acceptance` (given the ones before it were):
    (1 - a^(k+1)) / (1 - a), Leviathan et al. 2023, equation 1; k + 1 when a = 1."""
    a = validate.positive("acceptance", acceptance, allow_zero=True, upper=1)
    k = validate.whole("k", k)
    return float(k + 1) if a == 1 else (1 - a ** (k + 1)) / (1 - a)


def speculative_speed_up(acceptance: float, k: int, cost_ratio: float) -> float:
    """Expected speed-up over plain decoding when a draft step costs cost_ratio target
    steps and checking k + 1 tokens costs one target step (true where decoding is
    memory-bound): tokens per round / (k x cost_ratio + 1), Leviathan et al. 2023."""
    c = validate.positive("cost_ratio (draft step time / target step time)", cost_ratio,
                          allow_zero=True)
    return expected_tokens_per_step(acceptance, k) / (k * c + 1)
