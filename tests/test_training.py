"""Specification of course_lib.training: config checks, schedule, loop, atomic checkpoints."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from course_lib import checkpoints, data, runtime, training, training_config
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig


def tiny_model(tiny_data, **overrides) -> TinyGPT:
    settings = dict(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16,
                    block_size=16)
    settings.update(overrides)
    torch.manual_seed(0)
    return TinyGPT(ModelConfig(**settings))


def quick_config(**overrides) -> training_config.TrainConfig:
    settings = dict(batch_size=4, max_iters=40, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5,
                    eval_interval=20, eval_iters=2)
    settings.update(overrides)
    return training_config.TrainConfig(**settings)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(learning_rate=0), "learning_rate"),
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(min_lr=float("nan")), "min_lr"),
        (dict(min_lr=1.0), "min_lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(max_iters=0), "max_iters"),
        (dict(warmup_iters=-1), "warmup_iters"),
        (dict(beta2=1.0), "beta2"),
    ],
)
def test_bad_train_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        training_config.TrainConfig(**overrides)


def test_defaults_are_nanogpt_cpu_run():
    config = training_config.TrainConfig()
    assert (config.batch_size, config.max_iters, config.warmup_iters) == (12, 2000, 100)
    assert (config.learning_rate, config.min_lr, config.beta2) == (1e-3, 1e-4, 0.99)


def test_schedule_warms_up_then_decays_to_min_lr():
    config = quick_config(max_iters=100, warmup_iters=10)
    rates = [training_config.learning_rate_at(step, config) for step in range(120)]
    assert rates[0] < rates[5] < rates[9] <= config.learning_rate, "linear warm-up"
    assert math.isclose(max(rates), config.learning_rate, rel_tol=0.01)
    decay = zip(rates[10:100], rates[11:101], strict=True)
    assert all(a >= b for a, b in decay), "decay is monotone"
    assert rates[-1] == config.min_lr


def test_training_lowers_the_loss_and_reports_timing(tiny_data):
    model = tiny_model(tiny_data)
    config = quick_config(max_iters=60)
    history = training.train(model, tiny_data, config, progress=False)
    assert len(history.step_loss) == 60 and len(history.lr) == 60
    assert history.eval_iters == [0, 20, 40, 60]
    assert history.val_loss[-1] < history.val_loss[0] - 0.5, f"val loss {history.val_loss}"
    assert history.tokens == 60 * 4 * 16
    assert history.train_seconds > 0 and history.tokens_per_s > 0


def test_same_seed_same_run(tiny_data):
    runs = []
    for _ in range(2):
        model = tiny_model(tiny_data)
        runs.append(training.train(model, tiny_data, quick_config(max_iters=10),
                                   progress=False).step_loss)
    assert runs[0] == runs[1]


def test_vocab_mismatch_is_a_clear_error(tiny_data, fox_corpus):
    model = tiny_model(tiny_data, vocab_size=tiny_data.tokenizer.vocab_size + 1)
    with pytest.raises(ValueError, match="vocab_size"):
        training.train(model, tiny_data, quick_config(), progress=False)
    with pytest.raises(TypeError, match="TokenData"):
        training.train(model, fox_corpus, quick_config(), progress=False)


def test_fused_optimizer_where_available_and_foreach_otherwise(tiny_data):
    model = tiny_model(tiny_data)
    fused = training.make_optimizer(model, quick_config(fused=True))
    plain = training.make_optimizer(model, quick_config(fused=False))
    assert fused.defaults["fused"] or fused.defaults["foreach"]
    assert plain.defaults["foreach"] and not plain.defaults.get("fused")
    decayed, not_decayed = fused.param_groups
    assert all(p.dim() >= 2 for p in decayed["params"]) and not_decayed["weight_decay"] == 0


def test_checkpoint_round_trip_and_resume(tiny_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model(tiny_data)
    training.train(model, tiny_data, quick_config(max_iters=20), checkpoint=path,
                   progress=False)
    loaded = checkpoints.load_checkpoint(path, model_config=model.config, corpus=tiny_data.corpus)
    assert loaded.iter_num == 20
    assert loaded.tokenizer.chars == tiny_data.tokenizer.chars
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name
    # Resume to 40 steps: only 20 more steps run, and the history continues.
    more = training.train(loaded.model, tiny_data, quick_config(max_iters=40), checkpoint=path,
                          resume=True, progress=False)
    assert len(more.step_loss) == 40
    assert more.eval_iters == [0, 20, 40]
    assert checkpoints.load_checkpoint(path).iter_num == 40


class _Payload:
    """Unpickling this runs code: what a booby-trapped checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    """A malicious file is refused with a clear error, and its code never runs."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoints.CHECKPOINT_FORMAT, "model": _Payload(marker)}, path)
    with pytest.raises(ValueError, match=f"checkpoint file {path} is damaged or is not a "
                                         "course checkpoint"):
        checkpoints.load_checkpoint(path)
    assert not marker.exists(), "loading the checkpoint ran code from inside it"


def test_failed_save_keeps_the_previous_checkpoint(tiny_data, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    model = tiny_model(tiny_data)
    training.train(model, tiny_data, quick_config(max_iters=2), checkpoint=path, progress=False)
    before = path.read_bytes()

    def failing_save(obj, handle, *args, **kwargs):
        handle.write(b"partial")  # a crash half-way through writing
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    optimizer = training.make_optimizer(model, quick_config())
    with pytest.raises(OSError, match="No space"):
        checkpoints.save_checkpoint(path, model, optimizer, tiny_data, quick_config(), 99,
                                 training_config.History())
    assert path.read_bytes() == before, "the previous checkpoint was damaged"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"], "temporary file left behind"
    monkeypatch.undo()
    assert checkpoints.load_checkpoint(path).iter_num == 2


def test_checkpoint_errors_name_the_file_and_the_problem(tiny_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model(tiny_data)
    training.train(model, tiny_data, quick_config(max_iters=2), checkpoint=path, progress=False)
    other = dataclasses.replace(model.config, n_embd=32)
    with pytest.raises(ValueError, match=r"ckpt\.pt.*n_embd=16 \(expected 32\)"):
        checkpoints.load_checkpoint(path, model_config=other)
    other_corpus = dict(tiny_data.corpus, sha256="f" * 64, name="python-stdlib")
    with pytest.raises(ValueError, match="another corpus.*Python versions"):
        checkpoints.load_checkpoint(path, corpus=other_corpus)

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"damaged\.pt is damaged"):
        checkpoints.load_checkpoint(damaged)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a course checkpoint"):
        checkpoints.load_checkpoint(foreign)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({"format": checkpoints.CHECKPOINT_FORMAT, "model": {}}, incomplete)
    with pytest.raises(ValueError, match=r"incomplete\.pt is incomplete"):
        checkpoints.load_checkpoint(incomplete)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        checkpoints.load_checkpoint(tmp_path / "missing.pt")


def test_load_or_train_default_trains_once_then_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_FAST", "1")
    # Shrink the default run further: this test checks the plumbing, not the model.
    small = dataclasses.replace(training.default_train_config(), max_iters=3, eval_iters=1)
    monkeypatch.setattr(training, "default_train_config", lambda: small)
    first = training.load_or_train_default(progress=False)
    assert "training one now" in capsys.readouterr().out
    assert first.path == checkpoints.default_checkpoint_path() and first.path.exists()
    assert first.iter_num == 3
    second = training.load_or_train_default(progress=False)
    assert "training" not in capsys.readouterr().out, "a good checkpoint must just load"
    assert torch.equal(second.model.wte.weight, first.model.wte.weight)
    first.path.write_bytes(b"not a checkpoint")
    third = training.load_or_train_default(progress=False)
    out = capsys.readouterr().out
    assert "damaged" in out and "training one now" in out and ".unusable" in out
    assert first.path.with_name(first.path.name + ".unusable").read_bytes() == b"not a checkpoint"
    assert third.iter_num == 3


def test_on_evaluate_sees_every_validation_estimate(tiny_data):
    seen = []
    history = training.train(tiny_model(tiny_data), tiny_data,
                             quick_config(max_iters=6, eval_interval=2), progress=False,
                             on_evaluate=lambda h: seen.append(list(h.eval_iters)))
    assert seen == [[0], [0, 2], [0, 2, 4], [0, 2, 4, 6]]
    assert history.eval_iters == seen[-1]


def test_models_batches_and_checkpoints_follow_runtime_device(tiny_data, tmp_path, monkeypatch):
    """COURSE_DEVICE is obeyed: what the library builds or loads goes to runtime.device()."""
    path = tmp_path / "ckpt.pt"
    training.train(tiny_model(tiny_data), tiny_data, quick_config(max_iters=2), checkpoint=path,
                   progress=False)
    meta = torch.device("meta")  # a device every machine has: tensors without storage
    monkeypatch.setattr(runtime, "device", lambda: meta)
    x, y = data.get_batch(tiny_data.train, 2, 8)
    assert x.device == y.device == meta
    loaded = checkpoints.load_checkpoint(path)
    assert loaded.model.device == meta
    assert loaded.model.new_cache(1).k[0].device == meta
