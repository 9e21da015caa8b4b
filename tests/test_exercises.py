"""The exercise sets: solutions pass, student versions start clean, checks catch mistakes.

Notebooks run in-process here, cell by cell, which is fast (no kernel to start). This is
the one run of the instructor versions (nbval does not execute them again: pyproject's
testpaths leave exercises/ out), and it checks more than nbval would: strict mode makes
every check raise unless it passes. One student version runs in a real kernel below.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import io
import math
import re
from pathlib import Path

import nbformat
import pytest
import torch

from course_lib import checks, references, scaling
from course_lib.checks import (
    NOT_ANSWERED,
    STRICT_ENV,
    Feedback,
    ex01,
    ex02,
    ex03,
    ex04,
    ex05,
    ex06,
    ex07,
    ex08,
    ex09,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "exercises" / "solutions").glob("[0-9]*.ipynb"))
MODULES = {"01": ex01, "02": ex02, "03": ex03, "04": ex04, "05": ex05, "06": ex06, "07": ex07,
           "08": ex08, "09": ex09}


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_student_exercises",
                                                  ROOT / "tools" / "make_student_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()


def run_cells(path: Path) -> list[tuple[nbformat.NotebookNode, object]]:
    """Execute a notebook's code cells in one namespace: (cell, value of its last expression,
    or the exception it raised), for every code cell."""
    namespace: dict = {"__name__": "__main__"}
    results = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(tree, str(path), "exec"), namespace)
                value = eval(compile(ast.Expression(last.value), str(path), "eval"),
                             namespace) if last else None
        except Exception as error:  # recorded: the tests decide which errors are allowed
            value = error
        results.append((cell, value))
    return results


def is_check_cell(cell) -> bool:
    return cell.metadata.get("nbgrader", {}).get("grade", False)


def test_every_notebook_01_to_07_has_an_exercise_set():
    assert [p.name[:2] for p in SOLUTIONS] == list(MODULES)
    for path in SOLUTIONS:
        assert (ROOT / "notebooks" / path.name).exists(), f"{path.name}: named after no notebook"
        assert (ROOT / "exercises" / path.name).exists(), f"no student version of {path.name}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_exercise_notebook_follows_the_notebook_conventions(path):
    for version in (path, ROOT / "exercises" / path.name):
        first = nbformat.read(version, as_version=4).cells[0]
        assert first.cell_type == "markdown"
        assert first.source.startswith(f"# {path.name[:2]} · ")
        assert re.search(r"\*\*Estimated time:\*\* about \d+ min\.", first.source)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook_runs_and_passes_every_check(path, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")  # a check that does not pass raises
    results = run_cells(path)
    errors = [value for _, value in results if isinstance(value, BaseException)]
    assert not errors, f"{path.name}: {errors[0]!r}"
    feedback = [value for cell, value in results if is_check_cell(cell)]
    module = MODULES[path.name[:2]]
    assert 3 <= len(feedback) <= 6
    assert all(isinstance(f, Feedback) and f.passed for f in feedback), feedback
    assert [f.task for f in feedback] == [c.title for c in module.CHECKS]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_student_notebook_says_not_answered_instead_of_crashing(path):
    results = run_cells(ROOT / "exercises" / path.name)
    crashes = [value for _, value in results
               if isinstance(value, BaseException) and not isinstance(value, NotImplementedError)]
    assert not crashes, f"{path.name}: {crashes[0]!r}"
    feedback = [value for cell, value in results if is_check_cell(cell)]
    assert feedback and all(f.status == NOT_ANSWERED for f in feedback), feedback


def test_a_student_notebook_in_a_real_kernel_reports_not_answered():
    """Run All stops at the first placeholder; the check under it still answers."""
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "exercises" / "01_two_demands.ipynb", as_version=4)
    first_check = next(i for i, c in enumerate(notebook.cells) if is_check_cell(c))
    notebook.cells = notebook.cells[: first_check + 1]
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True).execute()
    text = "".join(output.get("data", {}).get("text/plain", "") + output.get("text", "")
                   for output in notebook.cells[first_check].outputs)
    assert "not answered yet" in text


def _solution_only_lines(instructor: nbformat.NotebookNode) -> set[str]:
    """Lines inside solution blocks that the rest of the instructor version (task text, hints,
    given code) does not show anyway."""
    inside, outside = set(), []
    for cell in instructor.cells:
        in_block = False
        for line in cell.source.splitlines():
            marker = line.strip()
            if marker in (GENERATOR.BEGIN, GENERATOR.END):
                in_block = marker == GENERATOR.BEGIN
            elif in_block:
                inside.add(marker)
            else:
                outside.append(marker)
    given = "\n".join(outside)
    return {line for line in inside if len(line) > 3 and not line.startswith("#")
            and line not in given}


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_student_version_contains_no_solution_text(path):
    instructor = nbformat.read(path, as_version=4)
    student = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    secret = _solution_only_lines(instructor)
    assert secret, f"{path.name} has no solution blocks"
    leaked = [line for line in secret if line in text]
    assert not leaked, f"{path.name} leaks: {leaked}"
    assert "SOLUTION" not in text
    assert text.count(GENERATOR.PLACEHOLDER[1]) == sum(
        cell.source.count(GENERATOR.BEGIN) for cell in instructor.cells)


def test_committed_student_versions_are_up_to_date():
    assert GENERATOR.main(["--check"]) == 0, "run `make student-exercises`"


def test_generator_keeps_indentation_and_rejects_broken_markers():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert GENERATOR.strip_solutions(source) == (
        'def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError("Your answer here")')
    for broken in ("### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                   "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"):
        with pytest.raises(ValueError, match="SOLUTION"):
            GENERATOR.strip_solutions(broken)


# --- Each check names the common mistake it sees ---------------------------------------------

N3, D3 = references.value("gpt3.params"), references.value("gpt3.training_tokens")
N8 = references.value("llama3_8b.params")


def _fit():
    return scaling.get_fit("besiroglu2024")


def _solution(path_prefix: str, name: str):
    """A learner function as the instructor version defines it."""
    return _solution_namespace(path_prefix)[name]


@functools.cache
def _solution_namespace(path_prefix: str) -> dict:
    """The instructor version's code cells run once per set, checks and summary left out."""
    path = next(p for p in SOLUTIONS if p.name.startswith(path_prefix))
    namespace: dict = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and not is_check_cell(cell) and "summary" not in cell.source:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(cell.source, namespace)
    return namespace


