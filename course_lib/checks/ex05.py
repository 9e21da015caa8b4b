"""Checks for exercises/05_when_inference_dominates.ipynb: lifecycle cost and crossover.

A scenario is a plain dict (the notebook's SCENARIO), so that an instructor can change
it in one cell: model, chip, price_key, training_utilisation, serving_utilisation,
requests_per_day, and the tokens of a request: input_tokens and output_tokens (or one
tokens_per_request).
"""

from __future__ import annotations

import math

import numpy as np

from course_lib import costs, references
from course_lib.checks import (
    NO_BACKWARD,
    PER_DAY,
    TRAINING_FACTOR,
    Wrong,
    as_number,
    call,
    close,
    compare,
    task,
)
from course_lib.checks import summary as _summary


def _usd_per_flop(s: dict, utilisation: float) -> float:
    flops_per_hour = references.value(f"{s['chip']}.peak_flops") * utilisation * 3600
    return references.value(s["price_key"]) / flops_per_hour


def _training_usd(s: dict) -> float:
    n = references.value(f"{s['model']}.params")
    d = references.value(f"{s['model']}.training_tokens")
    return 6 * n * d * _usd_per_flop(s, s["training_utilisation"])


def _tokens_per_request(s: dict) -> float:
    if "tokens_per_request" in s:
        return s["tokens_per_request"]
    return s["input_tokens"] + s["output_tokens"]


def _serving_usd_per_day(s: dict) -> float:
    n = references.value(f"{s['model']}.params")
    tokens = s["requests_per_day"] * _tokens_per_request(s)
    return 2 * n * tokens * _usd_per_flop(s, s["serving_utilisation"])


ELECTRICITY = ("A few percent too large: did you add electricity? The price is a rental price "
               "per accelerator-hour, power included; notebook 05's lifecycle model adds "
               "electricity on top, these tasks do not.")
OUTPUT_ONLY = ("Too small: did you count only the answer's tokens? The prompt's tokens go "
               "through the model too (the prefill): every token of a request costs 2 N FLOPs.")
COARSE_GRID = ("best_n: close, but more than 10% from the best size: is your grid fine "
               "enough? Over 8 decades, 50 sizes are 1.46x apart, so the nearest can miss by "
               "20%: search at least 1,000 sizes (the task uses 4,001).")


def _with_electricity(expected: float, s: dict) -> list[tuple[float, str]]:
    """The answers a learner gets by adding electricity to the rental price, for the chip's
    own power and for a whole server's share of it (the two powers the course cites)."""
    price, usd_per_kwh = references.value(s["price_key"]), references.value(
        "price.electricity_usd_per_kwh")
    watts = (references.value(f"{s['chip']}.power"), references.value("epoch2025.watts_per_gpu"))
    return [(expected * (1 + w / 1000 * usd_per_kwh / price), ELECTRICITY) for w in watts]


@task("Task 1 · The price of one training run")
def training_usd(answer, scenario: dict) -> str:
    expected = _training_usd(scenario)
    compare(answer, expected, [
        (expected * scenario["training_utilisation"], "You left out the utilisation: the "
         "chip reaches only a fraction of its peak, so the run takes longer."),
        (expected / 3, NO_BACKWARD),
        (expected * 3600, "Hours and seconds: the price is per hour, the peak per second."),
        *_with_electricity(expected, scenario)])
    return "paid once per model version."


@task("Task 2 · Serving cost per day")
def serving_usd_per_day(answer, scenario: dict) -> str:
    expected = _serving_usd_per_day(scenario)
    ratio = scenario["serving_utilisation"] / scenario["training_utilisation"]
    mistakes = [
        (expected * ratio, "You used the training utilisation: serving reaches far less."),
        (expected * scenario["serving_utilisation"], "You left out the serving utilisation."),
        (expected * 3, TRAINING_FACTOR),
        (expected / scenario["requests_per_day"], "That is one request: the task asks for a "
                                                  "day of traffic."),
        *_with_electricity(expected, scenario)]
    if "output_tokens" in scenario:
        mistakes.append((expected * scenario["output_tokens"] / _tokens_per_request(scenario),
                         OUTPUT_ONLY))
    compare(answer, expected, mistakes)
    return "paid every day the model is served."


