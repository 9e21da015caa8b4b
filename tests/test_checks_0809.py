"""Exercise sets 08 and 09: every mistake a check names has a test, and none passes.

The rule of tests/test_checks.py, applied to course_lib/checks/ex08.py and ex09.py: one
wrong answer per named mistake, each computed from the formula the mistake describes (set
08 from the instructor notebook's SETUP and constants, set 09 from its inputs), must get
"try again" naming that mistake. The coverage tests read the named mistakes out of the two
modules' source, so a new hint cannot be added untested.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math

import numpy as np
import pytest
from test_checks import GENERIC, _reachable, assert_named_mistake, named_mistakes
from test_exercises import _solution_namespace

from course_lib import references
from course_lib.checks import WRONG, Feedback, ex08, ex09

COVERED = (ex08, ex09)


def _nb(name: str):
    """A value or function of set 08's instructor version (run once, when first asked)."""
    return _solution_namespace("08")[name]


def _nb9(name: str):
    """An input of set 09's instructor version (ARRIVAL_RATE, FIXED_MS, ...)."""
    return _solution_namespace("09")[name]


# --- Reading the named mistakes out of a check's source --------------------------------------


def _local_messages(check) -> set[tuple[str, ...]]:
    """Messages a check words in a local name first (`hint = "..."; raise Wrong(hint)`),
    which named_mistakes, resolving names in the module only, does not see."""
    module = inspect.getmodule(check)
    tree = ast.parse(inspect.getsource(module))
    found = set()
    for function in _reachable(tree, check.__name__):
        local = {target.id: node.value.value for node in ast.walk(function)
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                 and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Wrong" \
                    and node.args and isinstance(node.args[0], ast.Name) \
                    and node.args[0].id in local:
                found.add((local[node.args[0].id].strip(),))
    return found


def _all_named(check) -> set[tuple[str, ...]]:
    return named_mistakes(check) | _local_messages(check)


def test_the_reader_finds_the_named_mistakes_of_these_sets():
    assert (ex08.ONE_CHIP,) in named_mistakes(ex08.moe_largest_batch)
    assert (ex09.MS_FOR_S,) in named_mistakes(ex09.replicas)
    # _edge's hint is a local name, reached through the helper expected_tokens calls.
    assert any("divided by zero" in pieces[0] for pieces in _all_named(ex09.expected_tokens))


# --- Set 08: serving cost from the roofline --------------------------------------------------


def _setup() -> dict:
    return _nb("SETUP")


def _step_s(batch: float, context: float, *, heads: float | None = None,
            bytes_per_value: float = 2, kv: bool = True) -> float:
    """A dense decode step on the roofline as the solution writes it; each keyword is one
    mistake: query heads for KV heads, bits for bytes (16 per bf16 value), no KV cache."""
    heads = _nb("KV_HEADS") if heads is None else heads
    kv_per_token = 2 * _nb("LAYERS") * heads * _nb("HEAD_DIM") * bytes_per_value if kv else 0
    flops = batch * (2 * _nb("N") + 4 * _nb("LAYERS") * context * _nb("D_MODEL"))
    moved = _nb("N") * bytes_per_value + batch * context * kv_per_token
    return max(flops / _nb("PEAK"), moved / _nb("BANDWIDTH"))


def _tpot(**mistake) -> Feedback:
    return ex08.tpot_ms(1e3 * _step_s(1, _setup()["long_context"], **mistake), _setup())


def _output_price(per_second: float = 1 / 3600, per_token: bool = True, kv: bool = True):
    """A learner's usd_per_million_output: price per hour x `per_second`, per token or step."""
    def price(batch):
        step = _step_s(batch, _setup()["context"], kv=kv)
        return _nb("USD_PER_HOUR") * per_second * step / (batch if per_token else 1) * 1e6
    return price


def _moe_batch(memory: str = "replica_memory", params: str = "total",
               kv_bytes: float = 1) -> int:
    """Sequences beside the weights (fp8) in `memory`, the KV cache at `kv_bytes` a value."""
    left = _nb(memory) - _nb(params) * _nb("FP8")
    return int(left // (_nb("moe_kv_sequence") * kv_bytes / _nb("FP8")))


def _moe_exact() -> float:
    return (_nb("replica_memory") - _nb("total") * _nb("FP8")) / _nb("moe_kv_sequence")


def _moe_tokens(params: str = "active", per_chip: bool = True) -> float:
    """Tokens/s of the MoE replica, FLOPs counted with `params`, per chip or per replica."""
    s, chips = _setup(), _nb("chips")
    batch, context = s["moe_batch"], s["moe_context"]
    flops = batch * (2 * _nb(params) + 4 * _nb("moe_layers") * context * _nb("moe_d_model"))
    step = max(flops / (chips * _nb("PEAK")),
               (_nb("weights_read") + _nb("kv_read")) / (chips * _nb("BANDWIDTH")))
    return batch / step / (chips if per_chip else 1)


def _moe_decode(experts: float | None = None, tokens: float | None = None) -> Feedback:
    return ex08.moe_decode(_nb("experts_per_layer") if experts is None else experts,
                           _moe_tokens() if tokens is None else tokens, _setup())


def _prefill_usd(divide_by: str = "tokens") -> float:
    """USD per million input tokens, the prefill step's price divided by `divide_by`."""
    divisor = {"tokens": _nb("tokens"), "batch": _setup()["prefill_batch"], "step": 1}
    return _nb("USD_PER_HOUR") / 3600 * _nb("prefill_s") / divisor[divide_by] * 1e6


def _input_price(usd: float | None = None, ratio: float | None = None) -> Feedback:
    return ex08.input_price(_prefill_usd() if usd is None else usd,
                            _nb("output_over_input") if ratio is None else ratio, _setup())


def _decode_usd_at_prefill_batch() -> float:
    return _nb("usd_per_million_output")(_setup()["prefill_batch"])


CASES_08 = {
    "tpot: KV cache forgotten": lambda: _tpot(kv=False),
    "tpot: query heads": lambda: _tpot(heads=references.value(f"{_setup()['model']}.n_heads")),
    "tpot: bits": lambda: _tpot(bytes_per_value=16),
    "output: per step": lambda: ex08.usd_per_million_output(_output_price(per_token=False),
                                                            _setup()),
    "output: per second as per hour": lambda: ex08.usd_per_million_output(
        _output_price(per_second=1), _setup()),
    "output: KV cache forgotten": lambda: ex08.usd_per_million_output(_output_price(kv=False),
                                                                      _setup()),
    "moe batch: active parameters stored": lambda: ex08.moe_largest_batch(
        _moe_batch(params="active"), _setup()),
    "moe batch: one chip's memory": lambda: ex08.moe_largest_batch(
        _moe_batch(memory="MEMORY"), _setup()),
    "moe batch: one chip's memory, none fit": lambda: ex08.moe_largest_batch(
        max(0, _moe_batch(memory="MEMORY")), _setup()),
    "moe batch: bf16 KV cache": lambda: ex08.moe_largest_batch(
        _moe_batch(kv_bytes=_nb("BF16")), _setup()),
    "moe batch: rounded up": lambda: ex08.moe_largest_batch(math.ceil(_moe_exact()), _setup()),
    "moe experts: k per token, never shared": lambda: _moe_decode(
        experts=_nb("k") * _setup()["experts_batch"]),
    "moe experts: one token's": lambda: _moe_decode(experts=_nb("k")),
    "moe tokens: FLOPs with total parameters": lambda: _moe_decode(
        tokens=_moe_tokens(params="total")),
    "moe tokens: per replica": lambda: _moe_decode(tokens=_moe_tokens(per_chip=False)),
    "input: the decode price": lambda: _input_price(usd=_decode_usd_at_prefill_batch()),
    "input: the whole prefill step": lambda: _input_price(usd=_prefill_usd("step")),
    "input: divided by the batch only": lambda: _input_price(usd=_prefill_usd("batch")),
    "input: ratio upside down": lambda: _input_price(
        ratio=_nb("usd_per_million_input") / _decode_usd_at_prefill_batch()),
}


# --- Set 09: serving many users --------------------------------------------------------------


def _little(answer) -> Feedback:
    return ex09.time_in_system(answer, _nb9("ARRIVAL_RATE"), _nb9("MEAN_IN_SYSTEM"))


def _batch_inputs() -> tuple[float, float, float]:
    return _nb9("FIXED_MS"), _nb9("PER_SEQUENCE_MS"), _nb9("TARGET_MS")


def _largest(answer) -> Feedback:
    return ex09.largest_batch(answer, *_batch_inputs())


def _replicas(answer) -> Feedback:
    return ex09.replicas(answer, *_batch_inputs(), _nb9("OUTPUT_TOKENS"), _nb9("TRAFFIC"),
                         _nb9("USABLE"))


def _exact_replicas(step_unit_s: float = 1e-3, usable: str = "divide",
                    step: str = "step") -> float:
    """Replicas before rounding up; one keyword per mistake: the step time taken in ms
    (step_unit_s=1), the usable fraction left out or multiplied, the target as the step."""
    fixed, per_sequence, target = _batch_inputs()
    batch = math.floor((target - fixed) / per_sequence)
    step_ms = fixed + per_sequence * batch if step == "step" else target
    per_replica = batch / (_nb9("OUTPUT_TOKENS") * step_ms * step_unit_s)
    share = {"divide": 1 / _nb9("USABLE"), "leave out": 1, "multiply": _nb9("USABLE")}[usable]
    return _nb9("TRAFFIC") / per_replica * share


def _closed_form(a: float, k: int) -> float:
    """The speculative sum's closed form, without the a = 1 case (it divides by zero)."""
    return (1 - a ** (k + 1)) / (1 - a)


CASES_09 = {
    "little: multiplied": lambda: _little(_nb9("MEAN_IN_SYSTEM") * _nb9("ARRIVAL_RATE")),
    "little: upside down": lambda: _little(_nb9("ARRIVAL_RATE") / _nb9("MEAN_IN_SYSTEM")),
    "little: milliseconds": lambda: _little(1000 * _nb9("MEAN_IN_SYSTEM") / _nb9("ARRIVAL_RATE")),
    "p99: mean": lambda: ex09.p99(lambda s: float(np.mean(s))),
    "p99: median": lambda: ex09.p99(lambda s: float(np.median(s))),
    "p99: largest sample": lambda: ex09.p99(max),
    "p99: percentile given a fraction": lambda: ex09.p99(lambda s: np.percentile(s, 0.99)),
    "p99: not sorted": lambda: ex09.p99(lambda s: s[int(0.99 * len(s))]),
    "p99: the p90": lambda: ex09.p99(lambda s: np.percentile(s, 90)),
    "batch: rounded up": lambda: _largest(math.ceil(
        (_nb9("TARGET_MS") - _nb9("FIXED_MS")) / _nb9("PER_SEQUENCE_MS"))),
    "batch: fixed part left out": lambda: _largest(math.floor(
        _nb9("TARGET_MS") / _nb9("PER_SEQUENCE_MS"))),
    "speculative: bonus token left out": lambda: ex09.expected_tokens(
        lambda a, k: sum(a**i for i in range(k))),
    "speculative: each guess counted with a": lambda: ex09.expected_tokens(
        lambda a, k: k * a + 1),
    "speculative: a = 1 divides by zero": lambda: ex09.expected_tokens(_closed_form),
    "replicas: headroom left out": lambda: _replicas(math.ceil(_exact_replicas(
        usable="leave out"))),
    "replicas: not rounded": lambda: _replicas(_exact_replicas()),
    "replicas: rounded down": lambda: _replicas(math.floor(_exact_replicas())),
    "replicas: multiplied by the usable fraction": lambda: _replicas(math.ceil(
        _exact_replicas(usable="multiply"))),
    "replicas: step time in ms": lambda: _replicas(math.ceil(_exact_replicas(step_unit_s=1))),
    "replicas: the target as the step": lambda: _replicas(math.ceil(
        _exact_replicas(step="target"))),
}

CASES = {f"08 {name}": run for name, run in CASES_08.items()} | \
        {f"09 {name}": run for name, run in CASES_09.items()}

# The generic fallback some checks write themselves ("not yet: too many. ..."): not a named
# mistake. One far-off answer per such check shows its wording, which coverage then excuses.
FALLBACKS = {
    ex08.moe_largest_batch: lambda: ex08.moe_largest_batch(10 * _nb("moe_largest_batch"),
                                                           _setup()),
    ex09.largest_batch: lambda: _largest(10 * _nb9("largest_batch")),
    ex09.replicas: lambda: _replicas(10 * _nb9("replicas")),
}


@functools.cache
def _feedback(name: str) -> Feedback:
    return CASES[name]()


@pytest.mark.parametrize("name", list(CASES))
def test_a_named_mistake_is_never_marked_correct(name):
    assert_named_mistake(name, _feedback(name))


@pytest.mark.parametrize("check", list(FALLBACKS), ids=lambda check: check.__name__)
def test_a_fallback_is_the_generic_feedback(check):
    feedback = FALLBACKS[check]()
    assert feedback.status == WRONG and GENERIC in feedback.message, feedback


@pytest.mark.parametrize("check", [check for module in COVERED for check in module.CHECKS],
                         ids=lambda check: f"{check.__module__[-4:]}.{check.__name__}")
def test_every_named_mistake_of_a_check_has_a_case(check):
    messages = [_feedback(name).message for name in CASES if _feedback(name).task == check.title]
    generic = FALLBACKS[check]().message if check in FALLBACKS else ""
    missing = [" ... ".join(pieces) for pieces in _all_named(check)
               if not any(all(piece in message for piece in pieces) for message in messages)
               and not all(piece in generic for piece in pieces)]
    assert not missing, f"{check.title}: no case in CASES gets:\n" + "\n".join(missing)