def _ex08(name: str):
    """A value or function of exercise set 08's instructor version (its SETUP among them)."""
    return _solution_namespace("08")[name]


def _kv_8b(batch: int, context: int, heads_key: str = "n_kv_heads", width: float = 2) -> float:
    v = references.value
    return (2 * v("llama3_8b.n_layers") * v(f"llama3_8b.{heads_key}") * v("llama3_8b.d_model")
            / v("llama3_8b.n_heads") * width * context * batch)


def _scenario():
    return {"model": "llama3_8b", "chip": "h100_sxm", "price_key": "price.h100_usd_per_hour_low",
            "training_utilisation": 0.4, "serving_utilisation": 0.2,
            "requests_per_day": 1e9, "tokens_per_request": 600}


def _quantize_per_tensor(w):
    scale = w.abs().max() / 127
    return torch.round(w / scale).to(torch.int8), scale


def _quantize_truncating(w):
    scale = w.abs().amax(dim=1, keepdim=True) / 127
    return (w / scale).to(torch.int8), scale


def _prune_largest(w, fraction):
    out = w.clone()
    out.view(-1)[w.abs().flatten().argsort(descending=True)[: round(fraction * w.numel())]] = 0
    return out


def _cumulative_per_day(days, run_usd, per_day, every):
    return (days // every + 1) * run_usd, per_day + 0 * days


def _generate_without_cache(model, prompt, new_tokens):
    sequence = prompt
    with torch.no_grad():
        for _ in range(new_tokens):
            logits, _ = model(sequence)
            sequence = torch.cat([sequence, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return sequence[:, prompt.shape[1]:]


def _generate_first_position(model, prompt, new_tokens):
    cache, out = model.new_cache(1), []
    with torch.no_grad():
        logits, _ = model(prompt, cache=cache)
        for _ in range(new_tokens):
            token = logits[:, 0].argmax(-1, keepdim=True)  # wrong: the first position
            out.append(token)
            if cache.length < model.config.block_size:
                logits, _ = model(token, cache=cache)
    return torch.cat(out, dim=1)


def _count_forward_only(model, idx, targets):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model(idx, targets)
    return counter.get_total_flops(), counter.get_total_flops()


def _step_flops_no_attention(config, batch):
    d, kv = config.n_embd, config.kv_heads * config.head_dim
    weights = config.n_layer * (d * (d + 2 * kv) + 9 * d * d) + d * config.vocab_size
    return 3 * batch * config.block_size * 2 * weights


MISTAKES = [
    # (check, arguments, words the feedback must contain)
    ("01 linear MACs", lambda: ex01.linear_flops(lambda i, o, t: i * o * t), "multiply-adds"),
    ("01 no backward", lambda: ex01.training_flops(2 * N3 * D3, "gpt3"), "backward"),
    ("01 training rule for a query", lambda: ex01.query_flops(6 * N3 * 1000, "gpt3", 1000),
     "training rule"),
    ("01 days not hours", lambda: ex01.hours_to_parity(
        6 * N3 * D3 / (2 * N3 * 1000 * references.value("chatgpt.prompts_per_day_2025")),
        "gpt3", 1000, "chatgpt.prompts_per_day_2025"), "days"),
    ("01 parity depends on N", lambda: ex01.parity_tokens(lambda n, d: 3 * n * d), "cancels"),
    ("02 one step", lambda: ex02.tokens_seen(8 * 16, 8, 16, 500), "one step"),
    ("02 forward only", lambda: ex02.count_training_flops(_count_forward_only),
     "loss.backward()"),
    ("02 no attention", lambda: ex02.train_step_flops(_step_flops_no_attention), "attention"),
    ("02 no backward", lambda: ex02.train_step_flops(
        lambda c, b: _solution("02", "train_step_flops")(c, b) / 3), "backward"),
    ("02 weights only", lambda: ex02.adamw_bytes(4 * N8, "llama3_8b"), "gradient"),
    ("02 bits", lambda: ex02.adamw_bytes(8 * 16 * N8, "llama3_8b"), "bits"),
    ("02 hours not seconds", lambda: ex02.implied_mfu(
        6 * N8 * references.value("llama3_8b.training_tokens")
        / (references.value("llama3_8b.gpu_hours") * references.value("h100_sxm.peak_flops")),
        "llama3_8b", "h100_sxm"), "3600"),
    ("03 MACs", lambda: ex03.answer_flops(N8 * 500, "llama3_8b", 500), "multiply-adds"),
    ("03 no cache", lambda: ex03.generate_greedy(_generate_without_cache), "cache"),
    ("03 wrong position", lambda: ex03.generate_greedy(_generate_first_position), "LAST"),
    ("03 query heads", lambda: ex03.kv_cache_bytes_real(
        _kv_8b(16, 8000, "n_heads"), "llama3_8b", 8000, 16, 2), "query heads"),
    ("03 bits", lambda: ex03.kv_cache_bytes_real(_kv_8b(16, 8000, width=16), "llama3_8b", 8000,
                                                 16, 2), "bits"),
    ("03 function with query heads", lambda: ex03.kv_cache_bytes(
        lambda c, t, b, w: 2 * c.n_layer * c.n_head * c.head_dim * w * t * b), "query heads"),
    ("03 forgot the weights", lambda: ex03.conversations_per_gpu(
        references.value("h100_sxm.memory") / _kv_8b(1, 8000), "llama3_8b", "h100_sxm", 8000,
        2), "weights"),
    ("04 doubling", lambda: ex04.doubling_factor(2), "Both"),
    ("04 no utilisation", lambda: ex04.accelerator_days(
        6 * references.value("llama3_70b.params") * references.value("llama3_70b.training_tokens")
        / references.value("h100_sxm.peak_flops") / 86_400, "llama3_70b", "h100_sxm", 0.4),
     "utilisation"),
    ("04 days times price", lambda: ex04.run_dollars(
        6 * references.value("llama3_70b.params") * references.value("llama3_70b.training_tokens")
        / (references.value("h100_sxm.peak_flops") * 0.4) / 86_400
        * references.value("price.h100_usd_per_hour_low"),
        "llama3_70b", "h100_sxm", 0.4, "price.h100_usd_per_hour_low"), "HOUR"),
    ("04 swapped", lambda: ex04.compute_optimal(
        lambda c, r: tuple(reversed(_solution("04", "compute_optimal")(c, r)))), "swapped"),
    ("04 forgot the 6", lambda: ex04.compute_optimal(lambda c, r: ((c / r) ** 0.5,
                                                                  r * (c / r) ** 0.5)), "6"),
    ("04 scan with 2ND", lambda: ex04.best_split(
        lambda c, fit: (lambda n, d: (n, d / 3))(*_solution("04", "best_split")(3 * c, fit)),
        _fit()), "6 N D"),
    ("05 no utilisation", lambda: ex05.training_usd(
        ex05._training_usd(_scenario()) * 0.4, _scenario()), "utilisation"),
    ("05 training utilisation for serving", lambda: ex05.serving_usd_per_day(
        ex05._serving_usd_per_day(_scenario()) * 0.5, _scenario()), "training utilisation"),
    ("05 years", lambda: ex05.crossover_day(
        ex05._training_usd(_scenario()) / ex05._serving_usd_per_day(_scenario()) / 365,
        _scenario()), "cumulative"),
    ("05 per-day", lambda: ex05.cumulative_spend(_cumulative_per_day), "per-day"),
    ("05 serving left out", lambda: ex05.inference_aware(
        lambda n, L, t, fit: _solution("05", "total_flops")(n, L, 0, fit), 1e9, 2.0, 1e12,
        _fit()), "serving"),
    ("06 bits", lambda: ex06.weight_bytes(4 * N8, "llama3_8b", "int4"), "bits"),
    ("06 per tensor", lambda: ex06.int8_quantizer(_quantize_per_tensor,
                                                  lambda q, s: q.float() * s), "per-tensor"),
    ("06 truncation", lambda: ex06.int8_quantizer(_quantize_truncating,
                                                  lambda q, s: q.float() * s), "round"),
    ("06 no scales", lambda: ex06.int8_layer_bytes(lambda o, i: o * i), "scales"),
    ("06 largest pruned", lambda: ex06.prune_smallest(_prune_largest), "LARGEST"),
    ("06 tokens not days", lambda: ex06.payback_days(
        (2 * N8 + 6 * references.value("llama32_1b.params"))
        * references.value("llama32_1b.training_tokens")
        / (2 * (N8 - references.value("llama32_1b.params"))), "llama3_8b", "llama32_1b", 1e11),
     "per-day"),
    ("07 upside down", lambda: ex07.ridge_point(
        references.value("h100_sxm.bandwidth") / references.value("h100_sxm.peak_flops"),
        "h100_sxm"), "Upside down"),
    ("07 output forgotten", lambda: ex07.matmul_intensity(
        lambda m, k, n, b: 2 * m * k * n / (b * (m * k + k * n))), "output"),
    ("07 batch forgotten", lambda: ex07.decode_intensity(1.0, "memory-bound", 16, "bf16",
                                                         "h100_sxm"), "batch"),
    ("07 phone bits", lambda: ex07.phone_tokens_per_second(
        references.value("snapdragon_8_gen3.bandwidth") / (N8 * 4), "llama3_8b",
        "snapdragon_8_gen3", "int4"), "bits"),
    ("07 KV left out", lambda: ex07.compute_bound_batch(
        lambda w, f, kv, ctx, r: r * w / f), "KV"),
    ("08 weights only", lambda: ex08.tpot_ms(
        1e3 * 2 * N8 / references.value("h100_sxm.bandwidth"), _ex08("SETUP")), "KV cache"),
    ("08 per step", lambda: ex08.usd_per_million_output(
        lambda b: _ex08("usd_per_million_output")(b) * b, _ex08("SETUP")), "per decode step"),
    ("08 active for memory", lambda: ex08.moe_largest_batch(
        int((_ex08("replica_memory") - references.value("epoch2025.active_params"))
            // _ex08("moe_kv_sequence")), _ex08("SETUP")), "total parameters"),
    ("08 one token's experts", lambda: ex08.moe_decode(
        references.value("mixtral.experts_per_token"), _ex08("tokens_per_s_per_chip"),
        _ex08("SETUP")), "one token's experts"),
    ("08 output price for input", lambda: ex08.input_price(
        _ex08("usd_per_million_output")(_ex08("SETUP")["prefill_batch"]), 1.0, _ex08("SETUP")),
     "prefilled"),
    ("09 multiplied", lambda: ex09.time_in_system(120 * 30, 120, 30), "multiplied"),
    ("09 p99 is not the mean", lambda: ex09.p99(lambda s: sum(s) / len(s)), "mean"),
    ("09 p99 unsorted", lambda: ex09.p99(lambda s: s[int(0.99 * len(s))]), "Sort"),
    ("09 batch rounded up", lambda: ex09.largest_batch(147, 18, 0.15, 40), "Round down"),
    ("09 bonus token", lambda: ex09.expected_tokens(lambda a, k: sum(a**i for i in range(k))),
     "free"),
    ("09 a equals 1", lambda: ex09.expected_tokens(lambda a, k: (1 - a ** (k + 1)) / (1 - a)),
     "divided by zero"),
    ("09 no headroom", lambda: ex09.replicas(
        math.ceil(1000 / (146 / (500 * (18 + 0.15 * 146) / 1000))), 18, 0.15, 40, 500, 1000, 0.8),
     "headroom"),
]


@pytest.mark.parametrize("run, words", [(run, words) for _, run, words in MISTAKES],
                         ids=[name for name, _, _ in MISTAKES])
def test_a_common_mistake_gets_its_own_feedback(run, words):
    feedback = run()
    assert feedback.status == checks.WRONG, feedback
    assert words in feedback.message, feedback


def test_every_check_has_a_mistake_test():
    covered = {name.split()[0] for name, _, _ in MISTAKES}
    assert covered == set(MODULES)
    tested = set()
    for _, run, _ in MISTAKES:
        tested.add(run().task)
    every = {check.title for module in MODULES.values() for check in module.CHECKS}
    assert tested == every, f"no mistake test for: {every - tested}"


WRONG_FUNCTIONS = [
    # A wrong learner implementation must fail, whatever the library's own code does.
    (ex01.linear_flops, (lambda i, o, t: 2 * i * o,)),
    (ex01.parity_tokens, (lambda n, d: d,)),
    (ex02.count_training_flops, (lambda m, i, t: (1, 3),)),
    (ex02.train_step_flops, (lambda c, b: 6 * c.n_layer * 12 * c.n_embd**2 * b * c.block_size,)),
    (ex03.generate_greedy, (lambda m, p, n: torch.zeros(1, n, dtype=torch.long),)),
    (ex03.kv_cache_bytes, (lambda c, t, b, w: 2 * c.n_layer * c.kv_heads * c.head_dim * w * t,)),
    (ex04.compute_optimal, (lambda c, r: (1.0, 1.0),)),
    (ex04.best_split, (lambda c, fit: ((c / 120) ** 0.5, 20 * (c / 120) ** 0.5), _fit())),
    (ex05.cumulative_spend, (lambda d, c, p, e: (c + 0 * d, d * p),)),
    (ex06.int8_quantizer, (lambda w: (w.to(torch.int8), w.abs().amax(1, keepdim=True)),
                           lambda q, s: q.float())),
    (ex06.prune_smallest, (lambda w, f: w,)),
    (ex06.int8_layer_bytes, (lambda o, i: 4 * o * i,)),
    (ex07.matmul_intensity, (lambda m, k, n, b: 1.0,)),
    (ex07.compute_bound_batch, (lambda w, f, kv, ctx, r: r,)),
    (ex09.p99, (lambda s: max(s),)),
    (ex09.expected_tokens, (lambda a, k: k + 1,)),
]


@pytest.mark.parametrize("check, args", WRONG_FUNCTIONS,
                         ids=[f"{c.__module__[-4:]}.{c.__name__}" for c, _ in WRONG_FUNCTIONS])
def test_a_wrong_learner_implementation_fails_its_check(check, args):
    assert not check(*args).passed


def test_learner_errors_and_placeholders_never_crash_a_check():
    def broken(*_):
        raise ValueError("oops")

    def placeholder(*_):
        raise NotImplementedError("Your answer here")

    assert "raised ValueError" in ex01.linear_flops(broken).message
    assert ex01.linear_flops(placeholder).status == NOT_ANSWERED
    assert ex01.training_flops(None, "gpt3").status == NOT_ANSWERED
    assert ex01.training_flops(..., "gpt3").status == NOT_ANSWERED
    assert "number" in ex01.training_flops("many", "gpt3").message
    assert ex01.training_flops(torch.tensor(6 * N3 * D3), "gpt3").passed


def test_strict_mode_raises_for_autograding(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(AssertionError, match="backward"):
        ex01.training_flops(2 * N3 * D3, "gpt3")
    assert ex01.training_flops(6 * N3 * D3, "gpt3").passed


def spellings(value: float) -> set[str]:
    """Ways a message could write `value`; only those long enough not to occur by chance."""
    texts = {f"{value:.3g}", f"{value:g}", f"{value:.2e}", f"{value:,.0f}", f"{value:.0f}"}
    return {text for text in texts if len(text.strip("-0.,")) >= 4}


def test_feedback_never_states_the_expected_number(monkeypatch):
    # Record every value a check compares the learner's answer with, then look for it in
    # the feedback: a hint may name the mistake, never give the answer away. (Checks that
    # recognise a mistake by its structure, such as a per-tensor scale, compare no number.)
    expected = []
    for module in MODULES.values():
        def recording(answer, value, *args, _compare=module.compare, **kwargs):
            expected.append(value)
            return _compare(answer, value, *args, **kwargs)
        monkeypatch.setattr(module, "compare", recording)
    compared = 0
    for name, run, _ in MISTAKES:
        expected.clear()
        message = run().message
        compared += len(expected)
        for value in expected:
            leaked = [text for text in spellings(value) if text in message]
            assert not leaked, f"{name}: the feedback states the expected {leaked}: {message}"
    assert compared >= len(MISTAKES) // 2, "the recording missed the checks' comparisons"


def test_parameters_that_cannot_work_get_a_clear_error_not_a_verdict():
    # 70B parameters in bf16 are 140 GB: no H100 holds them, whatever the learner answers.
    with pytest.raises(ValueError, match="MODEL 'llama3_70b' needs .* GB .* CHIP 'h100_sxm'"):
        ex03.conversations_per_gpu(1.0, "llama3_70b", "h100_sxm", 8000, 2)