@task("Task 3 · The crossover day")
def crossover_day(answer, scenario: dict) -> str:
    expected = _training_usd(scenario) / _serving_usd_per_day(scenario)
    compare(answer, expected, [
        (expected * 24, "That looks like hours: the task asks for days."),
        (expected / 365, "That looks like years: the task asks for days. " + PER_DAY),
        (1 / expected, "Your ratio is upside down: divide the one-off training cost by the "
                       "serving cost per day.")])
    return "after that day, serving has cost more than training."


COMPUTE_OPTIMAL = ("best_n: that is the compute-optimal size, which ignores serving: minimise "
                   "total_flops, serving included.")
WRONG_ORDER = "the two results are in the wrong order: return (training, serving)."


def _cumulative(days: np.ndarray, run_usd: float, per_day: float, every: float):
    # The same rule as notebook 05's lifecycle model.
    return costs.training_runs(days, every) * run_usd, days * per_day


@task("Task 4 · Cumulative spend with retraining")
def cumulative_spend(function) -> str:
    days = np.array([0.5, 3.2, 29.9, 30.5, 61.0, 95.7])
    run_usd, per_day, every = 1000.0, 17.0, 30.0
    result = call(function, days.copy(), run_usd, per_day, every, name="cumulative_spend")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong("cumulative_spend must return a pair (training, serving), one value per "
                    "day each.")
    try:
        training, serving = (np.asarray(x, dtype=float) * np.ones_like(days) for x in result)
    except (TypeError, ValueError):
        raise Wrong("each of the two results must be numbers, one per day.") from None
    want_training, want_serving = _cumulative(days, run_usd, per_day, every)
    if np.allclose(serving, per_day):
        raise Wrong("serving: you returned the cost per day. " + PER_DAY)
    if np.allclose(training, want_serving, rtol=1e-6) and np.allclose(serving, want_training,
                                                                      rtol=1e-6):
        raise Wrong(WRONG_ORDER)
    if not np.allclose(serving, want_serving, rtol=1e-6):
        raise Wrong("serving: cumulative serving spend at day t is what t days of traffic "
                    "cost.")
    if np.allclose(training, run_usd):
        raise Wrong("training: you paid for one run only; a new run is paid every "
                    "retrain_every_days days.")
    if not np.allclose(training, want_training, rtol=1e-6):
        raise Wrong("training: the first run is paid at day 0 and another just after each "
                    "P = retrain_every_days days: count the runs paid by day t.")
    return "if retraining comes before the crossover day, serving never catches up."


def _total_flops(n: float, target_loss: float, inference_tokens: float, fit) -> float:
    gap = target_loss - fit.E - fit.A / n**fit.alpha
    if gap <= 0:
        return math.inf
    d = (fit.B / gap) ** (1 / fit.beta)
    return 6 * n * d + 2 * n * inference_tokens


def _best_n(target_loss: float, inference_tokens: float, fit) -> float:
    grid = np.logspace(6, 14, 8001)
    return float(grid[int(np.argmin([_total_flops(n, target_loss, inference_tokens, fit)
                                      for n in grid]))])


@task("Task 5 · The inference-aware model size")
def inference_aware(function, best_n, target_loss: float, inference_tokens: float,
                    fit) -> str:
    target = fit.loss(1e9, 2e10)
    for n in (2e9, 5e9, 3e10):
        expected = _total_flops(n, target, 1e12, fit)
        got = call(function, n, target, 1e12, fit, name="total_flops")
        training_only = expected - 2 * n * 1e12
        compare(got, expected, [
            (training_only, "You left out serving: add 2 N FLOPs per served token."),
            (training_only + 6 * n * 1e12, "Serving a token is a forward pass, 2 N FLOPs, "
                                           "not 6 N."),
            (training_only / 3 + 2 * n * 1e12, NO_BACKWARD)],
            name=f"total_flops({n:g}, ...)")
    choice, best = as_number(best_n, "best_n"), _best_n(target_loss, inference_tokens, fit)
    if not close(choice, best, 0.1):
        if close(choice, _best_n(target_loss, 0, fit), 0.1):
            raise Wrong(COMPUTE_OPTIMAL)
        if max(choice / best, best / choice) < 1.5:
            raise Wrong(COARSE_GRID)
        compare(choice, best, rel=0.1, name="best_n")
    return "with heavy serving, the best model is smaller and trained on more tokens."


CHECKS = (training_usd, serving_usd_per_day, crossover_day, cumulative_spend, inference_aware)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
