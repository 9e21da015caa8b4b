"""course_lib.figures: every figure function takes an Axes, draws on it, gives it a title that
states a finding, and returns it; the figures of notebooks 02-05 draw what their inputs say."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from course_lib import costs, counting, flops, inference, stats
from course_lib.figures import costs as cost_figures
from course_lib.figures import inference as inference_figures
from course_lib.figures import scaling as scaling_figures
from course_lib.figures import training as training_figures
from course_lib.figures.base import new_figure
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.training_config import History

FIGURES = Path(__file__).resolve().parent.parent / "course_lib" / "figures"
CONFIG = ModelConfig(vocab_size=50, n_layer=2, n_head=2, n_embd=64, block_size=32)


def figure_functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(FIGURES.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("plot_"):
                found.append((f"{path.stem}.{node.name}", node))
    return found


@pytest.mark.parametrize("name, node", figure_functions(), ids=lambda x: x
                         if isinstance(x, str) else "")
def test_figure_functions_take_an_axes_and_return_it(name, node):
    first = node.args.args[0].arg
    assert first in {"ax", "axes"}, f"{name}: the first parameter must be the Axes to draw on"
    returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
    assert returns, f"{name} must return the Axes it drew on"
    for ret in returns:
        assert isinstance(ret.value, ast.Name) and ret.value.id == first, (
            f"{name} returns something other than its {first!r} at line {ret.lineno}")


def test_loss_curve_title_gives_the_final_validation_loss():
    history = History(step_loss=[4.0, 3.0, 2.5], eval_iters=[0, 2], train_loss=[4.1, 2.6],
                      val_loss=[4.2, 2.71])
    _, (ax,) = new_figure()
    assert training_figures.plot_history(ax, history) is ax
    assert "2.71" in ax.get_title()
    assert ax.get_ylabel() == "loss (nats per character)"


def test_memory_figure_names_the_largest_measured_part():
    torch.manual_seed(0)
    model = TinyGPT(CONFIG)
    idx = torch.randint(0, CONFIG.vocab_size, (4, 20))
    budget = flops.training_memory_budget(CONFIG, model.num_params()["total"], 4, 20)
    measured = counting.measure_training_memory(model, idx, idx)
    _, (ax,) = new_figure()
    training_figures.plot_memory_budget(ax, budget, measured)
    largest = max(training_figures.MEMORY_PARTS, key=lambda k: measured[k])
    assert ax.get_title().endswith(largest)
    assert ax.get_ylabel() == "memory (MB)"
    assert len(ax.patches) == 8, "four parts, formula and measured"


def test_flops_per_token_title_is_the_ratio_at_the_longest_context():
    contexts = [1, 8, 32]
    _, (ax,) = new_figure()
    inference_figures.plot_flops_per_token(ax, CONFIG, contexts)
    ratio = (flops.flops_per_generated_token(CONFIG, 32, False)
             / flops.flops_per_generated_token(CONFIG, 32, True))
    assert f"{ratio:.0f}x" in ax.get_title()


def test_batch_sweep_title_states_the_throughput_gain_and_the_slowdown():
    def timing(batch: int, tokens_per_s: float, per_token_s: float) -> inference.RequestTiming:
        one = stats.Spread.of
        return inference.RequestTiming(batch, 8, 16, True, one([0.01]), one([per_token_s]),
                                       one([0.2]), one([tokens_per_s]))

    fig, axes = new_figure(ncols=2)
    inference_figures.plot_batch_sweep(axes, [timing(1, 100, 0.010), timing(8, 500, 0.016)])
    title = fig._suptitle.get_text()
    assert "5.0x the tokens per second" in title and "1.6x slower" in title


@pytest.mark.parametrize("preset", list(costs.presets()))
def test_lifecycle_figure_shows_both_lines_and_no_legend_over_them(preset):
    # A log axis, so that a training line 100x below inference stays readable (issue 16), and
    # the lines named at their ends instead of a legend that could cover one of them.
    _, (ax,) = new_figure()
    cost_figures.plot_lifecycle(ax, costs.presets()[preset])
    assert ax.get_yscale() == "log" and ax.get_legend() is None
    drawn = [line.get_ydata() for line in ax.get_lines() if len(line.get_ydata()) > 2]
    low, high = ax.get_ylim()
    assert all(low < values.min() and values.max() * 1.2 <= high for values in drawn)
    labels = {text.get_text() for text in ax.texts}
    assert {"training (and retraining)", "inference"} <= labels
    day = costs.crossover_day(costs.presets()[preset])
    if day is not None:
        assert costs.format_days(day) in ax.get_title()


def test_isoflop_title_compares_the_budgets():
    _, (ax,) = new_figure()
    scaling_figures.plot_isoflop(ax, [1e19, 1e23])
    assert ax.get_title().startswith("1e4x more compute")
