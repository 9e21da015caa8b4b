"""The serving loop and its batching policies, whatever runs the model.

Arithmetic layer. A server holds a fixed number of *slots*, each able to hold one
sequence (its KV cache). Requests arrive (course_lib.traffic), wait in a queue, are
admitted into free slots (a **prefill**: the prompts admitted together go through the model
in one pass, and each gives its first token), then advance one token per **decode step**,
all active sequences together as one batch, and leave when their answer is complete.
`run` is that loop, shown whole in notebook 09. What decides who gets a slot is the **policy**:

- one at a time: a single slot; the next request starts when the last one is done;
- static batching: wait until `max_batch` requests are queued (or the oldest has waited
  `batch_wait_s`), run that batch until every sequence in it is done, then start the next;
  slots freed by short answers stay empty until the whole batch is done;
- continuous batching (iteration-level scheduling, Yu et al. 2022, Orca; vLLM, SGLang,
  TGI): at every step, free slots are refilled from the queue at once.

The loop asks an `Engine` for the clock and the work. course_lib.serving_loop's engine
runs TinyGPT for real on the wall clock; course_lib.serving_sim's adds modelled step times
to a simulated clock. Both go through this same loop, so they schedule identically.

Defined behaviour: a request with an empty prompt, no output tokens, more tokens than the
context holds, or arriving at a full queue is refused at once with its reason (status
"rejected"); every run stops at `time_bound_s`, and what is unfinished then is marked
"cut off" with its reason. No step can wait for an event that never comes, so the loop
cannot deadlock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from course_lib import validate
from course_lib.traffic import (
    CUT_OFF,
    REJECTED,
    SERVED,
    WAITING,
    LittlesLaw,
    Request,
    RequestRecord,
    goodput,
    littles_law,
)

MAX_SLOTS = 2**16  # sequences one server may hold at once: far more than any real one


@runtime_checkable  # so that run can tell an engine from a wrong argument
class Engine(Protocol):
    """What the loop needs from whatever runs the model: a clock, and two kinds of step."""

    slots: int  # sequences it holds at once, each with its own KV cache
    context: int  # most tokens (prompt + output) one sequence may hold: the block_size

    def now(self) -> float: ...  # seconds since the run started

    def wait_until(self, t: float) -> None: ...  # idle until time t

    def prefill(self, slots: Sequence[int], requests: Sequence[Request]) -> None:
        """The requests' prompts into those slots, in one pass: each gives its first token."""

    def decode(self, slots: Sequence[int]) -> None: ...  # one more token for each, as a batch


@dataclass(frozen=True)
class Policy:
    """Who gets a slot: at most max_batch sequences at once; refill=True refills a freed
    slot at the next step (continuous), False waits for the whole batch (static)."""

    name: str
    max_batch: int
    refill: bool
    batch_wait_s: float = 0.0  # static only: longest wait of the oldest request for a batch

    def __post_init__(self) -> None:
        validate.instance("name", self.name, str)
        validate.whole("max_batch", self.max_batch, highest=MAX_SLOTS)
        validate.flag("refill", self.refill)
        validate.positive("batch_wait_s", self.batch_wait_s, allow_zero=True)


def one_at_a_time() -> Policy:
    return Policy("one at a time", 1, refill=True)


def static_batching(batch_size: int, wait_s: float) -> Policy:
    """Batches of batch_size (fewer if the oldest request has waited wait_s), run to the end."""
    batch = validate.whole("batch_size", batch_size, highest=MAX_SLOTS)
    return Policy(f"static batching ({batch})", batch, refill=False,
                  batch_wait_s=validate.positive("wait_s", wait_s, allow_zero=True))


def continuous_batching(max_batch: int) -> Policy:
    batch = validate.whole("max_batch", max_batch, highest=MAX_SLOTS)
    return Policy(f"continuous batching ({batch})", batch, refill=True)


@dataclass(frozen=True)
class RunSummary:
    """One run in numbers: counts, throughput, and p50/p99 of each latency (s)."""

    policy: str
    served: int
    rejected: int
    cut_off: int
    duration_s: float
    tokens_per_s: float  # output tokens of served requests per second of the run
    requests_per_s: float
    mean_batch: float  # sequences per decode step, on average
    ttft_p50_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p99_s: float
    latency_p50_s: float
    latency_p99_s: float


