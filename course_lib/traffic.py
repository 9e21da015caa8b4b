"""Traffic to a server, and what a serving run measured: requests, arrivals, latency
percentiles, Little's law and goodput.

Arithmetic layer (numpy and the standard library). The serving loop
(course_lib.scheduler), run for real (course_lib.serving_loop) or simulated
(course_lib.serving_sim), fills one `RequestRecord` per request; everything here reads
those records, so a real run and a simulated one are summarised by the same code.

**The load.** Users arrive independently of each other and of how busy the server is
(an *open loop*): the gaps between arrivals are exponential, so the arrivals form a
Poisson process with `rate_per_s` requests per second on average. Prompt lengths are
uniform between two bounds; output lengths follow a geometric distribution (many short
answers, a few long ones: a long tail, like real chat traffic), capped at `longest_output`.
Everything is drawn from one seeded generator: the same seed gives the same requests.

**The latencies of one request** (what a serving benchmark such as vLLM's reports):
queueing time (arrival to the start of its prefill), time to first token (TTFT, arrival
to the first token), time per output token (TPOT, the mean gap between its later tokens)
and end-to-end latency (arrival to the last token).

**Little's law** (Little 1961): in any system where requests arrive, stay a while and
leave, the mean number inside equals the arrival rate times the mean time each spends
inside, L = lambda x W, whatever the arrival pattern or the scheduling. Measured three
independent ways (the server's own count of requests in the system, the arrivals, each
request's time stamps) it checks that the measurements agree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from course_lib import validate

WAITING, SERVED, REJECTED, CUT_OFF = "waiting", "served", "rejected", "cut off"
MAX_REQUESTS = 10**6  # requests one workload may hold: a million take seconds to draw
MOST_TOKENS = 10**9  # tokens a prompt or an answer may have: far beyond any model's context


@dataclass(frozen=True)
class Request:
    """One user's request: when it arrives (seconds after the start), its prompt length and
    how many tokens it asks for."""

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        validate.whole("id", self.id, lowest=0)
        validate.positive("arrival_s", self.arrival_s, allow_zero=True)
        # 0 tokens is allowed here: the serving loop refuses such a request with its reason
        validate.whole("prompt_tokens", self.prompt_tokens, lowest=0)
        validate.whole("output_tokens", self.output_tokens, lowest=0)


@validate.checked
def poisson_arrivals(rate_per_s: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` arrival times (s) of a Poisson process: exponential gaps of mean 1 / rate."""
    rate = validate.positive("rate_per_s (requests per second)", rate_per_s)
    count = validate.whole("count", count, highest=MAX_REQUESTS)
    return validate.result("arrival times", np.cumsum(rng.exponential(1.0 / rate, count)),
                           rate_per_s=rate_per_s)


@validate.checked
def output_lengths(count: int, mean: float, longest: int, rng: np.random.Generator
                   ) -> np.ndarray:
    """`count` output lengths: geometric on 1, 2, 3, ... with mean `mean`, capped at `longest`."""
    longest = validate.whole("longest (output tokens)", longest, highest=MOST_TOKENS)
    mean = validate.positive("mean (output tokens)", mean, lowest=1, upper=longest)
    lengths = rng.geometric(1.0 / mean, validate.whole("count", count, highest=MAX_REQUESTS))
    return np.minimum(lengths, longest)


def workload(count: int, rate_per_s: float, *, prompt_tokens: tuple[int, int] = (4, 16),
             mean_output: float = 16, longest_output: int = 48, seed: int = 0
             ) -> list[Request]:
    """`count` requests arriving at `rate_per_s` on average, prompt lengths uniform in
    prompt_tokens (both ends included), output lengths geometric (see output_lengths)."""
    validate.instance("prompt_tokens", prompt_tokens, (tuple, list), " (shortest, longest)")
    if len(prompt_tokens) != 2:
        raise ValueError(f"prompt_tokens must be a pair (shortest, longest), got {prompt_tokens!r}")
    low = validate.whole("prompt_tokens[0] (shortest)", prompt_tokens[0], highest=MOST_TOKENS)
    high = validate.whole("prompt_tokens[1] (longest)", prompt_tokens[1], lowest=low,
                          highest=MOST_TOKENS)
    longest = validate.whole("longest_output", longest_output, highest=MOST_TOKENS)
    validate.positive("mean_output", mean_output, lowest=1, upper=longest)
    rng = np.random.default_rng(validate.whole("seed", seed, lowest=0))
    arrivals = poisson_arrivals(rate_per_s, count, rng)
    prompts = rng.integers(low, high + 1, count)
    outputs = output_lengths(count, mean_output, longest_output, rng)
    return [Request(i, float(t), int(p), int(n))
            for i, (t, p, n) in enumerate(zip(arrivals, prompts, outputs, strict=True))]


