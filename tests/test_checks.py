"""Every named mistake of an exercise check has a test, and none of them is marked correct.

A *named mistake* is feedback a check writes for one recognisable error: the message of a
(value, message) pair a check compares against, or of a `raise Wrong(...)`. The coverage test
reads every one of them out of each check's source (and of the module's helpers it calls), so
a check cannot gain a named mistake without a case here that feeds it the mistaken answer.
Each case asserts that the feedback is "try again", never "correct", and names the mistake.

Sets covered so far: COVERED (the sets whose checks have their cases in CASES); a set joins
it when its cases are written.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib import references, scaling
from course_lib.checks import WRONG, Feedback, ex01, ex02, ex03, ex04, ex05

COVERED = (ex01, ex02, ex03, ex04, ex05)
SHORTEST_PIECE = 12  # literal pieces shorter than this ("asked for ") identify nothing

v = references.value


# --- Reading the named mistakes out of a check's source --------------------------------------


def _pieces(node: ast.AST, module, tree: ast.Module) -> list[str]:
    """The literal text a message expression is built from (constants resolved)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [part.value for part in node.values if isinstance(part, ast.Constant)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _pieces(node.left, module, tree) + _pieces(node.right, module, tree)
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
        return [value] if isinstance(value, str) else []
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        helper = _function(tree, node.func.id)
        if helper is not None:
            return [piece for ret in ast.walk(helper) if isinstance(ret, ast.Return) and ret.value
                    for piece in _pieces(ret.value, module, tree)]
    return []


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    return next((node for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == name), None)


def _reachable(tree: ast.Module, name: str) -> list[ast.FunctionDef]:
    """The function `name` and every module-level function it calls, directly or not."""
    seen, todo = {}, [name]
    while todo:
        function = _function(tree, todo.pop())
        if function is None or function.name in seen:
            continue
        seen[function.name] = function
        todo += [call.func.id for call in ast.walk(function)
                 if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)]
    return list(seen.values())


def named_mistakes(check) -> set[tuple[str, ...]]:
    """Each named mistake of `check` as the literal pieces its message is built from."""
    module = inspect.getmodule(check)
    tree = ast.parse(inspect.getsource(module))
    found = set()
    for function in _reachable(tree, check.__name__):
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Wrong" \
                    and node.args:
                message = node.args[0]
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
                message = node.elts[1]
            else:
                continue
            pieces = tuple(piece.strip() for piece in _pieces(message, module, tree)
                           if len(piece.strip()) >= SHORTEST_PIECE)
            if pieces:
                found.add(pieces)
    return found


def test_the_reader_finds_the_named_mistakes_it_must():
    found = named_mistakes(ex01.hours_to_parity)
    assert (ex01.FORGOT_TOKENS_PER_QUERY,) in found
    assert any(ex02.KAPLAN_HALF_ATTENTION in pieces
               for pieces in named_mistakes(ex02.train_step_flops))
    # A constant shared through a helper (_kv_mistakes) counts for each check that calls it.
    assert any(ex03.BITS in pieces for pieces in named_mistakes(ex03.kv_cache_bytes))
    # Two parts of one message are both required ("... years" + PER_DAY).
    assert any(len(pieces) == 2 for pieces in named_mistakes(ex05.crossover_day))


# --- Mistaken answers ----------------------------------------------------------------------


N3, D3 = v("gpt3.params"), v("gpt3.training_tokens")
N8, D8 = v("llama3_8b.params"), v("llama3_8b.training_tokens")
TRAFFIC = "chatgpt.prompts_per_day_2025"
FIT = scaling.get_fit("besiroglu2024")
SCENARIO = {"model": "llama3_8b", "chip": "h100_sxm", "price_key": "price.h100_usd_per_hour_low",
            "training_utilisation": 0.4, "serving_utilisation": 0.2, "requests_per_day": 1e9,
            "input_tokens": 100, "output_tokens": 500}


def _hours(tokens_per_query: float = 1000) -> float:
    return 6 * N3 * D3 / (2 * N3 * tokens_per_query * v(TRAFFIC)) * 24


def _mfu() -> float:
    return 6 * N8 * D8 / (v("llama3_8b.gpu_hours") * 3600 * v("h100_sxm.peak_flops"))


