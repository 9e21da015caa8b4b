"""Specification of notebook 06's library: course_lib.quantize, prune, distill, compression
(measuring), payback (cost arithmetic), figures.compression and explorers.compression."""

import math

import pytest
import torch
from matplotlib.colors import to_hex

from course_lib import (
    compression,
    costs,
    counting,
    data,
    distill,
    flops,
    payback,
    prune,
    quantize,
    references,
    training,
)
from course_lib.explorers.compression import PaybackExplorer
from course_lib.figures.base import new_figure
from course_lib.figures.compression import plot_distillation, plot_payback, plot_quality_vs_cost
from course_lib.formatting import fmt
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig


def tiny_model(vocab_size: int, **overrides) -> TinyGPT:
    settings = dict(vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=16)
    settings.update(overrides)
    torch.manual_seed(0)
    return TinyGPT(ModelConfig(**settings)).eval()


@pytest.fixture(scope="module")
def model(tiny_data):
    return tiny_model(tiny_data.tokenizer.vocab_size)


@pytest.fixture(scope="module")
def default_checkpoint():
    return training.load_or_train_default(progress=False)


def logits(m, vocab_size, seed=0):
    x = torch.randint(vocab_size, (2, 16), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return m(x.to(m.device))[0]


# --- Quantization ---------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_weight_error_is_at_most_half_a_step_per_row(bits):
    weight = torch.randn(24, 40, generator=torch.Generator().manual_seed(1))
    weight[3] *= 50  # one large row: per-channel scales keep the others precise
    q, scale = quantize.quantize_weight(weight, bits)
    q_max = 2 ** (bits - 1) - 1
    assert q.dtype == torch.int8 and int(q.abs().max()) == q_max
    error = (q.float() * scale[:, None] - weight).abs().amax(dim=1)
    assert torch.all(error <= scale / 2 + 1e-6)
    assert scale[3] > 20 * scale[0]  # each row got its own scale


def test_quantize_weight_keeps_a_zero_row_exact():
    weight = torch.zeros(3, 4)
    weight[1] = torch.tensor([1.0, -2.0, 0.5, 0.0])
    q, scale = quantize.quantize_weight(weight)
    assert torch.isfinite(scale).all()
    assert torch.equal(q[0], torch.zeros(4, dtype=torch.int8))


def test_int4_packing_round_trips_and_halves_the_bytes():
    q = torch.randint(-7, 8, (5, 12), generator=torch.Generator().manual_seed(2)).to(torch.int8)
    packed = quantize.pack_int4(q)
    assert packed.dtype == torch.uint8 and packed.shape == (5, 6)
    assert torch.equal(quantize.unpack_int4(packed), q)


def test_int8_linear_weights_take_at_most_0_3x_the_float32_bytes(model):
    fp32 = compression.linear_weight_bytes(model)
    int8 = compression.linear_weight_bytes(quantize.quantize(model, 8))
    int4 = compression.linear_weight_bytes(quantize.quantize(model, 4))
    assert int8 <= 0.3 * fp32
    assert int4 < 0.6 * int8  # the trend: half the bytes again, plus the same scales
    # Stored tensors, not just the arithmetic: the model's bytes shrink by the same amount.
    assert compression.model_bytes(model) - compression.model_bytes(
        quantize.quantize(model, 8)) == fp32 - int8


def test_quantize_returns_a_copy_with_close_outputs_and_same_flops(model, tiny_data):
    vocab = tiny_data.tokenizer.vocab_size
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize.quantize(model, 8)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert quantize.is_quantized(quantized) and not quantize.is_quantized(model)
    reference, approx = logits(model, vocab), logits(quantized, vocab)
    assert (approx - reference).abs().max() < 0.02 * reference.abs().max()
    assert compression.forward_flops_as_built(quantized, 16) == \
        compression.forward_flops_as_built(model, 16)


def test_int8_changes_the_default_models_validation_loss_by_at_most_0_05_nats(
        default_checkpoint):
    """On the default corpus and checkpoint (fast mode: the 50-step model). The bound is the
    issue's 0.05 nats in both modes; notebook 06 reports the full model's figure."""
    corpus = data.load_default_data(block_size=64)
    original = compression.validation_loss(default_checkpoint.model, corpus)
    quantized = compression.validation_loss(quantize.quantize(default_checkpoint.model), corpus)
    assert abs(quantized - original) <= 0.05


def test_quantizing_twice_is_refused(model):
    with pytest.raises(ValueError, match="model is already quantized"):
        quantize.quantize(quantize.quantize(model))


@pytest.mark.parametrize("bits", [2, 16, True, "8"])
def test_unsupported_bit_widths_are_refused(model, bits):
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        quantize.quantize(model, bits)


def test_only_a_tinygpt_is_accepted():
    with pytest.raises(TypeError, match="model must be a TinyGPT, got Linear"):
        quantize.quantize(torch.nn.Linear(2, 2))


# --- Pruning --------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [-0.1, 1, 1.0, 1.5, math.nan, True])
@pytest.mark.parametrize("prune_fn", [prune.prune_unstructured, prune.prune_mlp_neurons])
def test_pruning_amount_outside_zero_to_one_is_refused(model, prune_fn, amount):
    with pytest.raises((ValueError, TypeError), match=r"amount \(the fraction of weights to "
                                                      r"remove\) must be"):
        prune_fn(model, amount)


def test_pruning_a_quantized_model_is_refused(model):
    with pytest.raises(ValueError, match="prune the float32 model first"):
        prune.prune_unstructured(quantize.quantize(model), 0.5)


def test_unstructured_pruning_zeroes_the_smallest_weights_and_saves_nothing_dense(model):
    pruned = prune.prune_unstructured(model, 0.3)
    assert compression.nonzero_fraction(model) == 1.0
    assert compression.nonzero_fraction(pruned) == pytest.approx(0.7, abs=0.002)
    original = model.blocks[0].mlp.c_fc.weight.abs()
    kept = pruned.blocks[0].mlp.c_fc.weight != 0
    assert original[~kept].max() <= original[kept].min()  # smallest magnitudes went first
    assert compression.model_bytes(pruned) == compression.model_bytes(model)
    assert compression.forward_flops_as_built(pruned, 16) == \
        compression.forward_flops_as_built(model, 16)


def test_pruning_nothing_changes_nothing(model, tiny_data):
    vocab = tiny_data.tokenizer.vocab_size
    for prune_fn in (prune.prune_unstructured, prune.prune_mlp_neurons):
        assert torch.equal(logits(prune_fn(model, 0), vocab), logits(model, vocab))


def test_structured_pruning_makes_a_smaller_dense_model(model, tiny_data):
    pruned = prune.prune_mlp_neurons(model, 0.5)
    hidden = 4 * model.config.n_embd
    for block in pruned.blocks:
        assert block.mlp.c_fc.weight.shape == (hidden // 2, model.config.n_embd)
        assert block.mlp.c_proj.weight.shape == (model.config.n_embd, hidden // 2)
    removed = model.config.n_layer * 2 * (hidden // 2) * model.config.n_embd
    assert compression.matmul_weights(model) - compression.matmul_weights(pruned) == removed
    assert compression.model_bytes(pruned) < compression.model_bytes(model)
    # Training still works on the pruned model (e.g. to recover quality).
    training.train(pruned, tiny_data, training.TrainConfig(max_iters=2, eval_interval=2,
                   eval_iters=1, batch_size=2), progress=False)


def _other_devices() -> list[str]:
    """'meta' (shapes without storage) runs everywhere; CUDA where there is a GPU."""
    return ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("dtype, device", [(torch.float64, "cpu"), (torch.bfloat16, "cpu")]
                         + [(torch.float32, d) for d in _other_devices()])
def test_structured_pruning_keeps_the_models_dtype_and_device(tiny_data, dtype, device):
    vocab = tiny_data.tokenizer.vocab_size
    original = tiny_model(vocab).to(device, dtype)
    pruned = prune.prune_mlp_neurons(original, 0.5)
    for tensor in pruned.state_dict().values():
        assert tensor.device.type == device
        assert tensor.dtype == dtype or not tensor.is_floating_point()
    if device != "meta":  # a meta tensor holds no values to run on
        assert logits(pruned, vocab).dtype == dtype
        assert torch.allclose(logits(prune.prune_mlp_neurons(original, 0), vocab).float(),
                              logits(original, vocab).float())


def test_structured_pruning_removes_the_least_important_neurons_first(model, tiny_data):
    vocab = tiny_data.tokenizer.vocab_size
    dead = prune.prune_unstructured(model, 0)  # a copy to edit
    with torch.no_grad():
        for block in dead.blocks:  # half the neurons write nothing: removing them is free
            block.mlp.c_proj.weight[:, ::2] = 0
    pruned = prune.prune_mlp_neurons(dead, 0.5)
    assert torch.allclose(logits(pruned, vocab), logits(dead, vocab), atol=1e-5)


def test_flop_count_follows_the_real_layers(model):
    assert compression.matmul_weights(model) == flops.matmul_params(model.config)
    assert compression.forward_flops_as_built(model, 16) == \
        flops.forward_flops_breakdown(model.config, 16)["total"]
    pruned = prune.prune_mlp_neurons(model, 0.25)
    idx = torch.zeros((1, 16), dtype=torch.long)
    measured = counting.measure_flops(pruned, idx)["total"]
    assert measured == 16 * compression.forward_flops_as_built(pruned, 16)


def test_model_bytes_counts_tied_weights_once(model):
    params = sum(p.numel() for p in model.parameters())  # parameters() already dedupes
    assert compression.model_bytes(model) == 4 * params


# --- Measuring ------------------------------------------------------------------------------


def test_measure_and_the_comparison_table(model, tiny_data):
    original = compression.measure("original", model, tiny_data, new_tokens=4, repeats=1)
    int8 = compression.measure("int8", quantize.quantize(model), tiny_data, new_tokens=4,
                               repeats=1)
    assert original.flops_per_token == compression.forward_flops_as_built(model, 16)
    assert original.nonzero_fraction == 1.0 and original.ms_per_token > 0
    lines = compression.comparison_table([original, int8]).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| model | size (MB) | size vs original")
    assert lines[2].split(" | ")[2] == "1.00x"
    assert lines[3].startswith("| int8 |")
    assert original.ms_low <= original.ms_per_token <= original.ms_high
    assert "| ms per token | ms range |" in lines[0]
    assert f"| {original.ms_low:.2f} to {original.ms_high:.2f} |" in lines[2]


def test_a_real_int8_kernel_is_timed_beside_float32_and_dequantization():
    times = quantize.time_memory_bound_layers(size=64, layers=2, repeats=3)
    assert list(times)[:3] == ["float32 weights (4 bytes each)", "bfloat16 weights (2 bytes each)",
                               "int8 weights, dequantized to float32 first (QuantizedLinear)"]
    for spread in times.values():
        assert spread.repeats == 3 and 0 < spread.low <= spread.median <= spread.high
    if hasattr(torch, "_weight_int8pack_mm"):
        assert "int8 weights read by an int8 kernel (1 byte each)" in times


def test_4_bit_rounding_zeroes_exactly_the_weights_below_half_a_step(model):
    weights = [getattr(parent, name).weight for parent, name in quantize.block_linears(model)]
    below = sum(int((w.abs() < w.abs().amax(dim=1, keepdim=True) / 14).sum()) for w in weights)
    zeros = 1 - compression.nonzero_fraction(quantize.quantize(model, bits=4))
    assert zeros == pytest.approx(below / sum(w.numel() for w in weights), abs=1e-9)


def test_quality_vs_cost_figure_names_the_smallest_model_within_tolerance():
    def point(name, mb, loss):
        return compression.Measurement(name, int(mb * 1e6), 0, 1, 1.0, loss, 1.0, 1.0)

    measurements = [point("original", 4.0, 1.50), point("int8", 1.0, 1.52),
                    point("tiny", 0.5, 1.70)]
    figure, axes = new_figure(width=10, height=4.2, ncols=2)
    assert plot_quality_vs_cost(axes, measurements, tolerance=0.05) is axes
    assert figure.get_suptitle() == ("Smallest model within 0.05 nats of the original: int8 "
                                     "(4.0x fewer bytes)")
    assert [ax.get_title() for ax in axes] == ["Quality against bytes", "Quality against speed"]


def test_quality_vs_cost_gives_every_version_its_own_look_number_and_full_name():
    names = [f"version {i} with a long, descriptive name" for i in range(12)]
    measurements = [compression.Measurement(name, (i + 1) * 100_000, 0, 1, 1.0, 1.5 + i / 100,
                                            1.0, 1.0, 0.9, 1.2) for i, name in enumerate(names)]
    figure, axes = new_figure(width=10, height=6.4, ncols=2)
    plot_quality_vs_cost(axes, measurements)
    looks = {(to_hex(c.get_facecolor()[0]), str(c.get_paths()[0].vertices.round(3).tolist()))
             for c in axes[0].collections}
    assert len(looks) == len(measurements)  # no two points look alike
    greys = {to_hex(c.get_facecolor()[0]) for c in axes[0].collections} & {
        "#ababab", "#595959", "#898989", "#cfcfcf"}
    assert not greys
    assert [t.get_text() for t in axes[1].texts] == [str(i) for i in range(1, 12)]
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[0] == names[0] and legend[1] == f"1  {names[1]}"  # names in full
    renderer = figure.canvas.get_renderer()
    box = figure.legends[0].get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width and box.y0 >= 0  # nothing cut off
    for ax in axes:
        assert not box.overlaps(ax.get_window_extent(renderer))
    assert len(axes[1].containers) == len(measurements)  # a range bar per model


# --- Distillation ---------------------------------------------------------------------------


def test_distillation_loss_mixes_soft_and_hard_targets():
    gen = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 7, generator=gen)
    targets = torch.randint(7, (2, 5), generator=gen)
    hard = torch.nn.functional.cross_entropy(student.view(-1, 7), targets.view(-1))
    assert distill.distillation_loss(student, teacher, targets, alpha=0) == \
        pytest.approx(hard.item())
    # A student that already matches the teacher has nothing left to learn from it.
    assert distill.distillation_loss(teacher, teacher, targets, alpha=1).item() == \
        pytest.approx(0, abs=1e-6)
    soft = distill.distillation_loss(student, teacher, targets, temperature=3.0, alpha=1)
    p_t = torch.softmax(teacher / 3, -1)
    kl = (p_t * (p_t.log() - torch.log_softmax(student / 3, -1))).sum(-1).mean()
    assert soft.item() == pytest.approx(9 * kl.item(), rel=1e-5)


@pytest.mark.parametrize("bad, message", [(dict(temperature=0), "temperature must be"),
                                          (dict(alpha=1.5), r"alpha .* >= 0 and <= 1")])
def test_distillation_settings_are_checked(bad, message):
    x = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match=message):
        distill.distillation_loss(x, x, torch.zeros(1, 2, dtype=torch.long), **bad)


@pytest.mark.parametrize("change, message", [
    (dict(n_embd=64), r"student_config must be smaller than the teacher: n_layer <= 2, "
                      r"n_embd <= 32"),
    (dict(n_layer=3, n_embd=16), "student_config must be smaller"),
    (dict(), "student_config must be smaller"),  # the same size is not smaller
    (dict(n_embd=16, block_size=8), r"student_config.block_size must equal the teacher's"),
])
def test_a_student_not_smaller_than_the_teacher_is_refused(model, tiny_data, change, message):
    settings = dict(vocab_size=model.config.vocab_size, n_layer=2, n_head=2, n_embd=32,
                    block_size=16) | change
    with pytest.raises(ValueError, match=message):
        distill.compare_distillation(model, ModelConfig(**settings), tiny_data,
                                     training.TrainConfig(max_iters=1))


def test_training_loss_hook_is_what_the_step_minimises(tiny_data):
    calls = []

    def loss_fn(m, x, y):
        calls.append(x.shape)
        return m(x, y)[1]

    student = tiny_model(tiny_data.tokenizer.vocab_size, n_layer=1)
    config = training.TrainConfig(max_iters=3, eval_interval=3, eval_iters=1, batch_size=2)
    hooked = training.train(student, tiny_data, config, progress=False, loss_fn=loss_fn)
    plain = training.train(tiny_model(tiny_data.tokenizer.vocab_size, n_layer=1), tiny_data,
                           config, progress=False)
    assert calls == [(2, 16)] * 3
    assert hooked.step_loss == pytest.approx(plain.step_loss)  # same loss, same run


def test_distillation_and_no_teacher_runs_start_equal_and_both_learn(tiny_data):
    teacher = tiny_model(tiny_data.tokenizer.vocab_size)
    training.train(teacher, tiny_data, training.TrainConfig(
        max_iters=60, eval_interval=60, eval_iters=1, batch_size=8, learning_rate=3e-3,
        warmup_iters=5), progress=False)
    student_config = ModelConfig(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=1,
                                 n_head=2, n_embd=16, block_size=16)
    config = training.TrainConfig(max_iters=30, eval_interval=30, eval_iters=2, batch_size=8,
                                  learning_rate=3e-3, warmup_iters=5)
    result = distill.compare_distillation(teacher, student_config, tiny_data, config)
    assert result.distilled_history.step_loss[0] != result.alone_history.step_loss[0]
    assert result.distilled_history.val_loss[0] == pytest.approx(result.alone_history.val_loss[0])
    for history in (result.distilled_history, result.alone_history):
        assert history.val_loss[-1] < history.val_loss[0]
    assert result.gain == pytest.approx(result.alone_val_loss - result.distilled_val_loss)
    assert result.training_tokens == 30 * 8 * 16
    assert result.matched is None and result.matched_gain is None
    ax = plot_distillation(new_figure()[1][0], result, teacher_val_loss=1.0)
    assert ax.get_title().startswith(result.outcome() + ": ")


def test_the_compute_matched_student_trains_for_the_teachers_extra_flops(tiny_data):
    teacher = tiny_model(tiny_data.tokenizer.vocab_size)
    student_config = ModelConfig(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=1,
                                 n_head=2, n_embd=16, block_size=16)
    config = training.TrainConfig(max_iters=6, eval_interval=3, eval_iters=1, batch_size=4,
                                  warmup_iters=1)
    per_step = distill.flops_per_step(teacher.config, student_config, 4)
    assert per_step["alone"] == flops.train_flops_per_step(student_config, 4)
    assert per_step["distilled"] == per_step["alone"] + flops.forward_flops(teacher.config, 16, 4)
    steps = distill.compute_matched_steps(teacher.config, student_config, config)
    assert steps == round(6 * per_step["distilled"] / per_step["alone"]) and steps > 6
    result = distill.compare_distillation(teacher, student_config, tiny_data, config,
                                          matched=True)
    assert len(result.matched_history.step_loss) == steps
    assert result.matched_gain == pytest.approx(result.matched_val_loss
                                                - result.distilled_val_loss)
    assert f"({steps} steps instead of 6)" in result.matched_verdict()
    ax = plot_distillation(new_figure()[1][0], result, teacher_val_loss=1.0)
    assert "alone with the same compute" in ax.get_title()
    ends = [line.get_xdata()[-1] for line in ax.get_lines()[:3]]
    assert ends[0] == pytest.approx(ends[2], rel=0.05)  # equal compute ends at the same x
    assert ends[1] < ends[0]


@pytest.mark.parametrize("distilled, alone, words", [
    (1.40, 1.50, "Distillation helped: the distilled student's validation loss is 0.100 nats "
                 "lower"),
    (1.60, 1.50, "Distillation did not help here: the distilled student's validation loss is "
                 "0.100 nats higher"),
    (1.505, 1.50, "No clear difference: the two students are within 0.005 nats"),
])
def test_the_verdict_reads_the_gain_against_the_noise(distilled, alone, words):
    result = distill.DistillationResult(None, None, None, None, None, None, distilled, alone)
    assert result.verdict().startswith(words)
    assert result.verdict().startswith(result.outcome() + ": ")


# --- Payback --------------------------------------------------------------------------------


def test_payback_adds_student_training_and_teacher_forward_passes():
    teacher = costs.open_model()
    n_t, n_s, d = teacher.n_params, teacher.n_params / 8, 1e12
    result = payback.payback(teacher, n_s, d)
    assert result.extra_training.flops == pytest.approx(6 * n_s * d + 2 * n_t * d)
    tokens = teacher.input_tokens + teacher.output_tokens
    assert result.saving_per_request("flops") == pytest.approx(2 * (n_t - n_s) * tokens)
    assert result.requests("flops") == pytest.approx(
        (6 * n_s * d + 2 * n_t * d) / (2 * (n_t - n_s) * tokens))
    assert result.days("usd") == pytest.approx(result.requests("usd") / teacher.requests_per_day)


def test_payback_refuses_a_student_not_smaller_than_the_teacher():
    teacher = costs.open_model()
    with pytest.raises(ValueError, match="student_params must be > 0 and smaller"):
        payback.payback(teacher, teacher.n_params, 1e12)
    with pytest.raises(ValueError, match="distillation_tokens must be a finite number > 0"):
        payback.payback(teacher, 1e9, 0)


def test_payback_figure_states_the_payback_point_in_its_title():
    result = payback.payback(costs.open_model().replace(requests_per_day=1e6), 1e9, 1e12)
    ax = plot_payback(new_figure()[1][0], result, "flops")
    assert ax.get_title() == (f"Distillation pays for itself after "
                              f"{fmt(result.requests('flops'))} requests "
                              f"({costs.format_days(result.days('flops'))} of traffic)")


def test_payback_explorer_redraws_and_keeps_the_student_smaller_than_the_teacher():
    explorer = PaybackExplorer()
    assert "pays for itself after" in explorer.readout.value
    first = explorer.image.value
    explorer.controls["requests_per_day"].value = 1e3
    assert explorer.image.value != first and "years" in explorer.readout.value
    explorer.set(teacher_params=1e9, student_params=references.value("llama3_8b.params"))
    assert explorer.controls["student_params"].value < 1e9  # the slider stops below it
    assert "Cannot compute this" not in explorer.readout.value
    with pytest.raises(ValueError, match="student_params must be smaller"):
        PaybackExplorer(teacher_params=1e9, student_params=8e9)


def test_payback_explorer_refuses_an_unknown_preset():
    with pytest.raises(ValueError, match="must be one of chat, open_8b, tiny; got 'moon'"):
        PaybackExplorer(preset="moon")
