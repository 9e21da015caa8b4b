"""Notebook 06's payback explorer: when does distilling a student pay for itself?

Explorers layer. The numbers come from course_lib.payback (on notebook 05's cost presets,
course_lib.costs), the figure from course_lib.figures.compression.plot_payback, the
controls from explorers.base and the preset and metric labels from explorers.costs.
"""

from __future__ import annotations

import html
import math

from course_lib import costs, references
from course_lib.explorers.base import Explorer, dropdown, log_slider, table_html
from course_lib.explorers.costs import METRIC_LABELS, PRESET_LABELS
from course_lib.figures.compression import plot_payback
from course_lib.formatting import fmt
from course_lib.payback import Payback, payback


class PaybackExplorer(Explorer):
    """Distil a student from a teacher: the extra training spend, the per-request saving,
    and the traffic at which it pays back (costs as in notebook 05's presets).

    The student must be smaller than its teacher: the student slider ends SMALLER_BY (in
    powers of ten) below the teacher, and moves down with it, so no position is invalid."""

    figsize = (7.0, 3.6)
    SMALLER_BY = 0.1  # the largest student is 10**-0.1 = 79% of the teacher

    def __init__(self, preset: str = "open_8b", teacher_params: float | None = None,
                 student_params: float | None = None, distillation_tokens: float | None = None):
        self._presets = costs.presets()
        preset_control = dropdown("costs as in", PRESET_LABELS, preset)
        s = self._presets[preset]
        v = references.value
        teacher = log_slider("teacher parameters", v("llama3_70b.params")
                             if teacher_params is None else teacher_params, 5, 12.5)
        student = v("llama32_1b.params") if student_params is None else student_params
        if student >= teacher.value:
            raise ValueError(f"student_params must be smaller than teacher_params "
                             f"({fmt(teacher.value)}), got {student!r}")
        super().__init__({
            "preset": preset_control,
            "teacher_params": teacher,
            "student_params": log_slider("student parameters", student, 4,
                                         math.log10(teacher.value) - self.SMALLER_BY),
            "tokens": log_slider(
                "distillation tokens", v("llama32_1b.training_tokens")
                if distillation_tokens is None else distillation_tokens, 6, 14),
            "requests_per_day": log_slider("requests per day", s.requests_per_day, 0, 11),
            "output_tokens": log_slider("answer tokens/request", s.output_tokens, 0, 5),
            "metric": dropdown("measure in", METRIC_LABELS, "usd"),
        })

    def _on_change(self, change) -> None:
        if change["owner"] is self.controls["teacher_params"]:
            self._cap_student(change["new"])
        super()._on_change(change)

    def _cap_student(self, teacher: float) -> None:
        """End the student slider below the teacher (ipywidgets moves its value down too)."""
        student = self.controls["student_params"]
        top = max(student.min, math.log10(teacher) - self.SMALLER_BY)
        with self.held():  # one redraw, by the caller
            student.max = top

    def result(self) -> Payback:
        """The Payback the controls describe."""
        c = {name: control.value for name, control in self.controls.items()}
        teacher = self._presets[c["preset"]].replace(
            n_params=c["teacher_params"], requests_per_day=c["requests_per_day"],
            output_tokens=c["output_tokens"])
        return payback(teacher, c["student_params"], c["tokens"])

    def draw(self, axes) -> str:
        metric = self.controls["metric"].value
        result = self.result()
        title = plot_payback(axes[0], result, metric).get_title()
        unit = costs.METRIC_UNITS[metric]
        return f"<p><b>{html.escape(title)}</b></p>" + table_html([
            ("extra training (student + teacher's forward passes)",
             fmt(result.extra_training[metric], unit)),
            ("teacher's cost per request", fmt(result.teacher_per_request[metric], unit)),
            ("student's cost per request", fmt(result.student_per_request[metric], unit)),
            ("pays back after", f"{fmt(result.requests(metric))} requests, "
             f"{costs.format_days(result.days(metric))} at your traffic"),
        ])
