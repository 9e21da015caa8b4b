"""The training loop: one shared training step, train(), and the course's default model.

One training step (notebook 02 shows it in full):

    x, y = get_batch(...)                 # a random batch of token windows
    logits, loss = model(x, y)            # forward: predict every next token
    loss.backward()                       # backward: gradient of the loss w.r.t. every weight
    clip_grad_norm_(params, grad_clip)    # keep one bad batch from blowing up the weights
    optimizer.step()                      # AdamW update
    optimizer.zero_grad(set_to_none=True)

train() adds what makes a run pleasant and reproducible: seeds, a warm-up
and cosine learning-rate schedule, periodic validation loss, a progress bar
(tqdm's notebook-aware bar), an on_evaluate hook (notebook 02 passes a live loss curve
from course_lib.figures.training), timing, and checkpoints (course_lib.checkpoints) that
are written atomically and can be resumed. The settings and the schedule live in
course_lib.training_config.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from course_lib import data as data_lib
from course_lib import runtime, validate
from course_lib.checkpoints import (
    Checkpoint,
    check_path,
    default_checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from course_lib.data import TokenData, get_batch
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.training_config import History, TrainConfig, learning_rate_at


@validate.checked
def make_optimizer(model: TinyGPT, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, LayerNorms), as nanoGPT does.

    Uses the fused AdamW kernel when config.fused and this PyTorch offers it on
    the model's device (one kernel updates every tensor, instead of a loop of
    small operations per tensor); otherwise the multi-tensor (foreach) version.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    kwargs = dict(lr=config.learning_rate, betas=(config.beta1, config.beta2))
    if config.fused:
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError):  # no fused kernel for this device or version
            pass
    return torch.optim.AdamW(groups, foreach=True, **kwargs)


@validate.checked
@torch.no_grad()
def estimate_loss(
    model: TinyGPT, data: TokenData, config: TrainConfig, generator: torch.Generator
) -> dict[str, float]:
    """Mean loss (nats per token) over eval_iters random batches of each split."""
    return {split: mean_loss(model, tokens, config.eval_iters, config.batch_size, generator)
            for split, tokens in (("train", data.train), ("val", data.val))}


@validate.checked
@torch.no_grad()
def mean_loss(model: TinyGPT, tokens: torch.Tensor, batches: int, batch_size: int,
              generator: torch.Generator) -> float:
    """Mean cross-entropy (nats per token) over `batches` random windows of `tokens`, in eval
    mode (no dropout); the model's train/eval mode is restored afterwards."""
    validate.whole("batches", batches, highest=MAX_EVAL_BATCHES)
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(batches):
        x, y = get_batch(tokens, batch_size, model.config.block_size, generator)
        total += model(x.to(model.device), y.to(model.device))[1].item()
    model.train(was_training)
    return total / batches


MAX_EVAL_BATCHES = 100_000  # batches in one loss estimate: more would take hours

LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@validate.checked
def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, lr: float, grad_clip: float, loss_fn: LossFn | None = None
               ) -> float:
    """One optimisation step on the batch (x, y) at learning rate `lr`; returns the loss.

    The one training step of the course: train() runs it in one process, and the
    data-parallel worker runs it on a DistributedDataParallel model, whose backward pass
    also averages the gradients of every worker. Shown whole in notebook 02.
    """
    validate.positive("lr", lr)
    validate.positive("grad_clip (0: no clipping)", grad_clip, allow_zero=True)
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = model(x, y)[1] if loss_fn is None else loss_fn(model, x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=True)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def train(
    model: TinyGPT,
    data: TokenData,
    config: TrainConfig,
    *,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_evaluate: Callable[[History], None] | None = None,
    loss_fn: LossFn | None = None,
) -> History:
    """Train `model` on `data` for config.max_iters steps; return the History.

    checkpoint: a file saved (atomically) at every evaluation and at the end; resume:
    continue from it (model, optimizer, step, history) if it exists.
    on_evaluate: called with the History after every validation-loss estimate (notebook 02
    passes course_lib.figures.training.LiveLossPlot() for a live loss curve).
    loss_fn(model, x, y): what a step minimises; None means the model's cross-entropy
    (course_lib.distill passes one that also asks a teacher). The validation loss is always
    the plain cross-entropy, so runs stay comparable.
    """
    _check_train_inputs(model, data, config, resume, progress, on_evaluate, loss_fn)
    if checkpoint is not None:
        checkpoint = check_path(checkpoint)
    optimizer, generator, history, start = _start(model, data, config,
                                                  checkpoint if resume else None)
    block = model.config.block_size
    bar = tqdm(range(start, config.max_iters), disable=not progress, desc="training",
               unit="step", mininterval=0.5, initial=start, total=config.max_iters)
    model.train()
    for step in bar:
        if step % config.eval_interval == 0:
            _evaluate(model, data, config, generator, history, step, on_evaluate)
            if checkpoint is not None and step > start:
                save_checkpoint(checkpoint, model, optimizer, data, config, step, history)
        began = time.perf_counter()
        lr = learning_rate_at(step, config)
        x, y = get_batch(data.train, config.batch_size, block, generator, model.device)
        loss_value = train_step(model, optimizer, x, y, lr, config.grad_clip, loss_fn)
        _check_finite(loss_value, step, config)
        history.record_step(loss_value, lr, config.batch_size * block,
                            time.perf_counter() - began)
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    bar.close()
    _evaluate(model, data, config, generator, history, config.max_iters, on_evaluate)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, optimizer, data, config, config.max_iters, history)
    return history


