"""Specification of course_lib.training: config checks, schedule, loop, atomic checkpoints."""

import dataclasses
import math

import pytest
import torch

from course_lib import training
from course_lib.model import ModelConfig, TinyGPT


def tiny_model(tiny_data, **overrides) -> TinyGPT:
    settings = dict(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16,
                    block_size=16)
    settings.update(overrides)
    torch.manual_seed(0)
    return TinyGPT(ModelConfig(**settings))


def quick_config(**overrides) -> training.TrainConfig:
    settings = dict(batch_size=4, max_iters=40, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5,
                    eval_interval=20, eval_iters=2)
    settings.update(overrides)
    return training.TrainConfig(**settings)


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
        training.TrainConfig(**overrides)


def test_defaults_are_nanogpt_cpu_run():
    config = training.TrainConfig()
    assert (config.batch_size, config.max_iters, config.warmup_iters) == (12, 2000, 100)
    assert (config.learning_rate, config.min_lr, config.beta2) == (1e-3, 1e-4, 0.99)


def test_schedule_warms_up_then_decays_to_min_lr():
    config = quick_config(max_iters=100, warmup_iters=10)
    rates = [training.learning_rate_at(step, config) for step in range(120)]
    assert rates[0] < rates[5] < rates[9] <= config.learning_rate, "linear warm-up"
    assert math.isclose(max(rates), config.learning_rate, rel_tol=0.01)
    decay = zip(rates[10:100], rates[11:101], strict=True)
    assert all(a >= b for a, b in decay), "decay is monotone"
    assert rates[-1] == config.min_lr


def test_training_lowers_the_loss_and_reports_timing(tiny_data):
    model = tiny_model(tiny_data)
    config = quick_config(max_iters=60)
    history = training.train(model, tiny_data, config, progress=False, live_plot=False)
    assert len(history.step_loss) == 60 and len(history.lr) == 60
    assert history.eval_iters == [0, 20, 40, 60]
    assert history.val_loss[-1] < history.val_loss[0] - 0.5, f"val loss {history.val_loss}"
    assert history.tokens == 60 * 4 * 16
    assert history.train_seconds > 0 and history.tokens_per_s > 0


def test_same_seed_same_run(tiny_data):
    runs = []
    for _ in range(2):
        model = tiny_model(tiny_data)
        runs.append(training.train(model, tiny_data, quick_config(max_iters=10), progress=False,
                                   live_plot=False).step_loss)
    assert runs[0] == runs[1]


def test_vocab_mismatch_is_a_clear_error(tiny_data, fox_corpus):
    model = tiny_model(tiny_data, vocab_size=tiny_data.tokenizer.vocab_size + 1)
    with pytest.raises(ValueError, match="vocab_size"):
        training.train(model, tiny_data, quick_config(), progress=False, live_plot=False)
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
                   progress=False, live_plot=False)
    loaded = training.load_checkpoint(path, model_config=model.config, corpus=tiny_data.corpus)
    assert loaded.iter_num == 20
    assert loaded.tokenizer.chars == tiny_data.tokenizer.chars
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name
    # Resume to 40 steps: only 20 more steps run, and the history continues.
    more = training.train(loaded.model, tiny_data, quick_config(max_iters=40), checkpoint=path,
                          resume=True, progress=False, live_plot=False)
    assert len(more.step_loss) == 40
    assert more.eval_iters == [0, 20, 40]
    assert training.load_checkpoint(path).iter_num == 40


def test_checkpoint_loads_with_weights_only(tiny_data, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    training.train(tiny_model(tiny_data), tiny_data, quick_config(max_iters=2), checkpoint=path,
                   progress=False, live_plot=False)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    training.load_checkpoint(path)
    assert calls == [True]


def test_failed_save_keeps_the_previous_checkpoint(tiny_data, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    model = tiny_model(tiny_data)
    training.train(model, tiny_data, quick_config(max_iters=2), checkpoint=path, progress=False,
                   live_plot=False)
    before = path.read_bytes()

    def failing_save(obj, handle, *args, **kwargs):
        handle.write(b"partial")  # a crash half-way through writing
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    optimizer = training.make_optimizer(model, quick_config())
    with pytest.raises(OSError, match="No space"):
        training.save_checkpoint(path, model, optimizer, tiny_data, quick_config(), 99,
                                 training.History())
    assert path.read_bytes() == before, "the previous checkpoint was damaged"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"], "temporary file left behind"
    monkeypatch.undo()
    assert training.load_checkpoint(path).iter_num == 2


def test_checkpoint_errors_name_the_file_and_the_problem(tiny_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model(tiny_data)
    training.train(model, tiny_data, quick_config(max_iters=2), checkpoint=path, progress=False,
                   live_plot=False)
    other = dataclasses.replace(model.config, n_embd=32)
    with pytest.raises(ValueError, match=r"ckpt\.pt.*n_embd=16 \(expected 32\)"):
        training.load_checkpoint(path, model_config=other)
    other_corpus = dict(tiny_data.corpus, sha256="f" * 64, name="python-stdlib")
    with pytest.raises(ValueError, match="another corpus.*Python versions"):
        training.load_checkpoint(path, corpus=other_corpus)

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"damaged\.pt is damaged"):
        training.load_checkpoint(damaged)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a course checkpoint"):
        training.load_checkpoint(foreign)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({"format": training.CHECKPOINT_FORMAT, "model": {}}, incomplete)
    with pytest.raises(ValueError, match=r"incomplete\.pt is incomplete"):
        training.load_checkpoint(incomplete)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        training.load_checkpoint(tmp_path / "missing.pt")


def test_load_or_train_default_trains_once_then_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_FAST", "1")
    # Shrink the default run further: this test checks the plumbing, not the model.
    small = dataclasses.replace(training.default_train_config(), max_iters=3, eval_iters=1)
    monkeypatch.setattr(training, "default_train_config", lambda: small)
    first = training.load_or_train_default(progress=False, live_plot=False)
    assert "training one now" in capsys.readouterr().out
    assert first.path == training.default_checkpoint_path() and first.path.exists()
    assert first.iter_num == 3
    second = training.load_or_train_default(progress=False, live_plot=False)
    assert "training" not in capsys.readouterr().out, "a good checkpoint must just load"
    assert torch.equal(second.model.wte.weight, first.model.wte.weight)
    first.path.write_bytes(b"not a checkpoint")
    third = training.load_or_train_default(progress=False, live_plot=False)
    out = capsys.readouterr().out
    assert "damaged" in out and "training one now" in out
    assert third.iter_num == 3


def test_loss_figure_states_the_final_validation_loss(tiny_data):
    history = training.train(tiny_model(tiny_data), tiny_data, quick_config(max_iters=5),
                             progress=False, live_plot=False)
    axes = training.plot_history(history)
    assert "nats" in axes.get_ylabel() and axes.get_xlabel() == "training step"
    assert f"{history.val_loss[-1]:.2f}" in axes.get_title()
