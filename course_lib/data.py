"""Text to train on, a character-level tokenizer, and random batches.

The default corpus needs no download: it is the Python standard library's own
pure-Python source files, which exist on every machine that runs this course.
A model trained on it is a tiny code-completion model. The same selection
rules give the same text on every run with the same Python version; another
Python version has other sources, so every corpus carries a fingerprint
(SHA-256 and size) that checkpoints store and check.

An optional download (Tiny Shakespeare, the corpus nanoGPT uses) is pinned by
SHA-256 and cached, and says clearly when the machine is offline.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import sysconfig
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import torch

from course_lib import runtime, validate
from course_lib.training_config import MAX_BATCH_SIZE

DEFAULT_CORPUS_CHARS = 2_000_000  # about 2 MB: enough for 2000 iterations of 12 x 64 tokens
MIN_CORPUS_CHARS = 1_000_000
# Folders of the standard library that are not ordinary library code.
_SKIPPED_FOLDERS = {"test", "tests", "site-packages", "idlelib", "__pycache__"}

# Downloadable corpora, pinned: the file must have exactly this SHA-256.
DOWNLOADS = {
    "tiny_shakespeare": {
        "url": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
        "tinyshakespeare/input.txt",
        "sha256": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        "bytes": 1_115_394,
    },
}


class CorpusDownloadError(RuntimeError):
    """A corpus could not be downloaded; the message says why and what to do instead."""


@dataclass(frozen=True)
class Corpus:
    """A training text and its fingerprint (checkpoints store the fingerprint)."""

    name: str
    text: str
    source: str  # where the text came from, for a human

    def __post_init__(self) -> None:
        for field in ("name", "text", "source"):
            validate.instance(field, getattr(self, field), str)

    @functools.cached_property  # the text never changes; hashing 2 MB once is enough
    def sha256(self) -> str:
        """SHA-256 of the text encoded as UTF-8."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @functools.cached_property
    def n_bytes(self) -> int:
        """Size of the text in bytes (UTF-8)."""
        return len(self.text.encode("utf-8"))

    def fingerprint(self) -> dict:
        """Name, source, size and hash: enough to tell whether two corpora are the same text."""
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "n_bytes": self.n_bytes,
            "n_chars": len(self.text),
        }


@validate.checked
def stdlib_source_files(root: Path | None = None) -> list[Path]:
    """The standard library's .py files in a fixed order (sorted by relative path).

    Test suites, site-packages and IDLE are left out: they are not ordinary library code.
    """
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = []
    for folder, subfolders, names in os.walk(root):
        # Prune skipped folders here so the walk never descends into them (site-packages
        # can hold gigabytes of installed packages).
        subfolders[:] = [name for name in subfolders if name not in _SKIPPED_FOLDERS]
        files.extend(Path(folder) / name for name in names if name.endswith(".py"))
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


@validate.checked
def stdlib_corpus(max_chars: int = DEFAULT_CORPUS_CHARS, root: Path | None = None) -> Corpus:
    """The default corpus: the first `max_chars` characters of the standard library's sources.

    Each file is preceded by a `# file: <path>` line. Same Python, same text.
    """
    validate.whole("max_chars", max_chars)
    root = Path(root or sysconfig.get_paths()["stdlib"])
    pieces, total = [], 0
    for path in stdlib_source_files(root):
        source = path.read_text(encoding="utf-8", errors="replace")
        piece = f"# file: {path.relative_to(root).as_posix()}\n{source}\n"
        pieces.append(piece)
        total += len(piece)
        if total >= max_chars:
            break
    text = "".join(pieces)[:max_chars]
    if len(text) < min(max_chars, MIN_CORPUS_CHARS):
        raise ValueError(
            f"the Python standard library sources under {root} hold only {len(text):,} "
            f"characters; the course needs at least {min(max_chars, MIN_CORPUS_CHARS):,}. "
            f"Use download_corpus('tiny_shakespeare') or read_text_corpus(path) instead."
        )
    version = f"{sys.implementation.name} {sys.version_info.major}.{sys.version_info.minor}"
    return Corpus("python-stdlib", text, f"{version} standard library at {root}")