def _check_finite(loss_value: float, step: int, config: TrainConfig) -> None:
    if not math.isfinite(loss_value):
        raise FloatingPointError(
            f"the training loss became {loss_value} at step {step}: learning_rate "
            f"{config.learning_rate} is probably too high for this model"
        )


def _check_train_inputs(model: TinyGPT, data: TokenData, config: TrainConfig, resume: bool,
                        progress: bool, on_evaluate, loss_fn) -> None:
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
    for name, value in (("on_evaluate", on_evaluate), ("loss_fn", loss_fn)):
        validate.instance(name, value, (Callable, type(None)))
    for name, value in (("resume", resume), ("progress", progress)):
        validate.flag(name, value)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(data, TokenData):
        raise TypeError(
            f"data must be a TokenData from course_lib.data.prepare(corpus, block_size), got "
            f"{type(data).__name__}"
        )
    if data.tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(
            f"model vocab_size={model.config.vocab_size} but the data's tokenizer has "
            f"{data.tokenizer.vocab_size} tokens: build ModelConfig(vocab_size="
            f"data.tokenizer.vocab_size, ...)"
        )


def _start(model: TinyGPT, data: TokenData, config: TrainConfig, resume_from: str | Path | None
           ) -> tuple[torch.optim.Optimizer, torch.Generator, History, int]:
    """Seed, build the optimizer and the batch generator; resume from `resume_from` if that
    checkpoint exists. Returns (optimizer, generator, history, first step)."""
    runtime.seed_everything(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    if resume_from is None or not Path(resume_from).exists():
        return optimizer, generator, History(), 0
    saved = load_checkpoint(resume_from, model_config=model.config, corpus=data.corpus)
    model.load_state_dict(saved.model.state_dict())
    optimizer.load_state_dict(saved.optimizer_state)
    generator.manual_seed(config.seed + saved.iter_num)  # fresh batches, not step 0's again
    return optimizer, generator, saved.history, saved.iter_num


def _evaluate(model, data, config, generator, history, step, on_evaluate) -> None:
    if history.eval_iters and history.eval_iters[-1] == step:
        return  # already estimated at this step (e.g. just after resuming)
    began = time.perf_counter()
    losses = estimate_loss(model, data, config, generator)
    history.eval_seconds += time.perf_counter() - began
    history.eval_iters.append(step)
    history.train_loss.append(losses["train"])
    history.val_loss.append(losses["val"])
    if on_evaluate is not None:
        on_evaluate(history)


# --- The course's default model ---------------------------------------------------------------


def default_model_config(vocab_size: int) -> ModelConfig:
    """nanoGPT's CPU configuration (ModelConfig's defaults): 4 layers, 4 heads, 128 wide,
    context 64, no dropout."""
    return ModelConfig(vocab_size=vocab_size)


def untrained_default_model(seed: int = 0) -> TinyGPT:
    """The default model's shape, sized for the default corpus, with fresh random weights
    (seeded): enough for measuring time and FLOPs, which do not depend on training."""
    validate.seed("seed", seed)
    vocab_size = data_lib.load_default_data(block_size=ModelConfig.block_size).tokenizer.vocab_size
    torch.manual_seed(seed)
    return TinyGPT(default_model_config(vocab_size)).to(runtime.device())


def default_train_config() -> TrainConfig:
    """nanoGPT's CPU run (2000 steps); fast mode trains 50 steps."""
    return TrainConfig(max_iters=runtime.pick(TrainConfig.max_iters, 50),
                       eval_interval=runtime.pick(TrainConfig.eval_interval, 25),
                       eval_iters=runtime.pick(TrainConfig.eval_iters, 4))


def load_or_train_default(
    *, retrain: bool = False, progress: bool = True,
    on_evaluate: Callable[[History], None] | None = None,
) -> Checkpoint:
    """The course's default model: load its checkpoint, or train it if missing or unusable.

    Notebooks 03 and later call this. Training takes about 3 minutes on one CPU
    core (seconds in fast mode); a message says so before it starts.
    """
    path = default_checkpoint_path()
    data = data_lib.load_default_data(block_size=64)
    model_config = default_model_config(data.tokenizer.vocab_size)
    train_config = default_train_config()
    if path.exists() and not retrain:
        try:
            saved = load_checkpoint(path, model_config=model_config, corpus=data.corpus)
            if saved.iter_num >= train_config.max_iters:
                return saved
            print(f"The checkpoint {path} is unfinished (step {saved.iter_num}); resuming.")
        except ValueError as error:
            kept = path.with_name(path.name + ".unusable")
            os.replace(path, kept)  # never delete a learner's file: keep it for a look
            print(f"Cannot use the checkpoint: {error}\nMoved it to {kept}.")
    if retrain or not path.exists():
        reason = "retrain=True" if retrain else f"No trained model at {path}"
        print(f"{reason}: training one now ({train_config.max_iters} steps, "
              f"{runtime.pick('about 3 minutes on one CPU core', 'a few seconds')}).")
    model = TinyGPT(model_config).to(runtime.device())
    train(model, data, train_config, checkpoint=path, resume=not retrain, progress=progress,
          on_evaluate=on_evaluate)
    return load_checkpoint(path, model_config=model_config, corpus=data.corpus)
