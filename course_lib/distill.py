"""Distillation: training a smaller student to mimic a trained teacher.

Torch layer. `distill` trains a student on the teacher's softened next-token probabilities
as well as on the data (`distillation_loss`, after Hinton et al. 2015), through the same
training loop as notebook 02: course_lib.training.train with a `loss_fn` that also asks
the teacher. `compare_distillation` runs the fair test notebook 06 reports: the same
student (same initial weights and batches) trained with the teacher and on the data alone,
for the same steps and (matched=True) for the same training FLOPs (`compute_matched_steps`:
the teacher's forward passes make a distilled step dearer), all scored with
course_lib.compression.validation_loss on the same text.

Notebook 06 shows `distillation_loss` and `distill` whole. What the extra training costs
at real scale, and when serving the student repays it, is course_lib.payback.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F

from course_lib import flops, runtime, training, validate
from course_lib.compression import validation_loss
from course_lib.data import TokenData
from course_lib.model import TinyGPT
from course_lib.quantize import check_model
from course_lib.shapes import ModelConfig
from course_lib.training_config import History, TrainConfig

NOISE_NATS = 0.01  # a loss difference smaller than this is within this measurement's noise


@validate.checked
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor, temperature: float = 2.0,
                      alpha: float = 0.5) -> torch.Tensor:
    """alpha x soft loss + (1 - alpha) x hard loss, per token (Hinton et al. 2015).

    soft: KL divergence from the teacher's to the student's next-token distribution, both
    softened by dividing the logits by `temperature` (above 1 the teacher's "second
    choices" carry more weight), multiplied by temperature**2 so that its gradients keep
    the same size whatever the temperature. hard: the usual cross-entropy with the data.
    """
    _check_distillation_settings(temperature, alpha)
    vocab = student_logits.shape[-1]
    student = F.log_softmax(student_logits.reshape(-1, vocab) / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.reshape(-1, vocab) / temperature, dim=-1)
    soft = F.kl_div(student, teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits.reshape(-1, vocab), targets.reshape(-1))
    return alpha * temperature**2 * soft + (1 - alpha) * hard


# Softening temperatures: far outside this the soft targets overflow or turn to NaN in float32.
TEMPERATURES = (0.1, 100.0)


def _check_distillation_settings(temperature, alpha) -> None:
    validate.positive("temperature", temperature, lowest=TEMPERATURES[0], upper=TEMPERATURES[1])
    validate.positive("alpha (the weight of the teacher's soft targets)", alpha,
                      allow_zero=True, upper=1)


@validate.checked
def check_student_config(teacher: ModelConfig, student: ModelConfig) -> None:
    """Refuse a student that is not smaller than its teacher, or cannot read the same tokens."""
    if not isinstance(student, ModelConfig):
        raise TypeError(f"student_config must be a ModelConfig, got {type(student).__name__}")
    for name in ("vocab_size", "block_size"):
        if getattr(student, name) != getattr(teacher, name):
            raise ValueError(f"student_config.{name} must equal the teacher's "
                             f"({getattr(teacher, name)}), got {getattr(student, name)}")
    n_teacher, n_student = flops.matmul_params(teacher), flops.matmul_params(student)
    if student.n_layer > teacher.n_layer or student.n_embd > teacher.n_embd \
            or n_student >= n_teacher:
        raise ValueError(
            f"student_config must be smaller than the teacher: n_layer <= {teacher.n_layer}, "
            f"n_embd <= {teacher.n_embd}, and fewer than {n_teacher:,} matmul weights; got "
            f"n_layer={student.n_layer}, n_embd={student.n_embd} ({n_student:,} weights)")


@validate.checked
def distill(teacher: TinyGPT, student: TinyGPT, data: TokenData, config: TrainConfig,
            *, temperature: float = 2.0, alpha: float = 0.5, progress: bool = False
            ) -> History:
    """Train `student` (in place) on the teacher's softened outputs and the data; return its
    History. Same loop, batches and schedule as course_lib.training.train without a teacher.
    """
    check_model(teacher)
    check_model(student)
    check_student_config(teacher.config, student.config)
    _check_distillation_settings(temperature, alpha)
    teacher.eval()

    def loss_fn(model: TinyGPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the teacher only answers; it does not learn
            teacher_logits = teacher(x)[0]
        return distillation_loss(model(x)[0], teacher_logits, y, temperature, alpha)

    return training.train(student, data, config, progress=progress, loss_fn=loss_fn)


@validate.checked
def flops_per_step(teacher: ModelConfig, student: ModelConfig, batch_size: int
                   ) -> dict[str, int]:
    """Training FLOPs of one step of a student trained on the data "alone" (forward and
    backward) and "distilled" (the same, plus the teacher's forward pass on the batch)."""
    alone = flops.train_flops_per_step(student, batch_size)
    return {"alone": alone,
            "distilled": alone + flops.forward_flops(teacher, teacher.block_size, batch_size)}


@validate.checked
def compute_matched_steps(teacher: ModelConfig, student: ModelConfig,
                          config: TrainConfig) -> int:
    """Steps of training alone that cost as many FLOPs as config.max_iters distilled steps."""
    per_step = flops_per_step(teacher, student, config.batch_size)
    return round(config.max_iters * per_step["distilled"] / per_step["alone"])


@dataclass
class DistillationResult:
    """The same student trained with a teacher and without: for the same number of steps
    ("alone") and, optionally, for as many training FLOPs as distillation took ("matched")."""

    student_config: ModelConfig
    train_config: TrainConfig
    distilled: TinyGPT
    alone: TinyGPT
    distilled_history: History
    alone_history: History
    distilled_val_loss: float  # nats per token, on validation_loss's fixed windows
    alone_val_loss: float
    matched: TinyGPT | None = None  # trained alone for compute_matched_steps steps
    matched_history: History | None = None
    matched_val_loss: float | None = None
    step_flops: dict | None = None  # flops_per_step: training FLOPs per step of each student

    @property
    def matched_gain(self) -> float | None:
        """How much lower the distilled student's loss is than the compute-matched one's."""
        return None if self.matched_val_loss is None \
            else self.matched_val_loss - self.distilled_val_loss

    def matched_verdict(self) -> str:
        """The finding against the compute-matched student, in one sentence."""
        gain = self.matched_gain
        if gain is None:
            return "No compute-matched student was trained."
        against = (f"than the student trained alone for the same compute "
                   f"({len(self.matched_history.step_loss)} steps instead of "
                   f"{self.train_config.max_iters})")
        if gain > NOISE_NATS:
            return (f"With the same compute, the teacher still helped: the distilled student's "
                    f"loss is {gain:.3f} nats lower {against}.")
        if gain < -NOISE_NATS:
            return (f"With the same compute, training alone did better: the distilled "
                    f"student's loss is {-gain:.3f} nats higher {against}.")
        return (f"With the same compute, no clear difference: the distilled student's loss is "
                f"within {abs(gain):.3f} nats of the one trained alone for the same compute "
                f"({len(self.matched_history.step_loss)} steps instead of "
                f"{self.train_config.max_iters}).")

    @property
    def gain(self) -> float:
        """How much lower (better) the distilled student's validation loss is, in nats."""
        return self.alone_val_loss - self.distilled_val_loss

    @property
    def training_tokens(self) -> int:
        return self.distilled_history.tokens

    def outcome(self) -> str:
        """The finding in a few words: whether the teacher helped, beyond NOISE_NATS."""
        if self.gain > NOISE_NATS:
            return "Distillation helped"
        if self.gain < -NOISE_NATS:
            return "Distillation did not help here"
        return "No clear difference"

    def verdict(self) -> str:
        """The finding in one sentence, with the difference in nats."""
        gain = self.gain
        if gain > NOISE_NATS:
            detail = (f"the distilled student's validation loss is {gain:.3f} nats lower than "
                      f"the same student trained on the data alone.")
        elif gain < -NOISE_NATS:
            detail = (f"the distilled student's validation loss is {-gain:.3f} nats higher "
                      f"than the student trained on the data alone.")
        else:
            detail = (f"the two students are within {abs(gain):.3f} nats of each other, about "
                      f"the noise of this measurement.")
        return f"{self.outcome()}: {detail}"


@validate.checked
def compare_distillation(teacher: TinyGPT, student_config: ModelConfig, data: TokenData,
                         config: TrainConfig, *, temperature: float = 2.0,
                         alpha: float = 0.5, progress: bool = False,
                         matched: bool = False) -> DistillationResult:
    """Train identical students (same initial weights and batches), one with the teacher's
    soft targets and one on the data alone for the same steps, and score both on the same
    text. matched=True trains a third on the data alone for as many training FLOPs as the
    distilled one took (compute_matched_steps: the teacher's forward passes cost steps).
    The students are made on the teacher's device, in its dtype."""
    check_model(teacher)
    check_student_config(teacher.config, student_config)
    validate.flag("matched", matched)
    runtime.seed_everything(config.seed)
    distilled = TinyGPT(student_config).to(teacher.device, teacher.wte.weight.dtype)
    alone = copy.deepcopy(distilled)  # same starting point: only the teacher differs
    longer = copy.deepcopy(distilled) if matched else None
    distilled_history = distill(teacher, distilled, data, config, temperature=temperature,
                                alpha=alpha, progress=progress)
    alone_history = training.train(alone, data, config, progress=progress)
    result = DistillationResult(student_config, config, distilled.eval(), alone.eval(),
                                distilled_history, alone_history,
                                validation_loss(distilled, data), validation_loss(alone, data),
                                step_flops=flops_per_step(teacher.config, student_config,
                                                          config.batch_size))
    if longer is not None:
        steps = compute_matched_steps(teacher.config, student_config, config)
        result.matched_history = training.train(
            longer, data, replace(config, max_iters=steps), progress=progress)
        result.matched, result.matched_val_loss = longer.eval(), validation_loss(longer, data)
    return result