@validate.checked
def read_text_corpus(path: str | Path, name: str | None = None) -> Corpus:
    """A corpus from any UTF-8 text file of your own."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"corpus file {path} must be UTF-8 text ({error.reason})") from None
    return Corpus(name or path.stem, text, str(path))


def _sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MAX_DOWNLOAD_TIMEOUT_S = 600.0
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def download_corpus(
    name: str = "tiny_shakespeare",
    *,
    url: str | None = None,
    sha256: str | None = None,
    cache: Path | None = None,
    timeout_s: float = 20.0,
) -> Corpus:
    """Download a named public corpus once, check its SHA-256, and cache it.

    `url` and `sha256` override the pinned values (tests use a local file:// or
    http://127.0.0.1 URL). `name` names the cached file, so it must be a plain file name
    (letters, digits, '.', '_', '-'; no folders), and the file always lies inside the cache
    folder. The cached copy is re-checked on every call. Raises CorpusDownloadError when
    the machine is offline or the server fails, and ValueError when the bytes do not match.
    """
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"name must be a plain file name (letters, digits, '.', '_', '-', "
                         f"at most 64 characters, no folders), got {name!r}")
    if name not in DOWNLOADS and (url is None or sha256 is None):
        raise ValueError(
            f"name must be one of {sorted(DOWNLOADS)} (or pass url= and sha256=), got {name!r}"
        )
    validate.positive("timeout_s", timeout_s, upper=MAX_DOWNLOAD_TIMEOUT_S)
    for what, given in (("url", url), ("sha256", sha256)):
        validate.instance(what, given, (str, type(None)))
    validate.instance("cache", cache, (str, os.PathLike, type(None)))
    pinned = DOWNLOADS.get(name, {})
    url = url or pinned["url"]
    sha256 = (sha256 or pinned["sha256"]).lower()
    folder = (Path(cache) if cache is not None else runtime.cache_dir() / "corpora").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.txt"
    if target.resolve().parent != folder:  # a link planted in the cache: refuse, never follow
        raise ValueError(f"the cached corpus {target} must be a file inside {folder}")
    if target.exists():
        data = target.read_bytes()
        if _sha256_of(data) == sha256:
            return Corpus(name, data.decode("utf-8"), f"{url} (cached at {target})")
        target.unlink()  # a damaged or outdated copy: fetch it again
    data = _fetch(name, url, sha256, timeout_s, target)
    # Write then rename, so an interrupted download never leaves a half file in the cache.
    with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as handle:
        handle.write(data)
    os.replace(handle.name, target)
    return Corpus(name, data.decode("utf-8"), f"{url} (cached at {target})")


def _fetch(name: str, url: str, sha256: str, timeout_s: float, target: Path) -> bytes:
    """The bytes at `url`, checked against `sha256`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CorpusDownloadError(
            f"Could not download the {name!r} corpus from {url} ({reason}). "
            f"This machine may be offline. The course works offline with the default "
            f"corpus, stdlib_corpus(); or copy the file to {target} by hand."
        ) from None
    got = _sha256_of(data)
    if got != sha256:
        raise ValueError(
            f"the file downloaded from {url} has SHA-256 {got}, expected {sha256}: "
            f"it is not the pinned corpus {name!r}, so it was not cached"
        )
    return data


class CharTokenizer:
    """One token per character. The vocabulary is the set of characters in a text.

    Characters it has not seen: with unknown="replace" (default) each becomes the
    replacement character U+FFFD, which is always in the vocabulary; with
    unknown="error", encode() raises a ValueError listing them.
    """

    REPLACEMENT = "\ufffd"

    def __init__(self, chars: str, unknown: str = "replace"):
        validate.instance("chars", chars, str, " (the text whose characters are the vocabulary)")
        validate.choice("unknown", unknown, ("replace", "error"))
        self.chars = "".join(sorted(set(chars) | {self.REPLACEMENT}))
        self.unknown = unknown
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str, unknown: str = "replace") -> CharTokenizer:
        """A tokenizer whose vocabulary is every character in `text`."""
        return cls(text, unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @validate.checked
    def encode(self, text: str, unknown: str | None = None) -> list[int]:
        """Token ids of `text`, one per character; `unknown` overrides the tokenizer's policy
        for characters it has not seen ('replace' or 'error')."""
        policy = self.unknown if unknown is None else unknown
        if policy not in ("replace", "error"):
            raise ValueError(f"unknown must be 'replace' or 'error', got {unknown!r}")
        missing = set(text) - self.stoi.keys()
        if missing and policy == "error":
            raise ValueError(
                f"text contains characters not in the vocabulary (never seen in training): "
                f"{sorted(missing)[:10]!r}; use only characters from the training text "
                f"(tokenizer.chars), or unknown='replace' to map them to {self.REPLACEMENT!r}"
            )
        unk = self.stoi[self.REPLACEMENT]
        return [self.stoi.get(ch, unk) for ch in text]

    def decode(self, ids) -> str:
        """Text of a sequence of token ids."""
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError(f"ids must be a sequence of token ids, got {ids!r:.60}")
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, Integral)
               or not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids must be token ids, whole numbers in [0, "
                             f"{self.vocab_size - 1}], got {bad[:5]}")
        return "".join(self.chars[i] for i in ids)


