"""What serving costs: memory fit, prices per million tokens, latency, and their trade-off.

Built on course_lib.serving's steps (the roofline of one step of a replica). `serve`
answers everything about one batch size: time per step, tokens/s per replica and per chip,
the regime and the utilisation reached, time to first token (TTFT) and per output token
(TPOT), dollars per million input and output tokens, energy per token, and the largest
batch that fits.
`decode_curve` gives the same over many batch sizes at once (the cost-latency frontier);
`cheapest_batch` the batch that meets a time-per-output-token target at the least cost (the
largest that meets it, since cost per token never rises with the batch); a target below the
physical floor gets a sentence naming the floor.

Arithmetic layer (numpy and the standard library).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from course_lib import devices, flops, validate
from course_lib.formatting import fmt
from course_lib.roofline import COMPUTE_BOUND, MEMORY_BOUND
from course_lib.serving import (
    MOST,
    SERVING_PRECISIONS,
    Deployment,
    ServedModel,
    Step,
    Workload,
    checked,
    datacenter_chips,
    decode_step,
    prefill_step,
)

PER_MILLION = 1e6


class DoesNotFit(ValueError):
    """The weights, or the weights and one sequence's KV cache, exceed the replica's memory."""


class BelowFloor(ValueError):
    """A time-per-output-token target no batch size meets on this replica."""


# --- Memory -----------------------------------------------------------------------------


def weight_bytes(model: ServedModel, dep: Deployment) -> float:
    """Bytes of every stored weight (all experts: they must all be in memory)."""
    validate.instance("model", model, ServedModel)
    validate.instance("dep", dep, Deployment)
    return model.total_params * flops.bytes_per_weight(dep.weight_precision)


def kv_bytes_per_sequence(model: ServedModel, dep: Deployment, work: Workload) -> float:
    """Bytes of one sequence's KV cache at its longest (prompt and answer)."""
    model, dep, work = checked(model, dep, work)
    return model.held(work.context) * model.kv_bytes_per_token(dep.kv_precision)


def _check_context(model: ServedModel, work: Workload) -> None:
    if work.context > model.max_context and not model.slides_window:
        raise ValueError(f"prompt_tokens + output_tokens = {work.context:,} exceeds "
                         f"{model.name}'s context of {model.max_context:,} tokens")


def _what_fits(model: ServedModel, dep: Deployment, work: Workload) -> str:
    """Which chip counts and precisions would hold the weights and one sequence."""
    options = []
    for precision in SERVING_PRECISIONS:
        need = (model.total_params * flops.bytes_per_weight(precision)
                + work.context * model.kv_bytes_per_token(precision))
        options.append(f"{math.ceil(need / dep.device.memory)} x {dep.device.name} in "
                       f"{precision}")
    larger = [devices.get(key).name for key in datacenter_chips()
              if devices.get(key).memory > dep.device.memory]
    more = f"; chips with more memory: {', '.join(larger)}" if larger else ""
    return "It would fit on " + ", or ".join(options) + more + "."


def largest_batch(model: ServedModel, dep: Deployment, work: Workload) -> int:
    """Most sequences whose KV caches fit beside the weights; DoesNotFit names what is
    needed and what would fit when not even one does."""
    model, dep, work = checked(model, dep, work)
    _check_context(model, work)
    weights, room = weight_bytes(model, dep), dep.memory
    per_sequence = kv_bytes_per_sequence(model, dep, work)
    batch = min(MOST, math.floor((room - weights) / per_sequence)) if room > weights else 0
    if batch < 1:
        raise DoesNotFit(
            f"{model.name} does not fit: its {dep.weight_precision} weights need "
            f"{fmt(weights / 1e9)} GB and one sequence of {work.context:,} tokens "
            f"{fmt(per_sequence / 1e9)} GB more, but {dep.chips} x {dep.device.name} "
            f"{'has' if dep.chips == 1 else 'have'} {fmt(room / 1e9)} GB. "
            + _what_fits(model, dep, work))
    return batch


def _check_batch(model: ServedModel, dep: Deployment, work: Workload, batch: int) -> int:
    most = largest_batch(model, dep, work)
    batch = validate.whole("batch", batch)
    if batch > most:
        raise ValueError(f"batch {batch} does not fit: at most {most} sequences of "
                         f"{work.context:,} tokens fit beside {model.name}'s weights on "
                         f"{dep.describe()}")
    return batch


