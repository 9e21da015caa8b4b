"""Checkpoints: save a trained model with everything needed to use or resume it, load it back.

Torch layer. A save is atomic (a crash or a full disk mid-save leaves the previous file
intact, and the next save removes what a killed save left behind). Every file carries a
SHA-256 of its contents, so a load refuses a damaged or altered file instead of returning
a silently different model; it also checks the format, the model shape, the corpus, the
step and that every weight is finite, and puts the model on runtime.device().
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from course_lib import runtime, validate
from course_lib.data import CharTokenizer, TokenData
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.training_config import History, TrainConfig

# /2 added the checksum; a /1 file is refused with a message (retrain: seconds to minutes).
CHECKPOINT_FORMAT = "course_lib.training/2"
_CHECKPOINT_KEYS = ("model_config", "train_config", "corpus", "tokenizer_chars", "iter_num",
                    "history", "model", "optimizer")


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


@validate.checked
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
    path = check_path(path)
    validate.whole("iter_num", iter_num, lowest=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
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
    payload["sha256"] = payload_digest(payload)
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


def check_path(path) -> Path:
    """`path` as a Path if a checkpoint can be written there; checked before training starts,
    so that a bad path fails at once, not at the first save after minutes of training."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"checkpoint must be a file path (str or pathlib.Path), got {path!r}")
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"checkpoint must be a file path, but {path} is a folder")
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files earlier saves of `path` left when they were killed."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*"):
            stale.unlink(missing_ok=True)


@validate.checked
def payload_digest(payload: dict) -> str:
    """SHA-256 over everything a checkpoint stores but the digest itself: names, numbers,
    strings and every tensor's dtype, shape and bytes, in a fixed order."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != "sha256"})
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous().reshape(-1)  # 0-d tensors too
        digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


@validate.checked
def load_checkpoint(
    path: str | Path,
    *,
    model_config: ModelConfig | None = None,
    corpus: dict | None = None,
) -> Checkpoint:
    """Load a checkpoint saved by save_checkpoint (with torch.load(weights_only=True)).

    model_config / corpus: if given, the checkpoint must have been made with this
    model shape / on this corpus (compared by SHA-256), else a ValueError says
    what differs. The model comes back in eval mode on runtime.device().
    """
    path = Path(path)
    payload = _read_payload(path)
    _check_corpus(path, payload["corpus"], corpus)
    saved_config = _saved_config(path, payload, model_config)
    try:
        model = TinyGPT(saved_config)
        model.load_state_dict(payload["model"])
        model.to(runtime.device()).eval()
        tokenizer = CharTokenizer(payload["tokenizer_chars"])
        if tokenizer.vocab_size != saved_config.vocab_size:
            raise ValueError("its tokenizer and model disagree on the vocabulary size")
        return Checkpoint(
            path=path,
            model=model,
            tokenizer=tokenizer,
            model_config=saved_config,
            train_config=TrainConfig(**payload["train_config"]),
            corpus=payload["corpus"],
            iter_num=payload["iter_num"],
            history=History(**payload["history"]),
            optimizer_state=payload["optimizer"],
        )
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise ValueError(
            f"checkpoint file {path} is incomplete or inconsistent ({str(error)[:160]}). "
            f"Delete it and train again."
        ) from None


def _read_payload(path: Path) -> dict:
    """The checkpoint's contents, checked to be a complete course checkpoint."""
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
            f"{CHECKPOINT_FORMAT!r}); save checkpoints with "
            f"course_lib.checkpoints.save_checkpoint"
        )
    missing = sorted(set(_CHECKPOINT_KEYS) - payload.keys())
    if missing:
        raise ValueError(f"checkpoint file {path} is incomplete: it lacks {missing}")
    if payload.get("sha256") != payload_digest(payload):
        raise ValueError(f"checkpoint file {path} is damaged: its contents do not match the "
                         f"checksum saved with it. Delete it and train again.")
    _check_contents(path, payload)
    return payload


def _check_contents(path: Path, payload: dict) -> None:
    """Values that a checksum cannot vouch for: they were already wrong when saved."""
    step = payload["iter_num"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"checkpoint file {path} has step {step!r}: it must be a whole number "
                         f">= 0. Delete it and train again.")
    chars = payload["tokenizer_chars"]
    if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars):
        raise ValueError(f"checkpoint file {path} has no valid tokenizer (its characters must "
                         f"be a non-empty string without repeats). Delete it and train again.")
    for name, tensor in payload["model"].items():
        if not isinstance(tensor, torch.Tensor) or not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"checkpoint file {path} holds non-finite weights ({name}): the run "
                             f"that saved it diverged. Delete it and train again.")


def _check_corpus(path: Path, saved: dict, corpus: dict | None) -> None:
    if corpus is not None and saved["sha256"] != corpus["sha256"]:
        raise ValueError(
            f"checkpoint file {path} was trained on another corpus: {saved['name']} "
            f"from {saved['source']} ({saved['n_bytes']:,} bytes, SHA-256 "
            f"{saved['sha256'][:12]}...), but this corpus is {corpus['name']} from "
            f"{corpus['source']} ({corpus['n_bytes']:,} bytes, SHA-256 "
            f"{corpus['sha256'][:12]}...). The standard library differs between Python "
            f"versions; train again on this machine."
        )


def _saved_config(path: Path, payload: dict, expected: ModelConfig | None) -> ModelConfig:
    try:
        saved = ModelConfig(**payload["model_config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"checkpoint file {path} has no valid model configuration ({error})"
        ) from None
    if expected is not None and saved != expected:
        differences = ", ".join(
            f"{f.name}={getattr(saved, f.name)!r} (expected {getattr(expected, f.name)!r})"
            for f in fields(ModelConfig)
            if getattr(saved, f.name) != getattr(expected, f.name)
        )
        raise ValueError(
            f"checkpoint file {path} was saved for another model configuration: {differences}"
        )
    return saved


def default_checkpoint_path() -> Path:
    """Where the default model is saved (fast mode uses its own file)."""
    name = runtime.pick("tinygpt_stdlib.pt", "tinygpt_stdlib_fast.pt")
    return runtime.cache_dir() / name
