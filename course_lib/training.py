"""The training loop, its learning-rate schedule, and checkpoints.

One training step (notebook 02 shows it in full):

    x, y = get_batch(...)                 # a random batch of token windows
    logits, loss = model(x, y)            # forward: predict every next token
    loss.backward()                       # backward: gradient of the loss w.r.t. every weight
    clip_grad_norm_(params, grad_clip)    # keep one bad batch from blowing up the weights
    optimizer.step()                      # AdamW update
    optimizer.zero_grad(set_to_none=True)

train() adds what makes a run pleasant and reproducible: seeds, a warm-up
and cosine learning-rate schedule, periodic validation loss, a progress bar
(tqdm's notebook-aware bar), a live loss curve in Jupyter, timing, and
checkpoints that are written atomically and can be resumed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from course_lib import data as data_lib
from course_lib import runtime, validate
from course_lib.data import CharTokenizer, TokenData, get_batch
from course_lib.model import ModelConfig, TinyGPT

CHECKPOINT_FORMAT = "course_lib.training/1"
_CHECKPOINT_KEYS = ("model_config", "train_config", "corpus", "tokenizer_chars", "iter_num",
                    "history", "model", "optimizer")


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
        for name in ("batch_size", "max_iters", "eval_interval", "eval_iters"):
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

    @property
    def decay_iters(self) -> int:
        return self.lr_decay_iters or self.max_iters


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up to learning_rate, then cosine decay to min_lr (nanoGPT's schedule)."""
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    if step >= config.decay_iters:
        return config.min_lr
    progress = (step - config.warmup_iters) / max(1, config.decay_iters - config.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


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


@torch.no_grad()
def estimate_loss(
    model: TinyGPT, data: TokenData, config: TrainConfig, generator: torch.Generator
) -> dict[str, float]:
    """Mean loss (nats per token) over eval_iters random batches of each split."""
    return {split: mean_loss(model, tokens, config.eval_iters, config.batch_size, generator)
            for split, tokens in (("train", data.train), ("val", data.val))}


@torch.no_grad()
def mean_loss(model: TinyGPT, tokens: torch.Tensor, batches: int, batch_size: int,
              generator: torch.Generator) -> float:
    """Mean cross-entropy (nats per token) over `batches` random windows of `tokens`, in eval
    mode (no dropout); the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(batches):
        x, y = get_batch(tokens, batch_size, model.config.block_size, generator)
        total += model(x.to(model.device), y.to(model.device))[1].item()
    model.train(was_training)
    return total / batches


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

    def as_dict(self) -> dict:
        return asdict(self)


class _LivePlot:
    """A loss curve redrawn in place in Jupyter; does nothing outside a notebook kernel.

    The figure is rendered to PNG here and shown as an image, so it works whatever
    matplotlib backend the notebook uses (and under nbval, where nobody looks at it).
    """

    def __init__(self, enabled: bool | None):
        self.handle = None
        if enabled is None:
            enabled = _in_notebook()
        if enabled:
            from IPython.display import display

            from course_lib import plots  # matplotlib loads only when plotting

            self.figure, (self.axes,) = plots.new_figure(6, 3.2)
            self.handle = display(self._image(), display_id=True)

    def _image(self):
        from IPython.display import Image

        from course_lib import plots

        return Image(data=plots.to_png(self.figure), format="png")

    def update(self, history: History) -> None:
        if self.handle is None:
            return
        self.axes.clear()
        plot_history(history, self.axes)
        self.handle.update(self._image())


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def plot_history(history: History, axes=None):
    """Training loss per step and estimated train/val loss, in nats per token."""
    from course_lib import plots  # matplotlib loads only when plotting

    if axes is None:
        axes = plots.new_figure(6, 3.2)[1][0]
    colors = plots.colors()
    axes.plot(history.step_loss, color=colors[0], alpha=0.35, lw=0.8, label="batch loss")
    axes.plot(history.eval_iters, history.train_loss, "o-", color=colors[1], label="train")
    axes.plot(history.eval_iters, history.val_loss, "s-", color=colors[2], label="validation")
    axes.set_xlabel("training step")
    axes.set_ylabel("loss (nats per character)")
    final = f"{history.val_loss[-1]:.2f}" if history.val_loss else "?"
    axes.set_title(f"Loss falls as the model learns (validation: {final} nats/char)")
    axes.grid(alpha=0.3)
    axes.legend()
    return axes


def train(
    model: TinyGPT,
    data: TokenData,
    config: TrainConfig,
    *,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    live_plot: bool | None = None,
    loss_fn: Callable[[TinyGPT, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> History:
    """Train `model` on `data` for config.max_iters steps; return the History.

    checkpoint: a file to save to at every evaluation and at the end (atomically).
    resume: continue from that checkpoint (model, optimizer, step, history) if it
    exists; raising max_iters and resuming trains further.
    live_plot: None draws a live loss curve only inside a Jupyter kernel.
    loss_fn: what a step minimises, loss_fn(model, x, y) for a batch of inputs x and
    targets y; None uses the model's own cross-entropy. Distillation
    (course_lib.compression) passes one that also asks a teacher. The validation loss
    History records is always the plain cross-entropy, so runs stay comparable.
    """
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
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
    runtime.seed_everything(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    history, start = History(), 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint, model_config=model.config, corpus=data.corpus)
        model.load_state_dict(saved.model.state_dict())
        optimizer.load_state_dict(saved.optimizer_state)
        history, start = saved.history, saved.iter_num
        generator.manual_seed(config.seed + start)  # fresh batches, not a replay of step 0's

    device = model.device
    block = model.config.block_size
    plot = _LivePlot(live_plot)
    bar = tqdm(range(start, config.max_iters), disable=not progress, desc="training",
               unit="step", mininterval=0.5, initial=start, total=config.max_iters)
    model.train()
    for step in bar:
        if step % config.eval_interval == 0:
            _evaluate(model, data, config, generator, history, step, plot)
            if checkpoint is not None and step > start:
                save_checkpoint(checkpoint, model, optimizer, data, config, step, history)
        began = time.perf_counter()
        lr = learning_rate_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(data.train, config.batch_size, block, generator)
        x, y = x.to(device), y.to(device)
        loss = model(x, y)[1] if loss_fn is None else loss_fn(model, x, y)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(
                f"the training loss became {loss_value} at step {step}: learning_rate "
                f"{config.learning_rate} is probably too high for this model"
            )
        history.train_seconds += time.perf_counter() - began
        history.step_loss.append(loss_value)
        history.lr.append(lr)
        history.tokens += config.batch_size * block
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    bar.close()
    _evaluate(model, data, config, generator, history, config.max_iters, plot)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, optimizer, data, config, config.max_iters, history)
    return history


def _evaluate(model, data, config, generator, history, step, plot) -> None:
    if history.eval_iters and history.eval_iters[-1] == step:
        return  # already estimated at this step (e.g. just after resuming)
    began = time.perf_counter()
    losses = estimate_loss(model, data, config, generator)
    history.eval_seconds += time.perf_counter() - began
    history.eval_iters.append(step)
    history.train_loss.append(losses["train"])
    history.val_loss.append(losses["val"])
    plot.update(history)


# --- Checkpoints ------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (ready to use), its tokenizer, and what made it."""

    path: Path
    model: TinyGPT
    tokenizer: CharTokenizer
    model_config: ModelConfig
    train_config: TrainConfig
    corpus: dict  # fingerprint of the corpus it was trained on
    iter_num: int
    history: History
    optimizer_state: dict


def save_checkpoint(
    path: str | Path,
    model: TinyGPT,
    optimizer: torch.optim.Optimizer,
    data: TokenData,
    config: TrainConfig,
    iter_num: int,
    history: History,
) -> Path:
    """Save everything needed to use or resume the model, atomically.

    The file is written to a temporary name in the same folder and renamed over
    `path` only once complete, so a crash or full disk mid-save leaves the
    previous checkpoint intact. Only tensors, numbers, strings, lists and dicts
    are stored, so torch.load(weights_only=True) can read it safely.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": asdict(model.config),
        "train_config": asdict(config),
        "corpus": dict(data.corpus),
        "tokenizer_chars": data.tokenizer.chars,
        "iter_num": iter_num,
        "history": history.as_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
    }
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path,
    *,
    model_config: ModelConfig | None = None,
    corpus: dict | None = None,
) -> Checkpoint:
    """Load a checkpoint saved by save_checkpoint (with torch.load(weights_only=True)).

    model_config / corpus: if given, the checkpoint must have been made with this
    model shape / on this corpus (compared by SHA-256), else a ValueError says
    what differs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        raise ValueError(
            f"checkpoint file {path} is damaged or is not a course checkpoint "
            f"({type(error).__name__}: {str(error)[:120]}). Delete it and train again."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint file {path} is not a course checkpoint (expected format "
            f"{CHECKPOINT_FORMAT!r}); save checkpoints with course_lib.training.save_checkpoint"
        )
    missing = sorted(set(_CHECKPOINT_KEYS) - payload.keys())
    if missing:
        raise ValueError(f"checkpoint file {path} is incomplete: it lacks {missing}")
    saved_corpus = payload["corpus"]
    if corpus is not None and saved_corpus["sha256"] != corpus["sha256"]:
        raise ValueError(
            f"checkpoint file {path} was trained on another corpus: {saved_corpus['name']} "
            f"from {saved_corpus['source']} ({saved_corpus['n_bytes']:,} bytes, SHA-256 "
            f"{saved_corpus['sha256'][:12]}...), but this corpus is {corpus['name']} from "
            f"{corpus['source']} ({corpus['n_bytes']:,} bytes, SHA-256 "
            f"{corpus['sha256'][:12]}...). The standard library differs between Python "
            f"versions; train again on this machine."
        )
    try:
        saved_config = ModelConfig(**payload["model_config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"checkpoint file {path} has no valid model configuration ({error})"
        ) from None
    if model_config is not None and saved_config != model_config:
        differences = ", ".join(
            f"{f.name}={getattr(saved_config, f.name)!r} (expected "
            f"{getattr(model_config, f.name)!r})"
            for f in fields(ModelConfig)
            if getattr(saved_config, f.name) != getattr(model_config, f.name)
        )
        raise ValueError(
            f"checkpoint file {path} was saved for another model configuration: {differences}"
        )
    try:
        model = TinyGPT(saved_config)
        model.load_state_dict(payload["model"])
        model.eval()
        tokenizer = CharTokenizer(payload["tokenizer_chars"])
        if tokenizer.vocab_size != saved_config.vocab_size:
            raise ValueError("its tokenizer and model disagree on the vocabulary size")
        return Checkpoint(
            path=path,
            model=model,
            tokenizer=tokenizer,
            model_config=saved_config,
            train_config=TrainConfig(**payload["train_config"]),
            corpus=saved_corpus,
            iter_num=payload["iter_num"],
            history=History(**payload["history"]),
            optimizer_state=payload["optimizer"],
        )
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise ValueError(
            f"checkpoint file {path} is incomplete or inconsistent ({str(error)[:160]}). "
            f"Delete it and train again."
        ) from None


# --- The course's default model ---------------------------------------------------------------


def default_model_config(vocab_size: int) -> ModelConfig:
    """nanoGPT's CPU configuration (ModelConfig's defaults): 4 layers, 4 heads, 128 wide,
    context 64, no dropout."""
    return ModelConfig(vocab_size=vocab_size)


def untrained_default_model(seed: int = 0) -> TinyGPT:
    """The default model's shape, sized for the default corpus, with fresh random weights
    (seeded): enough for measuring time and FLOPs, which do not depend on training."""
    vocab_size = data_lib.load_default_data(block_size=ModelConfig.block_size).tokenizer.vocab_size
    torch.manual_seed(seed)
    return TinyGPT(default_model_config(vocab_size))


def default_train_config() -> TrainConfig:
    """nanoGPT's CPU run (2000 steps); fast mode trains 50 steps."""
    return TrainConfig(max_iters=runtime.pick(TrainConfig.max_iters, 50),
                       eval_interval=runtime.pick(TrainConfig.eval_interval, 25),
                       eval_iters=runtime.pick(TrainConfig.eval_iters, 4))


def default_checkpoint_path() -> Path:
    """Where the default model is saved (fast mode uses its own file)."""
    name = runtime.pick("tinygpt_stdlib.pt", "tinygpt_stdlib_fast.pt")
    return runtime.cache_dir() / name


def load_or_train_default(
    *, retrain: bool = False, progress: bool = True, live_plot: bool | None = None
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
            print(f"Cannot use the checkpoint: {error}")
            path.unlink()
    if retrain or not path.exists():
        reason = "retrain=True" if retrain else f"No trained model at {path}"
        print(f"{reason}: training one now ({train_config.max_iters} steps, "
              f"{runtime.pick('about 3 minutes on one CPU core', 'a few seconds')}).")
    model = TinyGPT(model_config)
    train(model, data, train_config, checkpoint=path, resume=not retrain, progress=progress,
          live_plot=live_plot)
    return load_checkpoint(path, model_config=model_config, corpus=data.corpus)
