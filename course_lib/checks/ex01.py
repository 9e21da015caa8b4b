"""Checks for exercises/01_two_demands.ipynb: counting training and inference FLOPs."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib import references
from course_lib.checks import (
    MACS,
    NO_BACKWARD,
    TRAINING_FACTOR,
    Wrong,
    as_number,
    call,
    close,
    compare,
    require,
    task,
)
from course_lib.checks import (
    summary as _summary,
)


def _measured_linear_flops(n_in: int, n_out: int, tokens: int) -> int:
    """What PyTorch's own counter records for a bias-free Linear on `tokens` rows."""
    layer = torch.nn.Linear(n_in, n_out, bias=False)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(torch.zeros(tokens, n_in))
    return counter.get_total_flops()


@task("Task 1 · FLOPs of one linear layer")
def linear_flops(function) -> str:
    for n_in, n_out, tokens in ((3, 5, 7), (16, 8, 4), (64, 10, 3)):
        expected = _measured_linear_flops(n_in, n_out, tokens)
        got = call(function, n_in, n_out, tokens)
        compare(got, expected, [(expected / 2, MACS), (expected / tokens,
                "You counted one token: multiply by the number of tokens."),
                (3 * expected, TRAINING_FACTOR)],
                name=f"linear_flops({n_in}, {n_out}, {tokens})")
    return "your formula matches PyTorch's FLOP counter on three fresh layer shapes."


FORGOT_TOKENS_PER_QUERY = ("Too large by the tokens per query: did you count one token per "
                           "query? A query processes tokens_per_query tokens, each costing "
                           "2 N FLOPs, so a day serves tokens_per_query x queries tokens.")


def _params_tokens(model: str) -> tuple[float, float]:
    return (references.value(f"{model}.params"), references.value(f"{model}.training_tokens"))


@task("Task 2 · Training compute of a real model")
def training_flops(answer, model: str) -> str:
    n, d = _params_tokens(model)
    expected = 6 * n * d
    compare(answer, expected, [(2 * n * d, NO_BACKWARD), (3 * n * d, MACS),
                               (n * d, "You multiplied N by D: each parameter costs 6 FLOPs "
                                       "per training token (2 forward + 4 backward).")])
    return f"that is 6 N D for {model}, the largest single compute event in its life."


@task("Task 3 · Compute of one query")
def query_flops(answer, model: str, tokens_per_query: float) -> str:
    n = references.value(f"{model}.params")
    expected = 2 * n * tokens_per_query
    compare(answer, expected, [(3 * expected, TRAINING_FACTOR), (expected / 2, MACS),
                               (2 * n, "That is one token: a query processes "
                                       "tokens_per_query tokens, each costing 2 N FLOPs.")])
    return "one query is tiny next to the training run: compare the two exponents."


@task("Task 4 · How soon does serving catch up?")
def hours_to_parity(answer, model: str, tokens_per_query: float, traffic_key: str) -> str:
    n, d = _params_tokens(model)
    per_day = 2 * n * tokens_per_query * references.value(traffic_key)
    expected = 6 * n * d / per_day * 24
    compare(answer, expected, [
        (expected * tokens_per_query, FORGOT_TOKENS_PER_QUERY),
        (expected / 24, "That looks like days: the task asks for hours."),
        (expected * 60, "That looks like minutes: the task asks for hours."),
        (expected * 3600, "That looks like seconds: the task asks for hours."),
        (expected / 3, NO_BACKWARD),
        (expected * 3, TRAINING_FACTOR),
        (24 * 24 / expected, "Your ratio is upside down: divide the training FLOPs by the "
                             "FLOPs served per day, not the other way round.")])
    return "at this traffic, serving overtakes training in compute within hours."


@task("Task 5 · The 3× rule")
def parity_tokens(function) -> str:
    require(function, "your function")
    for n, d in ((1e6, 2e7), (7e9, 1e12), (3e3, 5e5)):
        got = call(function, n, d)
        compare(got, 3 * d, [(d, "That is the training tokens themselves: serving a token costs "
                                  "a third of training on it, so parity needs more."),
                             (6 * d, "Twice the expected value: did you count a served "
                                     "token as N FLOPs? It costs 2 N: a multiply and an add "
                                     "per parameter."),
                             (3 * n * d, "Your answer grows with N: the parameter count "
                                         "cancels (6 N D = 2 N x tokens served).")],
                name=f"served_tokens_at_parity({n:g}, {d:g})")
    if not close(as_number(call(function, 1e6, 1e9)), as_number(call(function, 1e9, 1e9)),
                 1e-6):
        raise Wrong("your result changes with n_params, but parity does not depend on it.")
    return "whatever the model's size, inference matches training after 3x its training tokens."


CHECKS = (linear_flops, training_flops, query_flops, hours_to_parity, parity_tokens)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
