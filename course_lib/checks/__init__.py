"""Instant feedback for the exercise notebooks in exercises/: one check function per task.

Each exercise set has its own module (ex01 for exercises/01_two_demands.ipynb, and so on).
A check takes the learner's answer (a number, or a function the learner wrote), works out
the expected result independently (from course_lib.references and the task's inputs, or by
measuring with PyTorch on fresh inputs), and returns a `Feedback`:

- "correct", with a sentence on what the result means;
- "try again", naming the mistake when it is a common one (multiply-adds instead of FLOPs,
  no backward pass, query heads instead of KV heads, bits instead of bytes, per-day instead
  of cumulative), or saying only "too large" / "too small" otherwise: never the answer;
- "not answered yet", when the answer is still None or ... or the function still raises
  NotImplementedError.

Checks call the learner's own functions, never the library's implementation of the same
idea, so an empty or wrong notebook cannot pass. Set the environment variable
COURSE_CHECKS_STRICT=1 to make every check that does not pass raise AssertionError (for
autograding with nbgrader, where a cell that raises scores zero).
"""

from __future__ import annotations

import functools
import html
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

CORRECT, WRONG, NOT_ANSWERED = "correct", "try again", "not answered yet"
STRICT_ENV = "COURSE_CHECKS_STRICT"

# Common mistakes, worded once. Each names the mistake and the fix, never the answer.
MACS = ("Half the expected value: did you count multiply-adds (MACs)? "
        "One multiply-add is 2 FLOPs, a multiply and an add.")
NO_BACKWARD = ("A third of the expected value: did you leave out the backward pass? It costs "
               "about twice the forward pass, so a training step is about 3x the forward pass.")
TRAINING_FACTOR = ("Three times the expected value: did you use the training rule (6 FLOPs per "
                   "parameter per token)? Inference is a forward pass only: 2 per parameter.")
_KV_HEADS = ("did you use the query heads? The KV cache stores one key and one value per "
             "KEY/VALUE head (grouped-query attention).")
QUERY_HEADS = "Too large by n_heads / n_kv_heads: " + _KV_HEADS
QUERY_HEADS_IN_A_DIVISOR = "Too small by n_heads / n_kv_heads: " + _KV_HEADS
BITS = ("Off by a factor of 8: did you mix bits and bytes? A byte is 8 bits; "
        "bf16 is 16 bits = 2 bytes, int8 is 1 byte, int4 is half a byte.")
PER_DAY = ("Did you mix per-day and cumulative amounts? A per-day cost must be multiplied by the "
           "number of days before you compare it with a one-off cost.")
NO_KV_PAIR = ("Half the expected value: the cache holds keys AND values, two vectors per head "
              "per position.")


class NotAnswered(Exception):
    """The task still holds its placeholder (None, ..., or NotImplementedError)."""


class Wrong(Exception):
    """The answer is not right; the message says why, without giving the answer."""


@dataclass(frozen=True)
class Feedback:
    """What a check found: task title, status (correct / try again / not answered yet), why."""

    task: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        mark = {CORRECT: "[correct]", WRONG: "[try again]", NOT_ANSWERED: "[not answered yet]"}
        return f"{mark[self.status]} {self.task}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {CORRECT: "#1a7f37", WRONG: "#b35900", NOT_ANSWERED: "#555555"}[self.status]
        return (f'<div style="border-left:4px solid {colour};padding:4px 8px">'
                f'<b style="color:{colour}">{html.escape(self.status)}</b> · '
                f"{html.escape(self.task)}: {html.escape(self.message)}</div>")


# Latest feedback per task, per exercise module, for summary().
RESULTS: dict[str, dict[str, Feedback]] = {}


