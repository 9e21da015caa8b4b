"""Every explorer, walked over its controls' ranges and their combinations (issue 17).

Each explorer in course_lib/explorers/ is found by walking the package (a new one is walked
without being listed here). Its states: the default; every control at five positions over
its range (every option of a dropdown) with the others at their defaults; every pair of
controls at their ends; all controls at their lows, all at their highs; and random
combinations. In every state the readout and the figure titles must show numbers: no
exception, no NaN or inf, and no "Cannot compute this" (a slider range that allows an
invalid combination is a bug of the explorer, not of the learner).

Rendering the PNG is the slow part of a redraw and is not what is checked here, so it is
skipped except for the default state and the two corners (tests/test_explorers.py checks
the figures themselves).
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
import pkgutil
import random
import re

import ipywidgets as W
import pytest

import course_lib.explorers
from course_lib import costs
from course_lib.explorers import base
from course_lib.explorers.compression import PaybackExplorer
from course_lib.explorers.costs import LifecycleExplorer

POSITIONS = 5  # per slider: both ends and three between
RANDOM_STATES = 12
BAD_TEXT = re.compile(r"\b(nan|inf|infinity)\b|cannot compute", re.IGNORECASE)


def explorer_classes() -> list[type]:
    """Every Explorer subclass defined in a module of course_lib.explorers."""
    found = []
    for info in pkgutil.iter_modules(course_lib.explorers.__path__):
        module = importlib.import_module(f"course_lib.explorers.{info.name}")
        found += [obj for obj in vars(module).values() if inspect.isclass(obj)
                  and issubclass(obj, base.Explorer) and obj is not base.Explorer
                  and obj.__module__ == module.__name__]
    return found


def positions(control: W.ValueWidget, count: int = POSITIONS) -> list:
    """Values across a control's range: every option, or `count` evenly spaced positions."""
    if isinstance(control, (W.Dropdown, W.SelectionSlider)):
        options = [option[1] if isinstance(option, tuple) else option
                   for option in control.options]
        if len(options) <= count or isinstance(control, W.Dropdown):
            return options
        return [options[round(i * (len(options) - 1) / (count - 1))] for i in range(count)]
    low, high = control.min, control.max
    steps = [low + (high - low) * i / (count - 1) for i in range(count)]
    if isinstance(control, W.FloatLogSlider):
        return [control.base ** exponent for exponent in steps]
    if isinstance(control, W.IntSlider):
        return sorted({round(value) for value in steps})
    return steps


def ends(control: W.ValueWidget) -> list:
    values = positions(control)
    return values if isinstance(control, W.Dropdown) else [values[0], values[-1]]


def states(explorer: base.Explorer) -> list[dict]:
    """The settings to walk, as {control name: value} (unset controls keep their value)."""
    controls = explorer.controls
    walk = [{}]
    walk += [{name: value} for name, control in controls.items()
             for value in positions(control)]
    for (a, ca), (b, cb) in itertools.combinations(controls.items(), 2):
        walk += [{a: va, b: vb} for va in ends(ca) for vb in ends(cb)]
    walk.append({name: ends(control)[0] for name, control in controls.items()})
    walk.append({name: ends(control)[-1] for name, control in controls.items()})
    rng = random.Random(17)
    walk += [{name: rng.choice(positions(control)) for name, control in controls.items()}
             for _ in range(RANDOM_STATES)]
    return walk


def quietly_reset(explorer: base.Explorer, defaults: dict) -> None:
    """Every control back to its default without a redraw (the next set() redraws once)."""
    with explorer.held():
        for name, value in defaults.items():
            explorer.controls[name].value = value


def shown(explorer: base.Explorer) -> str:
    return explorer.readout.value + " ".join(ax.get_title() for ax in explorer.axes)


CLASSES = explorer_classes()
counted: dict[str, int] = {}


