"""What a training run is set to do (TrainConfig, the learning-rate schedule) and what it did
(History).

Arithmetic layer: plain dataclasses and arithmetic, no torch, so a checkpoint's settings and
a schedule can be inspected and tested without loading PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from course_lib import validate

# The most sequences in one batch: 4096 x 64 tokens already needs gigabytes for the logits of a
# TinyGPT; a typo such as 10**12 would fail deep inside PyTorch instead.
MAX_BATCH_SIZE = 2**12  # 4,096: a round power of two, not a model dimension


@dataclass
class TrainConfig:
    """Training settings, named as in nanoGPT. Defaults: nanoGPT's Shakespeare CPU run."""

    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3  # peak, reached after warm-up
    min_lr: float = 1e-4  # floor of the cosine decay
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: decay over max_iters
    eval_interval: int = 250
    eval_iters: int = 20  # batches per validation-loss estimate
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 disables clipping
    seed: int = 1337
    fused: bool = True  # fused AdamW kernel where this PyTorch has one

    def __post_init__(self) -> None:
        validate.whole("batch_size", self.batch_size, highest=MAX_BATCH_SIZE)
        for name in ("max_iters", "eval_interval", "eval_iters"):
            validate.whole(name, getattr(self, name))
        validate.whole("warmup_iters", self.warmup_iters, lowest=0)
        if self.lr_decay_iters is not None:
            validate.whole("lr_decay_iters (or None)", self.lr_decay_iters)
        for name in ("learning_rate", "min_lr"):
            validate.positive(name, getattr(self, name))
        if self.min_lr > self.learning_rate:
            raise ValueError(
                f"min_lr must be <= learning_rate ({self.learning_rate}), got {self.min_lr}"
            )
        for name in ("beta1", "beta2"):
            validate.positive(name, getattr(self, name), allow_zero=True, below=1)
        for name in ("weight_decay", "grad_clip"):
            validate.positive(name, getattr(self, name), allow_zero=True)
        validate.seed("seed", self.seed)
        validate.flag("fused", self.fused)

    @property
    def decay_iters(self) -> int:
        return self.lr_decay_iters or self.max_iters


@validate.checked
def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up to learning_rate, then cosine decay to min_lr (nanoGPT's schedule)."""
    validate.whole("step", step, lowest=0)
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    if step >= config.decay_iters:
        return config.min_lr
    progress = (step - config.warmup_iters) / max(1, config.decay_iters - config.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


@dataclass
class History:
    """What happened during training: losses, learning rates, timing."""

    step_loss: list[float] = field(default_factory=list)  # training loss of every step
    eval_iters: list[int] = field(default_factory=list)  # steps where losses were estimated
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_seconds: float = 0.0  # time in training steps (excluding evaluation)
    eval_seconds: float = 0.0
    tokens: int = 0  # training tokens processed (batch_size x block_size per step)

    @property
    def seconds(self) -> float:
        return self.train_seconds + self.eval_seconds

    @property
    def tokens_per_s(self) -> float:
        """Training tokens per second of training-step time."""
        return self.tokens / self.train_seconds if self.train_seconds else 0.0

    def record_step(self, loss: float, lr: float, tokens: int, seconds: float) -> None:
        """Add one training step: its loss, learning rate, tokens and seconds."""
        self.step_loss.append(loss)
        self.lr.append(lr)
        self.tokens += tokens
        self.train_seconds += seconds

    def as_dict(self) -> dict:
        return asdict(self)
