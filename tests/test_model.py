"""Specification of course_lib.model: config validation, shapes, causality, KV cache, counts."""

import pytest
import torch

from course_lib.model import KVCache, ModelConfig, TinyGPT

VOCAB = 37



def small(**overrides) -> ModelConfig:
    settings = dict(vocab_size=VOCAB, n_layer=2, n_head=4, n_embd=32, block_size=16)
    settings.update(overrides)
    return ModelConfig(**settings)


def model_for(config: ModelConfig, seed: int = 0) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(config).eval()


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(n_embd=30, n_head=4), "n_embd"),
        (dict(block_size=0), "block_size"),
        (dict(n_layer=0), "n_layer"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(n_head=2.5), "n_head"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(n_kv_head=3), "n_kv_head"),
        (dict(bias="yes"), "bias"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        small(**overrides)


def test_default_config_is_nanogpt_cpu_shape():
    config = ModelConfig(vocab_size=65)
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (4, 4, 128, 64)
    assert config.head_dim == 32 and config.kv_heads == 4


def test_logits_shape_and_initial_loss_near_uniform():
    config = small()
    model = model_for(config)
    idx = torch.randint(0, VOCAB, (3, 10))
    targets = torch.randint(0, VOCAB, (3, 10))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 10, VOCAB)
    # A freshly initialised model should be close to guessing uniformly: ln(vocab) nats.
    expected = torch.log(torch.tensor(float(VOCAB))).item()
    assert abs(loss.item() - expected) < 0.3, f"loss {loss.item():.3f}, ln V {expected:.3f}"


def test_causal_future_tokens_do_not_change_earlier_logits():
    model = model_for(small())
    idx = torch.randint(0, VOCAB, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % VOCAB
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6), "position < 8 saw a future token"
    assert not torch.allclose(a[:, 8:], b[:, 8:]), "changed tokens should change their logits"


@pytest.mark.parametrize("n_kv_head", [None, 2, 1])
def test_kv_cache_matches_uncached_forward(n_kv_head):
    config = small(n_kv_head=n_kv_head)
    model = model_for(config)
    idx = torch.randint(0, VOCAB, (2, 16))
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_cache(2)
        pieces = [model(idx[:, :5], cache=cache)[0]]  # prefill
        for t in range(5, 16):  # decode one token at a time
            pieces.append(model(idx[:, t : t + 1], cache=cache)[0])
    assert cache.length == 16
    diff = (torch.cat(pieces, dim=1) - full).abs().max().item()
    assert diff < 1e-5, f"cached and uncached logits differ by {diff}"


def test_kv_cache_bytes_use_kv_heads_not_query_heads():
    config = small(n_kv_head=1)
    model = model_for(config)
    cache = model.new_cache(3)
    with torch.no_grad():
        model(torch.zeros(3, 7, dtype=torch.long), cache=cache)
    per_value = 4  # float32
    expected = 2 * config.n_layer * 3 * config.kv_heads * 7 * config.head_dim * per_value
    assert cache.nbytes() == expected
    assert cache.allocated_nbytes() == expected // 7 * config.block_size


def test_full_context_is_a_clear_error():
    model = model_for(small())
    cache = model.new_cache(1)
    with torch.no_grad():
        model(torch.zeros(1, 16, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="context is full"):
            model(torch.zeros(1, 1, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_bad_tokens_are_clear_errors():
    model = model_for(small())
    with pytest.raises(ValueError, match="idx must hold token ids"):
        model(torch.full((1, 4), VOCAB, dtype=torch.long))
    with pytest.raises(TypeError, match="idx"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size"):
        KVCache(small(), 0)


def test_parameter_counts_add_up_and_match_formula():
    config = small()
    model = model_for(config)
    counts = model.num_params()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["embedding"] == (config.vocab_size + config.block_size) * config.n_embd
    assert counts["total"] == counts["embedding"] + counts["non_embedding"]
    d, L = config.n_embd, config.n_layer
    # Kaplan's approximation 12 L d^2 ignores biases and LayerNorms: within a few percent.
    assert abs(counts["non_embedding"] - 12 * L * d * d) / (12 * L * d * d) < 0.06


def test_lm_head_is_tied_to_token_embedding():
    model = model_for(small())
    assert model.lm_head.weight is model.wte.weight


def test_dropout_only_in_training_mode():
    model = model_for(small(dropout=0.5))
    idx = torch.randint(0, VOCAB, (2, 8))
    with torch.no_grad():
        assert torch.equal(model(idx)[0], model(idx)[0]), "eval mode must be deterministic"
        model.train()
        assert not torch.equal(model(idx)[0], model(idx)[0]), "dropout should act in train mode"