@dataclass
class TokenData:
    """A corpus as token ids, split into training and validation parts."""

    tokenizer: CharTokenizer
    train: torch.Tensor  # 1-D torch.long
    val: torch.Tensor
    corpus: dict  # the corpus fingerprint

    @property
    def n_tokens(self) -> int:
        return self.train.numel() + self.val.numel()


@validate.checked
def prepare(corpus: Corpus, block_size: int, val_fraction: float = 0.1) -> TokenData:
    """Tokenize a corpus and split it: the first (1 - val_fraction) trains, the rest validates.

    Both parts must hold more than `block_size` tokens (one input block plus the
    next-token target).
    """
    validate.whole("block_size", block_size)
    validate.positive("val_fraction", val_fraction, below=1)
    tokenizer = CharTokenizer.from_text(corpus.text)
    ids = torch.tensor(tokenizer.encode(corpus.text), dtype=torch.long)
    n_train = int(len(ids) * (1.0 - val_fraction))
    train, val = ids[:n_train], ids[n_train:]
    needed = block_size + 1
    if len(train) < needed or len(val) < needed:
        raise ValueError(
            f"corpus {corpus.name!r} is too short: {len(ids):,} characters give "
            f"{len(train):,} training and {len(val):,} validation tokens, but each part "
            f"needs at least block_size + 1 = {needed:,}. Use a longer text, a smaller "
            f"block_size or a val_fraction nearer 0.5."
        )
    return TokenData(tokenizer, train, val, corpus.fingerprint())


@validate.checked
def get_batch(
    tokens: torch.Tensor, batch_size: int, block_size: int,
    generator: torch.Generator | None = None, device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows: inputs x and targets y (x shifted left by one token).

    The windows are drawn with `generator` (on the CPU, so a seed gives the same batches on
    every device) and put on `device`: runtime.device() unless given.
    """
    validate.whole("batch_size", batch_size, highest=MAX_BATCH_SIZE)
    validate.whole("block_size", block_size)
    if tokens.dim() != 1 or tokens.dtype != torch.long:
        raise ValueError(f"tokens must be a 1-D torch.long tensor of token ids, got "
                         f"{tokens.dtype} {tuple(tokens.shape)}")
    if len(tokens) < block_size + 1:
        raise ValueError(
            f"tokens must hold at least block_size + 1 = {block_size + 1} ids, got {len(tokens)}"
        )
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    x = torch.stack([tokens[i : i + block_size] for i in starts.tolist()])
    y = torch.stack([tokens[i + 1 : i + 1 + block_size] for i in starts.tolist()])
    target = runtime.device() if device is None else runtime.as_device("device", device)
    return x.to(target), y.to(target)


def load_default_data(block_size: int = 64) -> TokenData:
    """The default corpus, tokenized and split: what notebooks 02 and later train on."""
    return prepare(stdlib_corpus(), block_size)