def test_every_explorer_module_is_found():
    names = {cls.__module__.rsplit(".", 1)[-1] for cls in CLASSES}
    assert {"scaling", "costs", "compression", "hardware", "scaleout", "serving"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_state_shows_numbers_never_nan_inf_or_an_error(cls, monkeypatch):
    explorer = cls()
    defaults = {name: control.value for name, control in explorer.controls.items()}
    walk = states(explorer)
    corners = {len(walk) - RANDOM_STATES - 2, len(walk) - RANDOM_STATES - 1}
    render, real = {"on": False}, base.to_png
    monkeypatch.setattr(base, "to_png", lambda figure: real(figure) if render["on"] else b"")
    bad = []
    for number, state in enumerate(walk):
        quietly_reset(explorer, defaults)
        render["on"] = number in corners  # the two corners are rendered as well
        try:
            explorer.set(**state)
        except Exception as error:  # noqa: BLE001  (any exception breaks the contract)
            bad.append(f"{state}: {type(error).__name__}: {error}")
            continue
        text = shown(explorer)
        if BAD_TEXT.search(text):
            bad.append(f"{state}: {re.sub('<[^>]+>', ' ', text)[:300]}")
    counted[cls.__name__] = len(walk)
    print(f"\n{cls.__name__}: {len(walk)} states, {len(bad)} bad")
    assert not bad, f"{len(bad)} of {len(walk)} states of {cls.__name__}:\n" + "\n".join(bad)


def test_the_counts_are_recorded(record_property):
    for name, count in counted.items():
        record_property(f"{name}_states", count)
    print(f"\nwidget states walked: {counted}, {sum(counted.values())} in all")
    assert not counted or all(count > 20 for count in counted.values())


def test_no_state_of_the_payback_explorer_is_an_invalid_combination():
    """Issue 17: 54 of 180 states showed 'Cannot compute'; the student slider now stops
    below the teacher, however either moves."""
    explorer = PaybackExplorer()
    teacher, student = explorer.controls["teacher_params"], explorer.controls["student_params"]
    explorer.set(teacher_params=1e5, student_params=1e12)
    assert student.value < teacher.value
    explorer.set(student_params=1e12)
    assert student.value < teacher.value
    teacher.value = 10**teacher.min
    assert student.value < teacher.value and "Cannot compute" not in explorer.readout.value
    assert math.isclose(student.max, math.log10(teacher.value) - explorer.SMALLER_BY, abs_tol=1e-9)


def test_the_lifecycle_sentence_agrees_with_the_share_at_the_horizon():
    """Issue 17: with 4 retrains a year and a 100-day horizon the sentence said the crossover
    came within the horizon while the readout showed inference at 38% of the spend."""
    explorer = LifecycleExplorer("chat")
    explorer.set(retrains_per_year=4, horizon_days=100)
    s = explorer.scenario()
    day = costs.crossover_day(s)
    explorer.set(requests_per_day=s.requests_per_day * day / 80)  # crossover after 80 days
    s = explorer.scenario()
    share = costs.inference_share(s)
    text = explorer.readout.value
    assert share < 0.5 and "training leads" in text, (share, text)
    assert f"{share:.0%}" in text
    for retrains, horizon, scale in itertools.product((0, 1, 4, 12), (30, 100, 365, 1825),
                                                      (0.01, 0.3, 1, 3, 100)):
        case = s.replace(retrains_per_year=retrains, horizon_days=horizon,
                         requests_per_day=s.requests_per_day * scale)
        sentence, share = costs.describe_crossover(case), costs.inference_share(case)
        if "inference leads" in sentence:
            assert share >= 0.5, (sentence, share)
        if "training leads" in sentence or sentence.startswith("Never"):
            assert share <= 0.5, (sentence, share)


@pytest.mark.parametrize("days", [1.3e-5 / 24, 0.0004, 0.01, 0.5, 1, 12.3, 400, 731,
                                  8.22e3 * 365, 1e300])
def test_durations_read_in_a_unit_a_person_uses(days):
    text = costs.format_days(days)
    assert "e+" not in text and "e-0" not in text, text  # never 1.3e-05 hours or 8.22e+03
    assert text.split()[-1].rstrip("s") in ("second", "minute", "hour", "day", "year")
