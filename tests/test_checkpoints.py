"""course_lib.checkpoints: a damaged, altered or nonsensical file is refused with a message
naming it and what to do; a killed save leaves nothing behind; a bad path fails at once."""

from __future__ import annotations

import random

import pytest
import torch

from course_lib import checkpoints, training
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.training_config import History, TrainConfig


@pytest.fixture(scope="module")
def saved(tiny_data, tmp_path_factory):
    """A real checkpoint of a few training steps, and its model."""
    torch.manual_seed(0)
    model = TinyGPT(ModelConfig(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=1, n_head=2,
                                n_embd=16, block_size=16))
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.pt"
    config = TrainConfig(batch_size=4, max_iters=3, eval_interval=3, eval_iters=1)
    training.train(model, tiny_data, config, checkpoint=path, progress=False)
    return path, model


def altered(saved, tmp_path, change, *, keep_digest: bool = True):
    """A copy of the checkpoint with `change` applied to its payload; keep_digest=False
    stores a fresh digest, as a careless tool that re-saves a bad value would."""
    payload = torch.load(saved[0], weights_only=True)
    change(payload)
    if not keep_digest:
        payload["sha256"] = checkpoints.payload_digest(payload)
    path = tmp_path / "altered.pt"
    torch.save(payload, path)
    return path


def test_single_byte_flips_never_load_as_a_different_model(saved, tmp_path):
    path, model = saved
    original = path.read_bytes()
    rng = random.Random(0)
    refused = 0
    for trial in range(40):
        data = bytearray(original)
        where = rng.randrange(len(data))
        data[where] ^= 1 << rng.randrange(8)
        flipped = tmp_path / f"flip{trial}.pt"
        flipped.write_bytes(bytes(data))
        try:
            loaded = checkpoints.load_checkpoint(flipped)
        except ValueError as error:
            assert str(flipped) in str(error) and "train again" in str(error)
            refused += 1
            continue
        # A flip in bytes the format ignores may load: then the model must be the same one.
        for name, tensor in model.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[name].cpu(), tensor.cpu()), (
                f"a flip at byte {where} loaded as a changed model ({name})")
    assert refused >= 30, f"only {refused} of 40 flipped files were refused"


def test_swapped_tensors_are_caught_by_the_checksum(saved, tmp_path):
    def swap(payload):
        state = payload["model"]
        a, b = next((a, b) for a in state for b in state if a < b
                    and state[a].shape == state[b].shape and not torch.equal(state[a], state[b]))
        state[a], state[b] = state[b], state[a]

    with pytest.raises(ValueError, match="is damaged: its contents do not match the checksum"):
        checkpoints.load_checkpoint(altered(saved, tmp_path, swap))


def test_a_changed_tokenizer_is_caught(saved, tmp_path):
    def reverse(payload):
        payload["tokenizer_chars"] = payload["tokenizer_chars"][::-1]

    with pytest.raises(ValueError, match="do not match the checksum"):
        checkpoints.load_checkpoint(altered(saved, tmp_path, reverse))


def test_nan_weights_are_refused_even_with_a_matching_checksum(saved, tmp_path):
    def poison(payload):
        payload["model"]["lm_head.weight"][0, 0] = float("nan")  # tied: wte.weight too

    with pytest.raises(ValueError, match=r"non-finite weights \((wte|lm_head).weight\)"):
        checkpoints.load_checkpoint(altered(saved, tmp_path, poison, keep_digest=False))


@pytest.mark.parametrize("step", ["abc", -5, 1.5, True])
def test_a_nonsensical_step_is_refused(saved, tmp_path, step):
    def set_step(payload):
        payload["iter_num"] = step

    with pytest.raises(ValueError, match="step .* must be a whole number >= 0"):
        checkpoints.load_checkpoint(altered(saved, tmp_path, set_step, keep_digest=False))


def test_an_older_format_is_refused_with_the_reason(saved, tmp_path):
    def old(payload):
        payload["format"] = "course_lib.training/1"

    with pytest.raises(ValueError, match="not a course checkpoint .expected format"):
        checkpoints.load_checkpoint(altered(saved, tmp_path, old, keep_digest=False))


def test_the_next_save_removes_what_a_killed_save_left(saved, tmp_path, tiny_data):
    path, model = saved
    target = tmp_path / "ckpt.pt"
    stale = [tmp_path / ".ckpt.pt.k1lled", tmp_path / ".ckpt.pt.x2"]
    for leftover in stale:
        leftover.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / ".other.pt.keep"
    unrelated.write_bytes(b"not ours")
    config = TrainConfig(batch_size=4, max_iters=3, eval_interval=3, eval_iters=1)
    checkpoints.save_checkpoint(target, model, training.make_optimizer(model, config), tiny_data,
                                config, 3, History())
    assert not any(leftover.exists() for leftover in stale)
    assert unrelated.exists() and checkpoints.load_checkpoint(target).iter_num == 3


@pytest.mark.parametrize("bad, error", [(123, TypeError), ("", TypeError), (None, None)])
def test_a_bad_checkpoint_path_fails_before_training(tiny_data, tmp_path, monkeypatch, bad,
                                                     error):
    bad = tmp_path if bad is None else bad  # an existing folder
    error = error or ValueError
    monkeypatch.setattr(training, "train_step", lambda *a, **k: pytest.fail("training ran"))
    model = TinyGPT(ModelConfig(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=1,
                                n_head=2, n_embd=16, block_size=16))
    with pytest.raises(error, match="checkpoint must be a file path"):
        training.train(model, tiny_data, TrainConfig(batch_size=4, max_iters=2),
                       checkpoint=bad, progress=False)