# --- Everything about one batch size ----------------------------------------------------


@dataclass(frozen=True)
class PhaseCost:
    """Prefill or decode at one batch size, per step and per token."""

    phase: str
    step_s: float
    tokens_per_step: float
    regime: str  # roofline.MEMORY_BOUND or roofline.COMPUTE_BOUND
    utilisation: float  # the step's FLOPs / (replica peak x step time)
    tokens_per_s_per_replica: float
    tokens_per_s_per_chip: float
    usd_per_million_tokens: float
    joules_per_token: float | None  # None when the chip's power is unknown


def phase_cost(step: Step, dep: Deployment) -> PhaseCost:
    """Per-token numbers of a single (not array) step on a deployment."""
    validate.instance("step", step, Step)
    validate.instance("dep", dep, Deployment)
    if np.ndim(step.seconds):
        raise ValueError(f"step must be one step (one batch size), got {np.size(step.seconds)}")
    seconds, tokens = float(step.seconds), float(step.tokens)
    joules = (None if dep.watts_per_chip is None
              else dep.chips * dep.watts_per_chip * seconds / tokens)
    return PhaseCost(step.phase, seconds, tokens,
                     COMPUTE_BOUND if bool(step.compute_bound) else MEMORY_BOUND,
                     float(step.flops) / (dep.peak_flops * seconds), tokens / seconds,
                     tokens / seconds / dep.chips,
                     dep.usd_per_second * seconds / tokens * PER_MILLION, joules)


@dataclass(frozen=True)
class ServingCost:
    """Serving `batch` sequences of one workload on one replica."""

    model: ServedModel
    deployment: Deployment
    workload: Workload
    batch: int
    largest_batch: int
    prefill: PhaseCost | None  # None for prompts of 0 tokens
    decode: PhaseCost
    weight_bytes: float
    kv_bytes: float  # every sequence's cache at its longest
    ttft_s: float  # time to first token: one prompt prefilled on its own


    @property
    def tpot_s(self) -> float:
        """Time per output token: one decode step."""
        return self.decode.step_s

    @property
    def usd_per_million_input(self) -> float:
        """Price of a million prompt tokens (0 without a prompt)."""
        return self.prefill.usd_per_million_tokens if self.prefill else 0.0

    @property
    def usd_per_million_output(self) -> float:
        """Price of a million generated tokens."""
        return self.decode.usd_per_million_tokens

    @property
    def free_bytes(self) -> float:
        """Memory left over beside the weights and the KV caches."""
        return self.deployment.memory - self.weight_bytes - self.kv_bytes

    def chip_seconds_per_request(self) -> float:
        """Chip-seconds one request takes (its share of the prefill and decode steps),
        idle fleet share included."""
        dep = self.deployment
        seconds = self.decode.step_s * self.workload.output_tokens / self.batch
        if self.prefill:
            seconds += self.prefill.step_s / self.batch
        return dep.chips * seconds / dep.fleet_utilisation


def serve(model: ServedModel, dep: Deployment, work: Workload, batch: int) -> ServingCost:
    """Serve `batch` sequences of `work` on `dep`: every number the course shows.

    Prefill's price per input token is that of the batch's prompts prefilled together (as a
    busy server fills its steps); the time to first token that of one prompt prefilled on
    its own (a request arriving at a replica with room: queueing is left out).
    Raises ValueError for a context beyond the model's, a batch of 0 or one that does not
    fit, and DoesNotFit (naming memory needed, memory available and what would fit).
    """
    batch = _check_batch(model, dep, work, batch)
    decode = phase_cost(decode_step(model, dep, work, batch), dep)
    prefill = (phase_cost(prefill_step(model, dep, work, batch), dep)
               if work.prompt_tokens else None)
    first = (float(prefill_step(model, dep, work, 1).seconds) if work.prompt_tokens
             else decode.step_s)
    return ServingCost(model, dep, work, batch, largest_batch(model, dep, work), prefill,
                       decode, weight_bytes(model, dep),
                       batch * kv_bytes_per_sequence(model, dep, work), first)


# --- Over every batch size: latency against cost ----------------------------------------