def _kv_8b(heads: str = "n_kv_heads", width: float = 2, batch: int = 16) -> float:
    return (2 * v("llama3_8b.n_layers") * v(f"llama3_8b.{heads}") * v("llama3_8b.d_model")
            / v("llama3_8b.n_heads") * width * 8000 * batch)


def _conversations(weight_bytes: float = 2, heads: str = "n_kv_heads") -> float:
    return (v("h100_sxm.memory") - weight_bytes * N8) / _kv_8b(heads, batch=1)


def _days_70b(mfu: float = 0.4) -> float:
    return (6 * v("llama3_70b.params") * v("llama3_70b.training_tokens")
            / (v("h100_sxm.peak_flops") * mfu) / 86_400)


def _usd(flops: float, utilisation: float) -> float:
    return flops / (v("h100_sxm.peak_flops") * utilisation * 3600) * v(SCENARIO["price_key"])


TRAINING_USD = _usd(6 * N8 * D8, 0.4)
SERVING_USD = _usd(2 * N8 * 1e9 * 600, 0.2)


def _electricity(usd: float, watts: float) -> float:
    return usd * (1 + watts / 1000 * v("price.electricity_usd_per_kwh")
                  / v(SCENARIO["price_key"]))


# Learner functions with one mistake each.


def _measure(model, idx, targets) -> tuple[int, int, FlopCounterMode]:
    with FlopCounterMode(display=False) as forward:
        model(idx, targets)
    with FlopCounterMode(display=False) as step:
        _, loss = model(idx, targets)
        loss.backward()
    return forward.get_total_flops(), step.get_total_flops(), step


def _forward_times_three(model, idx, targets):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(idx, targets)
    return counter.get_total_flops(), 3 * counter.get_total_flops()


def _backward_outside_the_counter(model, idx, targets):
    with FlopCounterMode(display=False) as counter:
        _, loss = model(idx, targets)
    loss.backward()
    return counter.get_total_flops(), counter.get_total_flops()


def _measured(change: Callable[[int, int], tuple]) -> Callable:
    """A correct measurement, then `change(forward, step)` applied to the two counts."""
    def learner(model, idx, targets):
        forward, step, _ = _measure(model, idx, targets)
        return change(forward, step)
    return learner


def _step_flops(attention: float = 4, lm_head: bool = True, kv_full: bool = False,
                scale: float = 1.0) -> Callable:
    def learner(config, batch):
        d, t = config.n_embd, config.block_size
        kv = d if kv_full else config.kv_heads * config.head_dim
        weights = config.n_layer * (d * (d + 2 * kv) + 9 * d * d) + (
            d * config.vocab_size if lm_head else 0)
        return scale * 3 * batch * t * (2 * weights + attention * config.n_layer * t * d)
    return learner


def _greedy(feed: str = "newest", position: int = -1, cache: bool = True,
            keep_prompt: bool = False, drop: int = 0) -> Callable:
    """Greedy decoding with one of the usual slips (feed: 'newest', 'all' or 'all-fresh')."""
    def learner(model, prompt, new_tokens):
        sequence, kv = prompt, model.new_cache(prompt.shape[0]) if cache else None
        with torch.no_grad():
            logits, _ = model(prompt, cache=kv)
            for _ in range(new_tokens):
                token = logits[:, position].argmax(-1, keepdim=True)
                sequence = torch.cat([sequence, token], dim=1)
                if feed == "newest" and cache:
                    if kv.length < model.config.block_size:
                        logits, _ = model(token, cache=kv)
                elif feed == "all-fresh":
                    logits, _ = model(sequence, cache=model.new_cache(prompt.shape[0]))
                else:
                    logits, _ = model(sequence, cache=kv)
        start = 0 if keep_prompt else prompt.shape[1]
        return sequence[:, start:sequence.shape[1] - drop]
    return learner


def _kv_function(kv_pair: int = 2, width_factor: float = 1, batch: bool = True,
                 heads: str = "kv_heads") -> Callable:
    def learner(config, tokens, batch_size, bytes_per_value):
        return (kv_pair * config.n_layer * getattr(config, heads) * config.head_dim
                * bytes_per_value * width_factor * tokens * (batch_size if batch else 1))
    return learner


def _optimal(c: float, r: float) -> tuple[float, float]:
    n = (c / (6 * r)) ** 0.5
    return n, r * n


