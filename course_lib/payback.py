"""When does distillation's extra training pay for itself? Pure cost arithmetic.

Arithmetic layer (no torch): `payback` prices making a student (its own training plus one
teacher forward pass per training token, for the soft targets) and the saving of each
request the student serves instead of the teacher, in course_lib.costs' four units
(FLOPs, accelerator-hours, kWh, USD) and at a costs.Scenario's utilisations and prices.
`Payback` answers after how many requests, and days of traffic, the saving repays the
training. Notebook 06's PaybackExplorer (course_lib.explorers.compression) is its widget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from course_lib import costs, flops, validate
from course_lib.formatting import fmt


@dataclass(frozen=True)
class Payback:
    """Making a student vs serving the teacher, in course_lib.costs' four units."""

    extra_training: costs.Spend  # the student's training, teacher's forward passes included
    teacher_per_request: costs.Spend
    student_per_request: costs.Spend
    requests_per_day: float

    def saving_per_request(self, metric: str = "usd") -> float:
        """What serving one request with the student instead of the teacher saves."""
        return self.teacher_per_request[metric] - self.student_per_request[metric]

    def requests(self, metric: str = "usd") -> float:
        """Requests served by the student after which the extra training is repaid."""
        saving = self.saving_per_request(metric)
        if saving <= 0:
            raise ValueError(f"the student saves nothing per request in {metric} (its cost "
                             f"per request rounds to the teacher's): it never pays back")
        return validate.result("requests to pay back", self.extra_training[metric] / saving,
                               metric=metric)

    def days(self, metric: str = "usd") -> float:
        """Days of traffic until payback (inf with no traffic)."""
        if self.requests_per_day == 0:
            return math.inf
        return self.requests(metric) / self.requests_per_day


def payback(teacher: costs.Scenario, student_params: float, distillation_tokens: float
            ) -> Payback:
    """The extra training spend of distilling a `student_params` student from the `teacher`
    scenario's model on `distillation_tokens` tokens, against its per-request saving.

    Extra training: the student's own training (6 N_student D FLOPs) plus one teacher
    forward pass per training token to produce the soft targets (2 N_teacher D), both at
    the scenario's training utilisation and prices. Per request: 2 N FLOPs per token for
    each model, at the serving utilisation.
    """
    if not isinstance(teacher, costs.Scenario):
        raise TypeError(f"teacher must be a costs.Scenario, got {type(teacher).__name__}")
    if teacher.input_tokens + teacher.output_tokens == 0:
        raise ValueError("teacher: its requests hold no tokens (input_tokens + output_tokens "
                         "= 0), so a student saves nothing per request and never pays back")
    if validate.positive("student_params", student_params) >= teacher.n_params:
        raise ValueError(f"student_params must be > 0 and smaller than the teacher's "
                         f"{fmt(teacher.n_params)} parameters, got {student_params!r}")
    validate.positive("distillation_tokens", distillation_tokens)
    student = teacher.replace(n_params=student_params, training_tokens=distillation_tokens)
    # The teacher's forward passes over the same tokens cost 2/6 of training it on them.
    forward_share = 1 / flops.TRAIN_PER_FORWARD
    teacher_forward = costs.training_cost(teacher.replace(training_tokens=distillation_tokens))
    student_training = costs.training_cost(student)
    extra = costs.Spend(*(student_training[m] + forward_share * teacher_forward[m]
                          for m in costs.METRICS))
    return Payback(extra, costs.cost_per_request(teacher), costs.cost_per_request(student),
                   teacher.requests_per_day)
