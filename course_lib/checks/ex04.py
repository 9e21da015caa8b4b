"""Checks for exercises/04_how_compute_scales.ipynb: compute, time, money, best split."""

from __future__ import annotations

import math

from course_lib import references
from course_lib.checks import (
    NO_BACKWARD,
    Wrong,
    as_number,
    call,
    compare,
    task,
)
from course_lib.checks import summary as _summary


@task("Task 1 · Double the model, double the data")
def doubling_factor(answer) -> str:
    compare(answer, 4, [(2, "Both N and D doubled: compute is proportional to each of them."),
                        (8, "Compute is 6 N D: the 6 stays, only N and D doubled.")])
    return "compute grows with the product N x D."


def _days(model: str, chip: str, mfu: float) -> float:
    n = references.value(f"{model}.params")
    d = references.value(f"{model}.training_tokens")
    return 6 * n * d / (references.value(f"{chip}.peak_flops") * mfu) / 86_400


@task("Task 2 · Accelerator-days of a training run")
def accelerator_days(answer, model: str, chip: str, mfu: float) -> str:
    expected = _days(model, chip, mfu)
    compare(answer, expected, [
        (expected * mfu, "You left out the utilisation: a chip reaches only a fraction "
                         "(MFU) of its peak, so the run takes longer than at peak."),
        (expected * mfu * mfu, "Multiply the peak by the utilisation; do not divide by it."),
        (expected * 24, "That looks like hours: the task asks for days."),
        (expected * 86_400, "That looks like seconds: the task asks for days."),
        (expected / 3, NO_BACKWARD)])
    return "spread over thousands of accelerators, that is weeks of wall-clock time."


@task("Task 3 · The price of the run")
def run_dollars(answer, model: str, chip: str, mfu: float, price_key: str) -> str:
    days = _days(model, chip, mfu)
    price = references.value(price_key)
    expected = days * 24 * price
    compare(answer, expected, [
        (days * price, "The price is per accelerator-HOUR: convert days to hours."),
        (expected * mfu, "You left out the utilisation: the run takes longer than at peak.")])
    return "and that is one run: experiments and failed runs come on top."


@task("Task 4 · Compute-optimal split at a fixed ratio")
def compute_optimal(function) -> str:
    for c, ratio in ((1e21, 20.0), (4e18, 10.0), (3e24, 25.0)):
        result = call(function, c, ratio, name="compute_optimal")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Wrong("compute_optimal must return a pair (n_params, n_tokens).")
        n, d = (as_number(x, "each value") for x in result)
        expected_n = math.sqrt(c / (6 * ratio))
        if math.isclose(n, ratio * expected_n, rel_tol=0.02) and math.isclose(
                d, expected_n, rel_tol=0.02):
            raise Wrong("N and D are swapped: return (n_params, n_tokens).")
        compare(n, expected_n, [
            (math.sqrt(c / ratio), "Your N ignores the 6 in C = 6 N D."),
            (math.sqrt(c / (2 * ratio)), "Training is 6 N D, not 2 N D."),
            (c / (6 * ratio), "Solve C = 6 N (ratio N) for N: N appears twice, so take a "
                              "square root.")], name=f"n_params for C={c:g}, ratio {ratio:g}")
        compare(d, ratio * expected_n, name=f"n_tokens for C={c:g}, ratio {ratio:g}")
        compare(6 * n * d, c, name="6 N D of your pair (it must spend the whole budget)")
    return "N and D both grow as the square root of the budget."


def _closed_form(c: float, fit) -> float:
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1 / (fit.alpha + fit.beta))
    return g * (c / 6) ** (fit.beta / (fit.alpha + fit.beta))


FIXED_RATIO = ("Your split has the same tokens per parameter at every budget: that is task 4's "
               "rule of thumb. Here the ratio comes out of the scaling law: compute fit.loss "
               "for each candidate N (with the D that spends the budget) and keep the best.")
LARGEST_LOSS = ("Your N is far from the best one, with a much higher predicted loss: did you "
                "keep the largest loss (max, argmax) instead of the smallest (min, argmin)?")
COARSE_GRID = ("Close, but more than 5% from the best N: is your grid fine enough? With a few "
               "points per decade the nearest candidate can miss the best N by a large factor: "
               "try thousands of candidates, e.g. np.logspace(3, 15, 4001).")
BUDGETS = (1e20, 3e23, 1e26)


def _pair(result, name: str) -> tuple[float, float]:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong(f"{name} must return a pair (n_params, n_tokens).")
    n, d = (as_number(x, "each value") for x in result)
    return n, d


def _check_split(n: float, d: float, c: float, fit) -> None:
    """Raise Wrong, naming the mistake when the course names it, unless (n, d) is the best
    split of budget c."""
    expected = _closed_form(c, fit)
    if math.isclose(d, expected, rel_tol=0.05):
        raise Wrong("N and D are swapped: return (n_params, n_tokens).")
    off = max(n / expected, expected / n)
    if not math.isclose(n, expected, rel_tol=0.05):
        where = f"n_params for C={c:g}: "
        if math.isclose(n, _closed_form(3 * c, fit), rel_tol=0.05):
            raise Wrong(where + "Your budget looks like C = 2 N D: training is 6 N D.")
        if off > 30 and _split_loss(n, c, fit) > _split_loss(expected, c, fit):
            raise Wrong(where + LARGEST_LOSS)
        if off < 10:
            raise Wrong(where + COARSE_GRID)
        compare(n, expected, rel=0.05, name=where.rstrip(": "))
    compare(6 * n * d, c, rel=0.02, name="6 N D of your pair (it must spend the budget)")


def _split_loss(n: float, c: float, fit) -> float:
    return fit.loss(n, c / (6 * n))


@task("Task 5 · The best split from the scaling law")
def best_split(function, fit) -> str:
    splits = [_pair(call(function, c, fit, name="best_split"), "best_split") for c in BUDGETS]
    ratios = [d / n for n, d in splits]
    best = [_closed_form(c, fit) for c in BUDGETS]
    if max(ratios) / min(ratios) < 1.001 and not all(
            math.isclose(n, b, rel_tol=0.05) for (n, _), b in zip(splits, best, strict=True)):
        raise Wrong(FIXED_RATIO)
    for (n, d), c in zip(splits, BUDGETS, strict=True):
        _check_split(n, d, c, fit)
    return "the lowest-loss model for each budget, within 5% of the closed form."


CHECKS = (doubling_factor, accelerator_days, run_dollars, compute_optimal, best_split)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