def task(title: str) -> Callable:
    """Decorator turning a check body into a check function that always returns Feedback.

    The body returns a success message, or raises Wrong / NotAnswered. An exception from
    the learner's own code becomes "try again" with the exception's name, never a crash.
    """

    def wrap(body: Callable[..., str]) -> Callable[..., Feedback]:
        @functools.wraps(body)
        def check(*args, **kwargs) -> Feedback:
            try:
                result = Feedback(title, CORRECT, body(*args, **kwargs))
            except NotAnswered as reason:
                result = Feedback(title, NOT_ANSWERED,
                                  str(reason) or "replace the placeholder with your answer.")
            except Wrong as reason:
                result = Feedback(title, WRONG, str(reason))
            RESULTS.setdefault(body.__module__, {})[title] = result
            if os.environ.get(STRICT_ENV) == "1" and not result.passed:
                raise AssertionError(str(result))
            return result

        check.title = title
        return check

    return wrap


def summary(module: str, titles: Iterable[str]) -> str:
    """One line per task of an exercise set: its latest status, and the score."""
    seen, titles = RESULTS.get(module, {}), list(titles)
    lines = [f"{seen[t].status if t in seen else 'not checked yet':>18}  {t}" for t in titles]
    score = sum(1 for t in titles if t in seen and seen[t].passed)
    return "\n".join(lines + [f"score: {score} / {len(titles)}"])


# --- Helpers the check modules share -------------------------------------------------------


def require(value, name: str = "your answer"):
    """`value`, unless it is still a placeholder (None or ...)."""
    if value is None or value is Ellipsis:
        raise NotAnswered(f"{name} is still a placeholder: replace it with your answer.")
    return value


def as_number(value, name: str = "your answer") -> float:
    """`value` as a float (a Python or NumPy number, or a one-element tensor)."""
    require(value, name)
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        try:  # a NumPy number or a one-element tensor
            value = value.item()
        except (ValueError, RuntimeError):
            raise Wrong(f"{name} must be a single number, not an array") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise Wrong(f"{name} must be a number, got {type(value).__name__}: "
                        f"{value!r:.60}") from None
    if not math.isfinite(value):
        raise Wrong(f"{name} must be a finite number, got {value!r}")
    return float(value)


def call(function, *args, name: str | None = None):
    """Call the learner's function; a placeholder becomes NotAnswered, an error Wrong."""
    require(function, "your function")
    if not callable(function):
        raise Wrong(f"expected a function, got {type(function).__name__}")
    label = name or getattr(function, "__name__", "your function")
    try:
        return function(*args)
    except NotImplementedError:
        raise NotAnswered(f"{label} still raises NotImplementedError: write its body.") from None
    except Exception as error:  # the learner's code failed: say how, do not crash
        raise Wrong(f"{label}{_short(args)} raised {type(error).__name__}: {error}") from None


def close(x: float, y: float, rel: float) -> bool:
    return math.isclose(x, y, rel_tol=rel, abs_tol=0.0) or (x == y == 0)


def compare(answer, expected: float, mistakes: Iterable[tuple[float, str]] = (),
            rel: float = 0.02, name: str = "your answer") -> None:
    """Pass if `answer` is within `rel` of `expected`; else raise Wrong with the best hint.

    mistakes: (value a known mistake gives, what to say); every mistake that matches is
    named (two mistakes can give the same number, e.g. 8x from bits or from 8 KV heads).
    """
    x = as_number(answer, name)
    if close(x, expected, rel):
        return
    hints = [message for value, message in mistakes if close(x, value, rel)]
    if hints:
        raise Wrong(f"{name}: " + " Or: ".join(dict.fromkeys(hints)))
    raise Wrong(f"{name}: {_direction(x, expected)}")


def _direction(x: float, expected: float) -> str:
    if expected != 0 and x != 0 and (x > 0) != (expected > 0):
        return "the sign is wrong."
    if expected != 0 and x != 0:
        exponent = math.log10(abs(x / expected))
        if abs(exponent) >= 2.9 and abs(exponent - round(exponent)) < 0.01 \
                and round(exponent) % 3 == 0:
            return ("off by a power of 1000: check your units (kilo, mega, giga, tera) and "
                    "that every quantity is in the unit the task asks for.")
    size = "too large" if abs(x) > abs(expected) else "too small"
    return f"not yet: {size}. Re-read the task and check each factor."


def _short(args: tuple) -> str:
    text = ", ".join(_describe(a) for a in args)
    return f"({text})"


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"<{type(value).__name__} {tuple(shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else type(value).__name__