def batch_grid(largest: int, points: int = 400) -> np.ndarray:
    """Batch sizes from 1 to `largest`: every one up to 64, then about `points` spread
    evenly on a log scale, the largest always included (a curve, not every integer)."""
    largest = validate.whole("largest", largest, highest=MOST)
    points = validate.whole("points", points, lowest=2, highest=10_000)
    whole = np.arange(1, min(largest, 64) + 1, dtype=float)
    spread = np.round(np.logspace(np.log10(min(largest, 64)), np.log10(largest), points))
    return np.unique(np.concatenate([whole, spread, [float(largest)]]))


def decode_curve(model: ServedModel, dep: Deployment, work: Workload,
                 batches: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """Decode over batch sizes (batch_grid up to the largest that fits, unless `batches` is
    given): arrays 'batch', 'tpot_s', 'usd_per_million_output', 'tokens_per_s_per_chip',
    'utilisation' and 'compute_bound'."""
    most = largest_batch(model, dep, work)
    b = batch_grid(most) if batches is None else validate.positive_array("batches", batches)
    if b.ndim != 1 or not b.size or b.min() < 1 or b.max() > most or np.any(b != np.round(b)):
        raise ValueError(f"batches must be a list of whole numbers from 1 to {most}, "
                         f"got {batches!r:.60}")
    step = decode_step(model, dep, work, b)
    seconds = step.seconds
    return {"batch": b, "tpot_s": seconds,
            "usd_per_million_output": dep.usd_per_second * seconds / b * PER_MILLION,
            "tokens_per_s_per_chip": b / seconds / dep.chips,
            "utilisation": step.flops / (dep.peak_flops * seconds),
            "compute_bound": step.compute_bound}


def _last_true(predicate, largest: int) -> int:
    """Largest b in 1..largest with predicate(b), for a predicate true up to some b and
    false after it (0 if it never holds): a binary search, exact."""
    low, high = 0, largest
    while low < high:
        middle = (low + high + 1) // 2
        if predicate(middle):
            low = middle
        else:
            high = middle - 1
    return low


def tpot_floor_s(model: ServedModel, dep: Deployment, work: Workload) -> float:
    """The shortest time per output token the replica allows: a decode step at batch 1."""
    largest_batch(model, dep, work)
    return float(decode_step(model, dep, work, 1).seconds)


def describe_floor(model: ServedModel, dep: Deployment, work: Workload,
                   tpot_target_s: float) -> str:
    """One sentence: can a target time per output token be met here, and what is the floor?"""
    floor = tpot_floor_s(model, dep, work)
    target = validate.positive("tpot_target_s", tpot_target_s)
    where = f"{model.name} on {dep.describe()}"
    if target < floor:
        return (f"No batch size meets {fmt(target * 1e3)} ms per output token for {where}: "
                f"even one sequence takes {fmt(floor * 1e3)} ms, the time to read the "
                f"weights (and one KV cache) at {fmt(dep.bandwidth / 1e9)} GB/s. Use more "
                f"chips per replica, fewer bytes per weight, or a faster chip.")
    return (f"{fmt(target * 1e3)} ms per output token is within reach for {where}: the floor "
            f"is {fmt(floor * 1e3)} ms at batch 1.")


def cheapest_batch(model: ServedModel, dep: Deployment, work: Workload,
                   tpot_target_s: float) -> int:
    """The cheapest batch meeting a time-per-output-token target: the largest that fits and
    meets it (cost per token never rises with the batch; the step time never falls).
    BelowFloor, with the floor sentence, when even batch 1 is too slow."""
    most = largest_batch(model, dep, work)
    target = validate.positive("tpot_target_s", tpot_target_s)
    batch = _last_true(lambda b: float(decode_step(model, dep, work, b).seconds) <= target,
                       most)
    if batch == 0:
        raise BelowFloor("tpot_target_s: " + describe_floor(model, dep, work, target))
    return batch


def batch_for_utilisation(model: ServedModel, dep: Deployment, work: Workload,
                          utilisation: float) -> int | None:
    """Smallest batch whose decode reaches `utilisation` of the replica's peak, or None if
    no batch that fits does (what an assumed serving utilisation means in sequences)."""
    target = validate.positive("utilisation", utilisation, upper=1)
    most = largest_batch(model, dep, work)

    def below(b: int) -> bool:
        step = decode_step(model, dep, work, b)
        return float(step.flops / (dep.peak_flops * step.seconds)) < target

    batch = _last_true(below, most) + 1  # utilisation never falls as the batch grows
    return batch if batch <= most else None
