"""Specification of course_lib.data: default corpus, download with checksum, tokenizer, batches."""

import hashlib
import http.server
import threading
from functools import partial

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data


@pytest.fixture(scope="module")
def corpus():
    return data.stdlib_corpus()


def test_default_corpus_is_real_text_of_at_least_one_megabyte(corpus):
    assert corpus.n_bytes >= 1_000_000, f"default corpus is only {corpus.n_bytes} bytes"
    assert "def " in corpus.text and "import " in corpus.text, "expected Python source code"
    assert "# file: " in corpus.text


def test_default_corpus_is_deterministic_and_fingerprinted(corpus):
    again = data.stdlib_corpus()
    assert again.text == corpus.text
    fingerprint = corpus.fingerprint()
    assert fingerprint["sha256"] == hashlib.sha256(corpus.text.encode("utf-8")).hexdigest()
    assert fingerprint["n_bytes"] == len(corpus.text.encode("utf-8"))
    assert fingerprint["n_chars"] == len(corpus.text)


def test_stdlib_selection_skips_tests_and_site_packages(tmp_path):
    for relative in ["b.py", "a.py", "pkg/c.py", "test/t.py", "site-packages/x/y.py", "d.txt"]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {relative}\n" * 3)
    names = [p.relative_to(tmp_path).as_posix() for p in data.stdlib_source_files(tmp_path)]
    assert names == ["a.py", "b.py", "pkg/c.py"]


def test_too_small_stdlib_is_a_clear_error(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="needs at least"):
        data.stdlib_corpus(root=tmp_path)


def test_tokenizer_round_trip_and_unknown_policy():
    tokenizer = data.CharTokenizer.from_text("hello world")
    assert tokenizer.decode(tokenizer.encode("hello")) == "hello"
    assert tokenizer.vocab_size == len(set("hello world")) + 1  # + the replacement character
    replaced = tokenizer.decode(tokenizer.encode("hello!"))
    assert replaced == "hello" + data.CharTokenizer.REPLACEMENT
    strict = data.CharTokenizer.from_text("hello world", unknown="error")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        strict.encode("hello!")
    with pytest.raises(ValueError, match="token ids"):
        tokenizer.decode([tokenizer.vocab_size])
    with pytest.raises(ValueError, match="unknown"):
        data.CharTokenizer("abc", unknown="drop")


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_tokenizer_round_trips_any_text_it_was_built_from(text):
    tokenizer = data.CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text


def test_prepare_splits_and_rejects_too_short_corpus():
    corpus = data.Corpus("tiny", "abcdefghij" * 30, "test")
    prepared = data.prepare(corpus, block_size=8, val_fraction=0.1)
    assert prepared.train.numel() == 270 and prepared.val.numel() == 30
    assert prepared.corpus["sha256"] == corpus.sha256
    with pytest.raises(ValueError, match="block_size"):
        data.prepare(corpus, block_size=40)
    with pytest.raises(ValueError, match="block_size"):
        data.prepare(corpus, block_size=0)


def test_get_batch_targets_are_inputs_shifted_by_one():
    tokens = torch.arange(100)
    generator = torch.Generator().manual_seed(0)
    x, y = data.get_batch(tokens, batch_size=5, block_size=7, generator=generator)
    assert x.shape == y.shape == (5, 7)
    assert torch.equal(y, x + 1), "targets must be the next token of each input"
    again = data.get_batch(tokens, 5, 7, torch.Generator().manual_seed(0))[0]
    assert torch.equal(x, again), "same seed, same batch"


# --- Download, tested without network -------------------------------------------------------

PAYLOAD = b"To be, or not to be, that is the question.\n" * 50
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served (no network needed)."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "corpus.txt").write_bytes(PAYLOAD)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_local_server_checks_hash_and_caches(local_server, tmp_path):
    cache = tmp_path / "cache"
    corpus = data.download_corpus("plays", url=f"{local_server}/corpus.txt", sha256=PAYLOAD_SHA,
                                  cache=cache)
    assert corpus.text.encode() == PAYLOAD
    assert (cache / "plays.txt").read_bytes() == PAYLOAD
    # Second call: served from the cache even though the URL now fails.
    again = data.download_corpus("plays", url=f"{local_server}/gone.txt", sha256=PAYLOAD_SHA,
                                 cache=cache)
    assert again.text == corpus.text


