"""Specification of course_lib.flops: formulas agree with PyTorch's counter; memory budget."""

import pytest
import torch

from course_lib import counting, flops
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

CONFIGS = [
    # (config, batch, sequence length)
    (ModelConfig(vocab_size=97), 12, 64),  # nanoGPT CPU shape, full context
    (ModelConfig(vocab_size=50, n_layer=2, n_head=2, n_embd=64, block_size=32), 4, 20),
    (ModelConfig(vocab_size=200, n_layer=3, n_head=6, n_embd=96, block_size=48, n_kv_head=2,
                 bias=False), 3, 48),
    (ModelConfig(vocab_size=65, n_layer=6, n_head=8, n_embd=64, block_size=128), 1, 128),
]



def make(config: ModelConfig, batch: int, seq_len: int):
    torch.manual_seed(0)
    model = TinyGPT(config)
    idx = torch.randint(0, config.vocab_size, (batch, seq_len))
    return model, idx


@pytest.mark.parametrize("config, batch, seq_len", CONFIGS)
def test_forward_formula_matches_flop_counter_within_2_percent(config, batch, seq_len):
    model, idx = make(config, batch, seq_len)
    predicted = flops.forward_flops(config, seq_len, batch)
    counted = counting.measure_flops(model, idx)["total"]
    assert abs(counted - predicted) / predicted < 0.02, f"formula {predicted:,} vs {counted:,}"


@pytest.mark.parametrize("config, batch, seq_len", CONFIGS[:3])
def test_training_step_is_three_forwards(config, batch, seq_len):
    model, idx = make(config, batch, seq_len)
    predicted = 3 * flops.forward_flops(config, seq_len, batch)
    counted = counting.measure_flops(model, idx, idx, backward=True)["total"]
    assert abs(counted - predicted) / predicted < 0.02, f"formula {predicted:,} vs {counted:,}"
    if seq_len == config.block_size:
        assert predicted == flops.train_flops_per_step(config, batch)


def test_attention_term_grows_linearly_with_context():
    config = ModelConfig(vocab_size=65)
    short = flops.forward_flops_breakdown(config, 16)
    long = flops.forward_flops_breakdown(config, 64)
    assert short["weights"] == long["weights"]
    assert long["attention"] == 4 * short["attention"]
    assert long["total"] == long["weights"] + long["attention"]


def test_matmul_params_close_to_kaplan_12_l_d_squared_plus_output_layer():
    config = ModelConfig(vocab_size=65, n_layer=4, n_embd=128)
    expected = 12 * config.n_layer * config.n_embd**2 + config.vocab_size * config.n_embd
    assert flops.matmul_params(config) == expected
    gqa = ModelConfig(vocab_size=65, n_layer=4, n_embd=128, n_head=4, n_kv_head=1)
    assert flops.matmul_params(gqa) < expected, "fewer key/value heads, smaller projection"


def test_kaplan_and_six_n_d_rules():
    assert flops.six_n_d(1e6, 1e9) == pytest.approx(6e15)
    # Kaplan's attention term is half the dense one: the causal average context.
    config = ModelConfig(vocab_size=65)
    dense = flops.forward_flops_breakdown(config, 64)["attention"]
    kaplan = flops.kaplan_forward_flops_per_token(0, config.n_layer, 64, config.n_embd)
    assert kaplan == dense / 2


def test_counter_gaps_are_detected_not_hidden():
    counts = counting.attention_counter_check(batch_size=1, n_head=2, seq_len=16, head_dim=8)
    assert counts["explicit_matmuls"] == counts["analytic"], "explicit attention fully counted"
    # The fused kernel is either counted correctly or (known gap) not at all.
    assert counts["scaled_dot_product_attention"] in (0, counts["analytic"])
    model, idx = make(*CONFIGS[1])
    modes = counting.inference_mode_counter_check(model, idx)
    assert modes["no_grad"] == flops.forward_flops(CONFIGS[1][0], 20, 4)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        counting.measure_flops(model, idx)
    with pytest.raises(ValueError, match="targets"):
        counting.measure_flops(model, idx, backward=True)


@pytest.mark.parametrize("config, batch, seq_len", CONFIGS[:3])
def test_memory_budget_matches_measured_tensors(config, batch, seq_len):
    model, idx = make(config, batch, seq_len)
    n_params = model.num_params()["total"]
    budget = flops.training_memory_budget(config, n_params, batch, seq_len)
    measured = counting.measure_training_memory(model, idx, idx)
    for part in ("weights", "gradients", "optimizer"):
        assert budget[part] == measured[part], f"{part}: {budget[part]} vs {measured[part]}"
    error = abs(budget["activations"] - measured["activations"]) / measured["activations"]
    assert error < 0.05, f"activations {budget['activations']:,} vs {measured['activations']:,}"
    assert budget["weights"] + budget["gradients"] + budget["optimizer"] == 16 * n_params


def test_bad_inputs_name_the_parameter():
    config = ModelConfig(vocab_size=65)
    with pytest.raises(ValueError, match="seq_len"):
        flops.forward_flops(config, 0)
    with pytest.raises(ValueError, match="context"):
        flops.forward_flops_breakdown(config, -1)
    with pytest.raises(ValueError, match="n_params"):
        flops.training_memory_budget(config, 0, 12)