def _percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99), NaN when there is nothing to summarise."""
    if not values:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99)


def _per_second(count: int, duration_s: float) -> float:
    """count / duration_s; 0 for nothing served, even by a run that took no time (its only
    requests refused on arrival), NaN for something served in no time."""
    if count == 0:
        return 0.0
    return count / duration_s if duration_s > 0 else float("nan")


@dataclass
class ServingRun:
    """Everything one run recorded: one record per request (in id order), the server's count
    of requests inside (queued or in a slot) at the start of every loop step, the size and
    duration of every prefill pass (its tokens, padding included) and decode step, the end
    time, and the tokens each request received
    (real runs only)."""

    policy: Policy
    records: list[RequestRecord]
    gauge_times: list[float] = field(default_factory=list)
    gauge_counts: list[int] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    decode_seconds: list[float] = field(default_factory=list)  # each decode step's duration
    prefill_tokens: list[int] = field(default_factory=list)  # prompts x longest prompt
    prefill_seconds: list[float] = field(default_factory=list)
    end_s: float = 0.0
    outputs: dict[int, list[int]] = field(default_factory=dict)

    def note_prefill(self, requests: Sequence[Request], seconds: float) -> None:
        self.prefill_tokens.append(len(requests) * max(r.prompt_tokens for r in requests))
        self.prefill_seconds.append(seconds)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def duration_s(self) -> float:
        """From the first arrival to the end of the run."""
        return self.end_s - min(r.request.arrival_s for r in self.records)

    def summary(self, arrived_after_s: float = 0.0) -> RunSummary:
        """Counts, throughput and latency percentiles. arrived_after_s > 0 leaves out the
        requests that arrived earlier (a server filling up: not yet its steady state) from
        the percentiles, and measures throughput from that time on."""
        done = [r for r in self.records if r.status == SERVED
                and r.request.arrival_s >= arrived_after_s]
        tokens = sum(r.request.output_tokens for r in done)
        tpot = [r.tpot_s for r in done if r.tpot_s is not None]
        duration = self.duration_s if arrived_after_s <= 0 else self.end_s - arrived_after_s
        return RunSummary(
            self.policy.name, len(done), self.count(REJECTED), self.count(CUT_OFF),
            duration, _per_second(tokens, duration), _per_second(len(done), duration),
            float(np.mean(self.batch_sizes)) if self.batch_sizes else 0.0,
            *_percentiles([r.ttft_s for r in done]), *_percentiles(tpot),
            *_percentiles([r.latency_s for r in done]))

    def littles_law(self) -> LittlesLaw:
        return littles_law(self.records, self.gauge_times, self.gauge_counts, self.end_s)

    def goodput(self, ttft_target_s: float, tpot_target_s: float) -> float:
        """Requests per second served within both latency targets."""
        return goodput(self.records, self.duration_s, ttft_target_s=ttft_target_s,
                       tpot_target_s=tpot_target_s)


def refusal(request: Request, context: int, queued: int, queue_limit: int) -> str:
    """Why a request arriving now is refused, or "" if it may join the queue."""
    validate.instance("request", request, Request)
    validate.whole("context", context)
    validate.whole("queued", queued, lowest=0)
    validate.whole("queue_limit", queue_limit, lowest=0)
    if request.prompt_tokens < 1:
        return "an empty prompt: the model needs at least one token to continue"
    if request.output_tokens < 1:
        return f"asks for {request.output_tokens} output tokens: nothing to generate"
    if request.prompt_tokens + request.output_tokens > context:
        return (f"longer than the context: {request.prompt_tokens} prompt + "
                f"{request.output_tokens} output tokens > {context}")
    if queued >= queue_limit:
        return f"the queue is full ({queue_limit} requests waiting)"
    return ""


@validate.checked
def run(requests: Sequence[Request], engine: Engine, policy: Policy, *,
        queue_limit: int = 256, time_bound_s: float = 60.0) -> ServingRun:
    """Serve `requests` on `engine` under `policy`; stop when all are done or at time_bound_s.

    Each pass of the loop: arrivals join the queue (or are refused), free slots take
    waiting requests (prefill), every active sequence gets one token (one decode step, as
    a batch), finished ones leave. With nothing to do, the engine idles until the next
    event: an arrival, or the end of a static batch's wait. Shown whole in notebook 09.
    """
    validate.whole("queue_limit", queue_limit, lowest=0)
    validate.positive("time_bound_s", time_bound_s)
    requests = validate.items("requests", requests, Request, allow_empty=True)
    records = [RequestRecord(r) for r in sorted(requests, key=lambda r: (r.arrival_s, r.id))]
    arriving = deque(records)  # not arrived yet, in order of arrival
    queue: deque[RequestRecord] = deque()  # arrived, waiting for a slot
    active: dict[int, RequestRecord] = {}  # slot -> the request it holds
    result = ServingRun(policy, sorted(records, key=lambda r: r.request.id))
    while (arriving or queue or active) and engine.now() < time_bound_s:
        now = engine.now()
        _arrive(arriving, queue, now, engine.context, queue_limit)
        result.gauge_times.append(now)
        result.gauge_counts.append(len(queue) + len(active))
        admitted = _admit(policy, queue, active, engine.slots, now)
        if admitted:
            began = engine.now()
            engine.prefill(admitted, [active[slot].request for slot in admitted])
            now = engine.now()
            for slot in admitted:  # the prompts are in, and each has its first token
                active[slot].admitted_s = began
                active[slot].add_token(now)
            result.note_prefill([active[slot].request for slot in admitted], now - began)
        decoding = [slot for slot, record in active.items() if record.status != SERVED]
        if decoding:
            began = engine.now()
            engine.decode(decoding)  # one more token for every active sequence
            now = engine.now()
            for slot in decoding:
                active[slot].add_token(now)
            result.batch_sizes.append(len(decoding))
            result.decode_seconds.append(now - began)
        for slot in [slot for slot, record in active.items() if record.status == SERVED]:
            del active[slot]  # retire: the slot is free again
        if not admitted and not decoding and (arriving or queue):  # else the run is over
            engine.wait_until(_next_event(policy, arriving, queue, time_bound_s))
    result.end_s = engine.now()
    _cut_off(records, time_bound_s)
    return result


def _arrive(arriving: deque, queue: deque, now: float, context: int, queue_limit: int) -> None:
    """Requests whose arrival time has come join the queue, or are refused with a reason."""
    while arriving and arriving[0].request.arrival_s <= now:
        record = arriving.popleft()
        reason = refusal(record.request, context, len(queue), queue_limit)
        if reason:
            record.refuse(REJECTED, reason)
        else:
            queue.append(record)


def _batch_deadline(policy: Policy, queue: deque) -> float:
    """When a static batch starts even if not full: the oldest request's arrival + wait."""
    return queue[0].request.arrival_s + policy.batch_wait_s