def _grid_split(points: int = 4001, pick=np.argmin, six: float = 6) -> Callable:
    def learner(c, fit):
        candidates = np.logspace(3, 15, points)
        n = candidates[int(pick([fit.loss(x, c / (six * x)) for x in candidates]))]
        return n, c / (six * n)
    return learner


def _cumulative(change: Callable) -> Callable:
    def learner(days, run_usd, per_day, every):
        training = np.maximum(1, np.ceil(days / every)) * run_usd
        return change(training, days * per_day, days, run_usd, per_day)
    return learner


def _total(serving: float = 2, training_factor: float = 6) -> Callable:
    def learner(n, target, tokens, fit):
        gap = target - fit.E - fit.A / n**fit.alpha
        if gap <= 0:
            return float("inf")
        d = (fit.B / gap) ** (1 / fit.beta)
        return training_factor * n * d + serving * n * tokens
    return learner


def _best_n(target: float, tokens: float, points: int) -> float:
    sizes = np.logspace(6, 14, points)
    return float(sizes[np.argmin([_total()(n, target, tokens, FIT) for n in sizes])])


TARGET = FIT.loss(N8, D8)

CASES: dict[str, Callable[[], Feedback]] = {
    # 01
    "01 linear: MACs": lambda: ex01.linear_flops(lambda i, o, t: i * o * t),
    "01 linear: one token": lambda: ex01.linear_flops(lambda i, o, t: 2 * i * o),
    "01 linear: training rule": lambda: ex01.linear_flops(lambda i, o, t: 6 * i * o * t),
    "01 training: no backward": lambda: ex01.training_flops(2 * N3 * D3, "gpt3"),
    "01 training: MACs": lambda: ex01.training_flops(3 * N3 * D3, "gpt3"),
    "01 training: N x D": lambda: ex01.training_flops(N3 * D3, "gpt3"),
    "01 query: training rule": lambda: ex01.query_flops(6 * N3 * 1000, "gpt3", 1000),
    "01 query: MACs": lambda: ex01.query_flops(N3 * 1000, "gpt3", 1000),
    "01 query: one token": lambda: ex01.query_flops(2 * N3, "gpt3", 1000),
    "01 parity: tokens per query forgotten": lambda: ex01.hours_to_parity(
        _hours(1), "gpt3", 1000, TRAFFIC),
    "01 parity: days": lambda: ex01.hours_to_parity(_hours() / 24, "gpt3", 1000, TRAFFIC),
    "01 parity: minutes": lambda: ex01.hours_to_parity(_hours() * 60, "gpt3", 1000, TRAFFIC),
    "01 parity: seconds": lambda: ex01.hours_to_parity(_hours() * 3600, "gpt3", 1000, TRAFFIC),
    "01 parity: no backward": lambda: ex01.hours_to_parity(_hours() / 3, "gpt3", 1000, TRAFFIC),
    "01 parity: training rule": lambda: ex01.hours_to_parity(_hours() * 3, "gpt3", 1000,
                                                             TRAFFIC),
    "01 parity: upside down": lambda: ex01.hours_to_parity(24 * 24 / _hours(), "gpt3", 1000,
                                                           TRAFFIC),
    "01 3x rule: the training tokens": lambda: ex01.parity_tokens(lambda n, d: d),
    "01 3x rule: N FLOPs per token": lambda: ex01.parity_tokens(lambda n, d: 6 * d),
    "01 3x rule: grows with N": lambda: ex01.parity_tokens(lambda n, d: 3 * n * d),
    "01 3x rule: depends on N elsewhere": lambda: ex01.parity_tokens(
        lambda n, d: 6 * d if n == 1e9 else 3 * d),
    # 02
    "02 tokens: one step": lambda: ex02.tokens_seen(8 * 16, 8, 16, 500),
    "02 tokens: no batch": lambda: ex02.tokens_seen(16 * 500, 8, 16, 500),
    "02 tokens: sequences": lambda: ex02.tokens_seen(8 * 500, 8, 16, 500),
    "02 tokens: targets counted": lambda: ex02.tokens_seen(8 * 17 * 500, 8, 16, 500),
    "02 backward factor: not a pair": lambda: ex02.count_training_flops(lambda m, i, t: 5),
    "02 backward factor: forward x 3 under no_grad": lambda: ex02.count_training_flops(
        _forward_times_three),
    "02 backward factor: backward outside the counter": lambda: ex02.count_training_flops(
        _backward_outside_the_counter),
    "02 backward factor: forward MACs": lambda: ex02.count_training_flops(
        _measured(lambda f, s: (f / 2, s))),
    "02 backward factor: forward includes backward": lambda: ex02.count_training_flops(
        _measured(lambda f, s: (s, s))),
    "02 backward factor: backward alone": lambda: ex02.count_training_flops(
        _measured(lambda f, s: (f, s - f))),
    "02 backward factor: step MACs": lambda: ex02.count_training_flops(
        _measured(lambda f, s: (f, s / 2))),
    "02 step formula: no backward": lambda: ex02.train_step_flops(_step_flops(scale=1 / 3)),
    "02 step formula: MACs": lambda: ex02.train_step_flops(_step_flops(scale=1 / 2)),
    "02 step formula: Kaplan's half attention": lambda: ex02.train_step_flops(
        _step_flops(attention=2)),
    "02 step formula: no attention": lambda: ex02.train_step_flops(_step_flops(attention=0)),
    "02 step formula: no lm_head": lambda: ex02.train_step_flops(_step_flops(lm_head=False)),
    "02 step formula: full-width keys and values": lambda: ex02.train_step_flops(
        _step_flops(kv_full=True)),
    "02 memory: weights only": lambda: ex02.adamw_bytes(4 * N8, "llama3_8b"),
    "02 memory: weights and gradients": lambda: ex02.adamw_bytes(8 * N8, "llama3_8b"),
    "02 memory: no gradients": lambda: ex02.adamw_bytes(12 * N8, "llama3_8b"),
    "02 memory: bits": lambda: ex02.adamw_bytes(8 * 16 * N8, "llama3_8b"),
    "02 utilisation: hours not seconds": lambda: ex02.implied_mfu(_mfu() * 3600, "llama3_8b",
                                                                  "h100_sxm"),
    "02 utilisation: no backward": lambda: ex02.implied_mfu(_mfu() / 3, "llama3_8b",
                                                            "h100_sxm"),
    "02 utilisation: percentage": lambda: ex02.implied_mfu(_mfu() * 100, "llama3_8b",
                                                           "h100_sxm"),
    "02 utilisation: sparse peak": lambda: ex02.implied_mfu(_mfu() / 2, "llama3_8b",
                                                            "h100_sxm"),
    # 03
    "03 answer: training rule": lambda: ex03.answer_flops(6 * N8 * 500, "llama3_8b", 500),
    "03 answer: MACs": lambda: ex03.answer_flops(N8 * 500, "llama3_8b", 500),
    "03 answer: one token": lambda: ex03.answer_flops(2 * N8, "llama3_8b", 500),
    "03 generation: not token ids": lambda: ex03.generate_greedy(lambda m, p, n: object()),
    "03 generation: prompt returned too": lambda: ex03.generate_greedy(
        _greedy(keep_prompt=True)),
    "03 generation: too few tokens": lambda: ex03.generate_greedy(_greedy(drop=2)),
    "03 generation: first position": lambda: ex03.generate_greedy(_greedy(position=0)),
    "03 generation: whole sequence into the cache": lambda: ex03.generate_greedy(
        _greedy(feed="all")),
    "03 generation: no cache": lambda: ex03.generate_greedy(_greedy(feed="all", cache=False)),
    "03 generation: a fresh cache every step": lambda: ex03.generate_greedy(
        _greedy(feed="all-fresh")),
    "03 real cache: keys only": lambda: ex03.kv_cache_bytes_real(
        _kv_8b() / 2, "llama3_8b", 8000, 16, 2),
    "03 real cache: bits": lambda: ex03.kv_cache_bytes_real(
        _kv_8b(width=16), "llama3_8b", 8000, 16, 2),
    "03 real cache: no batch": lambda: ex03.kv_cache_bytes_real(
        _kv_8b(batch=1), "llama3_8b", 8000, 16, 2),
    "03 real cache: query heads": lambda: ex03.kv_cache_bytes_real(
        _kv_8b("n_heads"), "llama3_8b", 8000, 16, 2),
    "03 real cache: fp32": lambda: ex03.kv_cache_bytes_real(
        _kv_8b(width=4), "llama3_8b", 8000, 16, 2),
    "03 cache function: keys only": lambda: ex03.kv_cache_bytes(_kv_function(kv_pair=1)),
    "03 cache function: bits": lambda: ex03.kv_cache_bytes(_kv_function(width_factor=8)),
    "03 cache function: no batch": lambda: ex03.kv_cache_bytes(_kv_function(batch=False)),
    "03 cache function: query heads": lambda: ex03.kv_cache_bytes(_kv_function(heads="n_head")),
    "03 conversations: weights forgotten": lambda: ex03.conversations_per_gpu(
        v("h100_sxm.memory") / _kv_8b(batch=1), "llama3_8b", "h100_sxm", 8000, 2),
    "03 conversations: query heads": lambda: ex03.conversations_per_gpu(
        _conversations(heads="n_heads"), "llama3_8b", "h100_sxm", 8000, 2),
    "03 conversations: fp32 weights": lambda: ex03.conversations_per_gpu(
        _conversations(weight_bytes=4), "llama3_8b", "h100_sxm", 8000, 2),
    "03 conversations: bits": lambda: ex03.conversations_per_gpu(
        _conversations() / 8, "llama3_8b", "h100_sxm", 8000, 2),
    # 04
    "04 doubling: one of the two": lambda: ex04.doubling_factor(2),
    "04 doubling: the 6 doubled": lambda: ex04.doubling_factor(8),
    "04 days: no utilisation": lambda: ex04.accelerator_days(
        _days_70b() * 0.4, "llama3_70b", "h100_sxm", 0.4),
    "04 days: divided by the utilisation": lambda: ex04.accelerator_days(
        _days_70b() * 0.4 * 0.4, "llama3_70b", "h100_sxm", 0.4),
    "04 days: hours": lambda: ex04.accelerator_days(_days_70b() * 24, "llama3_70b", "h100_sxm",
                                                    0.4),
    "04 days: seconds": lambda: ex04.accelerator_days(_days_70b() * 86_400, "llama3_70b",
                                                      "h100_sxm", 0.4),
    "04 days: no backward": lambda: ex04.accelerator_days(_days_70b() / 3, "llama3_70b",
                                                          "h100_sxm", 0.4),
    "04 dollars: days times price": lambda: ex04.run_dollars(
        _days_70b() * v("price.h100_usd_per_hour_low"), "llama3_70b", "h100_sxm", 0.4,
        "price.h100_usd_per_hour_low"),
    "04 dollars: no utilisation": lambda: ex04.run_dollars(
        _days_70b() * 24 * v("price.h100_usd_per_hour_low") * 0.4, "llama3_70b", "h100_sxm",
        0.4, "price.h100_usd_per_hour_low"),
    "04 fixed ratio: not a pair": lambda: ex04.compute_optimal(lambda c, r: 1.0),
    "04 fixed ratio: swapped": lambda: ex04.compute_optimal(
        lambda c, r: tuple(reversed(_optimal(c, r)))),
    "04 fixed ratio: the 6 forgotten": lambda: ex04.compute_optimal(
        lambda c, r: ((c / r) ** 0.5, r * (c / r) ** 0.5)),
    "04 fixed ratio: 2 N D": lambda: ex04.compute_optimal(
        lambda c, r: ((c / (2 * r)) ** 0.5, r * (c / (2 * r)) ** 0.5)),
    "04 fixed ratio: no square root": lambda: ex04.compute_optimal(
        lambda c, r: (c / (6 * r), r * c / (6 * r))),
    "04 best split: not a pair": lambda: ex04.best_split(lambda c, fit: None, FIT),
    "04 best split: swapped": lambda: ex04.best_split(
        lambda c, fit: tuple(reversed(_grid_split()(c, fit))), FIT),
    "04 best split: 2 N D": lambda: ex04.best_split(_grid_split(six=2), FIT),
    "04 best split: 9-point grid": lambda: ex04.best_split(_grid_split(points=9), FIT),
    "04 best split: max instead of min": lambda: ex04.best_split(_grid_split(pick=np.argmax),
                                                                 FIT),
    "04 best split: fixed 20:1": lambda: ex04.best_split(lambda c, fit: _optimal(c, 20), FIT),
    # 05
    "05 training: no utilisation": lambda: ex05.training_usd(TRAINING_USD * 0.4, SCENARIO),
    "05 training: no backward": lambda: ex05.training_usd(TRAINING_USD / 3, SCENARIO),
    "05 training: hours and seconds": lambda: ex05.training_usd(TRAINING_USD * 3600, SCENARIO),
    "05 training: electricity added": lambda: ex05.training_usd(
        _electricity(TRAINING_USD, v("h100_sxm.power")), SCENARIO),
    "05 serving: training utilisation": lambda: ex05.serving_usd_per_day(SERVING_USD / 2,
                                                                         SCENARIO),
    "05 serving: no utilisation": lambda: ex05.serving_usd_per_day(SERVING_USD * 0.2, SCENARIO),
    "05 serving: training rule": lambda: ex05.serving_usd_per_day(SERVING_USD * 3, SCENARIO),
    "05 serving: one request": lambda: ex05.serving_usd_per_day(SERVING_USD / 1e9, SCENARIO),
    "05 serving: electricity added": lambda: ex05.serving_usd_per_day(
        _electricity(SERVING_USD, v("epoch2025.watts_per_gpu")), SCENARIO),
    "05 serving: output tokens only": lambda: ex05.serving_usd_per_day(
        SERVING_USD * 500 / 600, SCENARIO),
    "05 crossover: hours": lambda: ex05.crossover_day(TRAINING_USD / SERVING_USD * 24,
                                                      SCENARIO),
    "05 crossover: years": lambda: ex05.crossover_day(TRAINING_USD / SERVING_USD / 365,
                                                      SCENARIO),
    "05 crossover: upside down": lambda: ex05.crossover_day(SERVING_USD / TRAINING_USD,
                                                            SCENARIO),
    "05 cumulative: not a pair": lambda: ex05.cumulative_spend(lambda d, c, p, e: 1.0),
    "05 cumulative: not numbers": lambda: ex05.cumulative_spend(lambda d, c, p, e: ("a", "b")),
    "05 cumulative: per day": lambda: ex05.cumulative_spend(
        _cumulative(lambda t, s, days, c, p: (t, p + 0 * days))),
    "05 cumulative: wrong order": lambda: ex05.cumulative_spend(
        _cumulative(lambda t, s, days, c, p: (s, t))),
    "05 cumulative: serving wrong": lambda: ex05.cumulative_spend(
        _cumulative(lambda t, s, days, c, p: (t, 2 * s))),
    "05 cumulative: one run": lambda: ex05.cumulative_spend(
        _cumulative(lambda t, s, days, c, p: (c + 0 * days, s))),
    "05 cumulative: runs miscounted": lambda: ex05.cumulative_spend(
        _cumulative(lambda t, s, days, c, p: (t + c, s))),
    "05 sizing: serving left out": lambda: ex05.inference_aware(
        _total(serving=0), 1e9, TARGET, 1e15, FIT),
    "05 sizing: serving at 6 N": lambda: ex05.inference_aware(
        _total(serving=6), 1e9, TARGET, 1e15, FIT),
    "05 sizing: no backward": lambda: ex05.inference_aware(
        _total(training_factor=2), 1e9, TARGET, 1e15, FIT),
    "05 sizing: compute-optimal size": lambda: ex05.inference_aware(
        _total(), _best_n(TARGET, 0, 4001), TARGET, 1e15, FIT),
    "05 sizing: 50-point grid": lambda: ex05.inference_aware(
        _total(), _best_n(TARGET, 1e15, 50), TARGET, 1e15, FIT),
}


@functools.cache
def _feedback(name: str) -> Feedback:
    return CASES[name]()


GENERIC = "not yet: too"  # compare's fallback wording, never a named mistake's


def assert_named_mistake(name: str, feedback: Feedback) -> None:
    """The case's feedback is "try again" with a named mistake, not the generic fallback."""
    assert isinstance(feedback, Feedback), feedback
    assert feedback.status == WRONG, f"{name}: {feedback}"
    assert GENERIC not in feedback.message, f"{name}: generic feedback: {feedback}"


@pytest.mark.parametrize("name", list(CASES))
def test_a_named_mistake_is_never_marked_correct(name):
    assert_named_mistake(name, _feedback(name))


@pytest.mark.parametrize("check", [check for module in COVERED for check in module.CHECKS],
                         ids=lambda check: f"{check.__module__[-4:]}.{check.__name__}")
def test_every_named_mistake_of_a_check_has_a_case(check):
    messages = [_feedback(name).message for name in CASES if _feedback(name).task == check.title]
    missing = [" ... ".join(pieces) for pieces in named_mistakes(check)
               if not any(all(piece in message for piece in pieces) for message in messages)]
    assert not missing, f"{check.title}: no case in CASES gets:\n" + "\n".join(missing)