@dataclass
class RequestRecord:
    """What happened to one request: its status, the reason if it was refused, and the time
    stamps (s, on the run's clock) of its admission, first token and last token."""

    request: Request
    status: str = WAITING
    reason: str = ""
    admitted_s: float | None = None
    first_token_s: float | None = None
    finished_s: float | None = None
    tokens: int = 0

    def add_token(self, now: float) -> None:
        """One more output token, produced at `now`."""
        self.tokens += 1
        if self.tokens == 1:
            self.first_token_s = now
        if self.tokens == self.request.output_tokens:
            self.finished_s, self.status = now, SERVED

    def refuse(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason

    @property
    def queueing_s(self) -> float:
        return self.admitted_s - self.request.arrival_s

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.request.arrival_s

    @property
    def tpot_s(self) -> float | None:
        """Mean gap between output tokens after the first; None for a one-token answer."""
        if self.request.output_tokens < 2:
            return None
        return (self.finished_s - self.first_token_s) / (self.request.output_tokens - 1)

    @property
    def latency_s(self) -> float:
        return self.finished_s - self.request.arrival_s


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100) of `samples`, interpolating linearly between the two
    nearest ranks (numpy's default): p50 is the median, p99 the value 99% stay below."""
    values = validate.series("samples (durations or counts)", samples)
    return float(np.percentile(values, validate.positive("q (percent)", q, allow_zero=True,
                                                          upper=100)))


def _records(records: Sequence[RequestRecord]) -> list[RequestRecord]:
    return validate.items("records", records, RequestRecord, allow_empty=True)


def served(records: Sequence[RequestRecord]) -> list[RequestRecord]:
    return [r for r in _records(records) if r.status == SERVED]


def goodput(records: Sequence[RequestRecord], duration_s: float, *, ttft_target_s: float,
            tpot_target_s: float) -> float:
    """Requests per second served within both targets (time to first token and time per
    output token): the throughput a user would call useful."""
    duration = validate.positive("duration_s", duration_s)
    ttft = validate.positive("ttft_target_s", ttft_target_s)
    tpot = validate.positive("tpot_target_s", tpot_target_s)
    good = [r for r in served(records)
            if r.ttft_s <= ttft and (r.tpot_s is None or r.tpot_s <= tpot)]
    return validate.result("goodput", len(good) / duration, duration_s=duration_s)


def _gauge(times: Sequence[float], counts: Sequence[float], prefix: str = ""
           ) -> tuple[np.ndarray, np.ndarray]:
    """(times, counts) as float arrays: a gauge's readings, one count (>= 0) per time (>= 0)."""
    t = validate.series(f"{prefix}times", times)
    c = validate.series(f"{prefix}counts", counts)
    if c.size != t.size:
        raise ValueError(f"{prefix}counts must hold one count per time: {c.size} counts for "
                         f"{t.size} times")
    return t, c


def time_average(times: Sequence[float], counts: Sequence[float], end_s: float) -> float:
    """Mean of a count that holds counts[i] from times[i] until times[i + 1] (the last until
    end_s): the time-weighted mean of a gauge sampled at those instants."""
    t, c = _gauge(times, counts)
    t = np.append(t, validate.positive("end_s", end_s, allow_zero=True))
    widths = np.diff(t)
    if np.any(widths < 0) or widths.sum() <= 0:
        raise ValueError("times must rise and end before end_s, over a span longer than 0")
    return validate.result("time average", float(np.dot(widths, c) / widths.sum()),
                           end_s=end_s)


@dataclass(frozen=True)
class LittlesLaw:
    """The three sides of L = lambda x W, measured over one window of a run."""

    arrival_rate_per_s: float  # lambda: requests that entered the system per second
    mean_time_in_system_s: float  # W: from each request's own time stamps
    mean_in_system: float  # L: the server's count of requests inside, averaged over time

    @property
    def predicted_in_system(self) -> float:
        """lambda x W: what Little's law says L must be."""
        return self.arrival_rate_per_s * self.mean_time_in_system_s

    @property
    def relative_gap(self) -> float:
        """(L - lambda W) / lambda W."""
        return self.mean_in_system / self.predicted_in_system - 1


def littles_law(records: Sequence[RequestRecord], gauge_times: Sequence[float],
                gauge_counts: Sequence[float], end_s: float) -> LittlesLaw:
    """Little's law over the window from the first arrival to end_s, for the requests that
    entered the system (rejected ones never did; one still inside at end_s counts until
    end_s). gauge_*: the server's count of requests inside (queued or being served),
    sampled at the start of every step of its loop."""
    times, counts = _gauge(gauge_times, gauge_counts, prefix="gauge_")
    end_s = validate.positive("end_s", end_s, allow_zero=True)
    entered = [r for r in _records(records)
               if r.status != REJECTED and r.request.arrival_s <= end_s]
    if not entered:
        raise ValueError(f"no request entered the system by end_s ({end_s:g} s): Little's law "
                         "needs at least one")
    start = min(r.request.arrival_s for r in entered)
    if end_s == start:
        raise ValueError(f"end_s must come after the first arrival ({start:g} s), got {end_s!r}")
    inside = [min(end_s if r.finished_s is None else r.finished_s, end_s) - r.request.arrival_s
              for r in entered]
    before = counts[times < start]  # the count when the window opens: the last one before it
    keep = times >= start
    times = np.concatenate([[start], times[keep]])
    counts = np.concatenate([[before[-1] if before.size else 0.0], counts[keep]])
    return LittlesLaw(len(entered) / (end_s - start), float(np.mean(inside)),
                      time_average(times, counts, end_s))