def test_download_with_wrong_hash_is_refused_and_not_cached(local_server, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="SHA-256"):
        data.download_corpus("plays", url=f"{local_server}/corpus.txt", sha256="0" * 64,
                             cache=cache)
    assert not (cache / "plays.txt").exists()


def test_download_from_file_url(tmp_path):
    source = tmp_path / "local.txt"
    source.write_bytes(PAYLOAD)
    corpus = data.download_corpus("local", url=source.as_uri(), sha256=PAYLOAD_SHA,
                                  cache=tmp_path / "cache")
    assert corpus.n_bytes == len(PAYLOAD)


def test_offline_download_gives_a_clear_message(tmp_path):
    # Port 9 on localhost has nothing listening: the connection is refused at once.
    with pytest.raises(data.CorpusDownloadError, match="offline") as info:
        data.download_corpus("plays", url="http://127.0.0.1:9/corpus.txt", sha256=PAYLOAD_SHA,
                             cache=tmp_path, timeout_s=2)
    assert "stdlib_corpus()" in str(info.value)


def test_damaged_cache_is_fetched_again(tmp_path):
    source = tmp_path / "local.txt"
    source.write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "local.txt").write_bytes(b"half a fi")
    corpus = data.download_corpus("local", url=source.as_uri(), sha256=PAYLOAD_SHA, cache=cache)
    assert corpus.text.encode() == PAYLOAD


@pytest.mark.parametrize("name", ["../victim", "/tmp/abs", "a/b", "..", "", ".hidden", None, 5,
                                  "x" * 65])
def test_a_corpus_name_cannot_reach_outside_the_cache(tmp_path, name):
    """The name becomes a file name: '../victim' once deleted a file outside the cache."""
    cache = tmp_path / "cache"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"a learner's file")
    source = tmp_path / "local.txt"
    source.write_bytes(PAYLOAD)
    with pytest.raises(ValueError, match="name must be a plain file name"):
        data.download_corpus(name, url=source.as_uri(), sha256=PAYLOAD_SHA, cache=cache)
    assert victim.read_bytes() == b"a learner's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.txt", "victim.txt"]


def test_a_link_planted_in_the_cache_is_not_followed(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    (cache / "local.txt").symlink_to(outside)
    source = tmp_path / "local.txt"
    source.write_bytes(PAYLOAD)
    with pytest.raises(ValueError, match="must be a file inside"):
        data.download_corpus("local", url=source.as_uri(), sha256=PAYLOAD_SHA, cache=cache)
    assert outside.read_bytes() == b"keep me"


@pytest.mark.parametrize("timeout_s", [-1, 0, float("nan"), float("inf"), 1e300, "5"])
def test_download_timeout_must_be_sensible(tmp_path, timeout_s):
    with pytest.raises((ValueError, TypeError), match="timeout_s"):
        data.download_corpus("plays", url="http://127.0.0.1:9/x", sha256=PAYLOAD_SHA,
                             cache=tmp_path, timeout_s=timeout_s)


def test_tiny_shakespeare_is_pinned():
    pinned = data.DOWNLOADS["tiny_shakespeare"]
    assert len(pinned["sha256"]) == 64 and pinned["url"].startswith("https://")
    with pytest.raises(ValueError, match="name must be one of"):
        data.download_corpus("no_such_corpus")


def test_read_text_corpus_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        data.read_text_corpus(tmp_path / "missing.txt")
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.txt"):
        data.read_text_corpus(bad)


def test_encode_can_refuse_unseen_characters_whatever_the_tokenizer_policy():
    tokenizer = data.CharTokenizer.from_text("abc")  # replaces by default
    assert tokenizer.encode("ax") == tokenizer.encode("a\ufffd")
    with pytest.raises(ValueError, match=r"never seen in training\): \['x'\]"):
        tokenizer.encode("ax", unknown="error")