def _admit(policy: Policy, queue: deque, active: dict, slots: int, now: float) -> list[int]:
    """Move waiting requests into free slots as the policy allows; return those slots."""
    if not queue:
        return []
    if not policy.refill and (active or (
            len(queue) < policy.max_batch and now < _batch_deadline(policy, queue))):
        return []  # static: the running batch goes first; a new one waits to fill up
    free = [slot for slot in range(min(slots, policy.max_batch)) if slot not in active]
    taken = free[:len(queue)]
    for slot in taken:
        active[slot] = queue.popleft()
    return taken


def _next_event(policy: Policy, arriving: deque, queue: deque, time_bound_s: float) -> float:
    """The next time anything can happen: an arrival, a static batch's deadline, the bound."""
    times = [time_bound_s]
    if arriving:
        times.append(arriving[0].request.arrival_s)
    if queue and not policy.refill:
        times.append(_batch_deadline(policy, queue))
    return min(times)


def _cut_off(records: list[RequestRecord], time_bound_s: float) -> None:
    """Mark what the time bound stopped: requests queued, in a slot, or not yet arrived."""
    for record in records:
        if record.status == WAITING:
            record.refuse(CUT_OFF, f"not finished within the time bound ({time_bound_s:g} s)"
                          if record.admitted_s is not None or record.request.arrival_s
                          <= time_bound_s else f"arrives after the time bound "
                                                f"({time_bound_s:g} s)")
