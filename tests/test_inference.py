"""Specification of course_lib.inference: generation with and without the KV cache, the
context-full policy, sampling, bad input, timing helpers, FLOPs and KV-cache bytes."""

import importlib.util
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import counting, flops, inference, stats
from course_lib.data import CharTokenizer
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

VOCAB = 23
BLOCK = 8


def small(**overrides) -> ModelConfig:
    settings_ = dict(vocab_size=VOCAB, n_layer=2, n_head=4, n_embd=32, block_size=BLOCK)
    settings_.update(overrides)
    return ModelConfig(**settings_)


def model_for(config: ModelConfig, seed: int = 0) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(config).eval()


@pytest.fixture(scope="module")
def model() -> TinyGPT:
    return model_for(small())


def prompts(batch: int, tokens: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, tokens), generator=torch.Generator().manual_seed(seed))


# --- The KV cache changes the cost, never the tokens -------------------------------------


@pytest.mark.parametrize("context_keep", [None, 1, BLOCK])
@pytest.mark.parametrize("config", [small(), small(n_kv_head=2)], ids=["mha", "gqa"])
def test_greedy_cached_and_uncached_generate_identical_tokens(config, context_keep):
    """3 x BLOCK new tokens: the window fills and slides several times on the way."""
    model = model_for(config)
    idx = prompts(3, 5)
    new = 3 * BLOCK
    cached = inference.generate_tokens(model, idx, new, temperature=0, use_kv_cache=True,
                                       context_keep=context_keep)
    uncached = inference.generate_tokens(model, idx, new, temperature=0, use_kv_cache=False,
                                         context_keep=context_keep)
    assert cached.shape == (3, 5 + new)
    assert torch.equal(cached, uncached), "the KV cache changed the generated tokens"


def test_cached_and_uncached_logits_agree_within_1e_5(model):
    idx = prompts(2, 4)
    cached = list(inference.stream_tokens(model, idx, 2 * BLOCK, 0.0, use_kv_cache=True))
    uncached = list(inference.stream_tokens(model, idx, 2 * BLOCK, 0.0, use_kv_cache=False))
    assert [s.phase for s in cached] == [s.phase for s in uncached]
    for step, (a, b) in enumerate(zip(cached, uncached, strict=True)):
        difference = (a.logits - b.logits).abs().max().item()
        assert difference <= 1e-5, f"step {step} ({a.phase}): logits differ by {difference:.2e}"


def test_cached_decode_logits_equal_a_plain_forward_over_the_whole_sequence(model):
    """Independent of the uncached loop: the model's own full causal forward is the reference."""
    idx = prompts(2, 3)
    steps = list(inference.stream_tokens(model, idx, BLOCK - 3, 0.0, use_kv_cache=True))
    assert [s.phase for s in steps] == ["prefill"] + ["decode"] * (BLOCK - 4)
    sequence = torch.cat([idx] + [s.token[:, None] for s in steps], dim=1)
    with torch.no_grad():
        full, _ = model(sequence[:, :-1])
    for i, step in enumerate(steps):
        expected = full[:, 2 + i]  # position of the token that predicted this step
        assert torch.allclose(step.logits, expected, atol=1e-5), f"step {i} differs"


def test_sliding_window_with_context_keep_block_size_is_nanogpts_loop(model):
    """nanoGPT: every prediction sees the last block_size tokens (fewer at the start)."""
    idx = prompts(1, 5)
    tokens = idx.clone()
    with torch.no_grad():
        for _ in range(2 * BLOCK):
            logits, _ = model(tokens[:, -BLOCK:])
            tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    ours = inference.generate_tokens(model, idx, 2 * BLOCK, temperature=0, context_keep=BLOCK)
    assert torch.equal(ours, tokens)


def test_default_slide_keeps_half_the_window_and_then_decodes(model):
    steps = list(inference.stream_tokens(model, prompts(1, 4), 2 * BLOCK, 0.0))
    contexts = [s.context_tokens for s in steps]
    first_slide = next(i for i, s in enumerate(steps) if s.phase == "slide")
    assert contexts[first_slide - 1] == BLOCK, "the window slides only when it is full"
    assert contexts[first_slide] == BLOCK // 2
    assert steps[first_slide + 1].phase == "decode"
    assert max(contexts) == BLOCK


def test_prompt_longer_than_the_block_is_cut_to_its_last_block_size_tokens(model):
    long = prompts(1, BLOCK + 7)
    out = inference.generate_tokens(model, long, 5, temperature=0)
    cut = inference.generate_tokens(model, long[:, -BLOCK:], 5, temperature=0)
    assert torch.equal(out[:, :BLOCK + 7], long), "the returned prompt must be the full prompt"
    assert torch.equal(out[:, -5:], cut[:, -5:])


@settings(max_examples=60, deadline=None)
@given(prompt=st.integers(1, 40), new=st.integers(0, 60), block=st.integers(1, 20),
       data=st.data())
def test_context_schedule_never_exceeds_the_block(prompt, new, block, data):
    keep = data.draw(st.integers(1, block))
    schedule = flops.context_schedule(prompt, new, block, keep)
    assert len(schedule) == new, "one forward pass per new token"
    previous = None
    for phase, context in schedule:
        assert 1 <= context <= block
        if phase == "prefill":
            assert previous is None and context == min(prompt, block)
        elif phase == "decode":
            assert context == previous + 1
        else:
            assert phase == "slide" and previous == block and context == keep
        previous = context


def test_max_new_tokens_zero_returns_the_prompt_unchanged(model):
    idx = prompts(2, 6)
    assert torch.equal(inference.generate_tokens(model, idx, 0), idx)


def test_each_row_of_a_batch_is_generated_as_if_alone(model):
    idx = prompts(3, 6)
    batch = inference.generate_tokens(model, idx, BLOCK, temperature=0)
    for row in range(3):
        alone = inference.generate_tokens(model, idx[row:row + 1], BLOCK, temperature=0)
        assert torch.equal(batch[row:row + 1], alone), f"row {row} depends on its batch"


def test_generation_restores_training_mode(model):
    model.train()
    try:
        inference.generate_tokens(model, prompts(1, 3), 4)
        assert model.training, "generate must put the model back in the mode it found it in"
    finally:
        model.eval()


# --- Text in, text out ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    return CharTokenizer.from_text("def return(x):\n    pass # 0123")


@pytest.fixture(scope="module")
def text_model(tokenizer) -> TinyGPT:
    return model_for(small(vocab_size=tokenizer.vocab_size))


def test_generate_continues_a_string_and_keeps_the_prompt(text_model, tokenizer):
    out = inference.generate(text_model, tokenizer, "def ", 20, temperature=0)
    assert isinstance(out, str) and out.startswith("def ") and len(out) == 24
    assert set(out) <= set(tokenizer.chars)
    same = inference.generate(text_model, tokenizer, "def ", 20, temperature=0,
                              use_kv_cache=False)
    assert out == same, "the cache changed the text"


def test_generate_a_batch_of_prompts_of_different_lengths(text_model, tokenizer):
    batch = ["def ", "return x", "(", "pass"]
    outs = inference.generate(text_model, tokenizer, batch, BLOCK, temperature=0)
    assert isinstance(outs, list) and len(outs) == len(batch)
    for prompt, out in zip(batch, outs, strict=True):
        assert out == inference.generate(text_model, tokenizer, prompt, BLOCK,
                                         temperature=0), f"{prompt!r} depends on its batch"


@pytest.mark.parametrize("prompt, word", [
    ("déf", "never seen"),
    ("", "empty"),
    (["def", ""], "empty"),
    ([], "empty list"),
    (["def", 3], "str"),
    (5, "str"),
    (None, "str"),
])
def test_bad_prompts_get_a_clear_error(text_model, tokenizer, prompt, word):
    with pytest.raises((ValueError, TypeError), match=word):
        inference.generate(text_model, tokenizer, prompt, 5)


def test_unseen_characters_are_listed_in_the_error(text_model, tokenizer):
    with pytest.raises(ValueError, match="'é'.*'ü'"):
        inference.generate(text_model, tokenizer, "déf ü", 5)


# --- Sampling ------------------------------------------------------------------------------


def test_sampling_is_reproducible_with_a_seed_and_leaves_global_rng_alone(model):
    idx = prompts(2, 3)
    state = torch.get_rng_state()
    a = inference.generate_tokens(model, idx, 40, temperature=1.0, seed=7)
    assert torch.equal(torch.get_rng_state(), state), "generation must not touch torch's RNG"
    b = inference.generate_tokens(model, idx, 40, temperature=1.0, seed=7)
    c = inference.generate_tokens(model, idx, 40, temperature=1.0, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c), "different seeds should give different samples"


def test_top_k_1_and_a_tiny_temperature_are_greedy(model):
    idx = prompts(2, 3)
    greedy = inference.generate_tokens(model, idx, 20, temperature=0)
    assert torch.equal(inference.generate_tokens(model, idx, 20, temperature=2.0, top_k=1),
                       greedy)
    assert torch.equal(inference.generate_tokens(model, idx, 20, temperature=1e-30), greedy)


def test_sampled_tokens_are_among_the_top_k(model):
    # A sharper model makes the top-k set small compared with the vocabulary.
    for step in inference.stream_tokens(model, prompts(8, 3), 30, temperature=5.0, top_k=3):
        top = torch.topk(step.logits, 3, dim=-1).indices
        assert (top == step.token[:, None]).any(dim=-1).all()


def test_pick_next_token_samples_by_probability():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(4000, 1)
    drawn = inference.pick_next_token(logits, 1.0, None, torch.Generator().manual_seed(0))
    share = torch.bincount(drawn, minlength=3) / len(drawn)
    assert torch.allclose(share, torch.tensor([0.7, 0.2, 0.1]), atol=0.03), share


# --- Bad input: clear errors before any torch code runs ----------------------------------


@pytest.mark.parametrize("kwargs, word", [
    (dict(max_new_tokens=-1), "max_new_tokens"),
    (dict(max_new_tokens=2.5), "max_new_tokens"),
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=float("inf")), "temperature"),
    (dict(temperature="hot"), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=VOCAB + 1), "top_k"),
    (dict(top_k=2.0), "top_k"),
    (dict(context_keep=0), "context_keep"),
    (dict(context_keep=BLOCK + 1), "context_keep"),
    (dict(seed="x"), "seed"),
])
def test_bad_generation_settings_name_the_parameter(model, kwargs, word):
    arguments = dict(max_new_tokens=3, temperature=1.0, top_k=None, context_keep=None, seed=0)
    arguments.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=word):
        inference.generate_tokens(model, prompts(1, 3), **arguments)


def test_top_k_equal_to_the_vocabulary_is_allowed(model):
    out = inference.generate_tokens(model, prompts(1, 3), 3, temperature=1.0, top_k=VOCAB)
    assert out.shape == (1, 6)


@pytest.mark.parametrize("idx, word", [
    (torch.zeros((1, 0), dtype=torch.long), "at least one token"),
    (torch.tensor([[1, 2, VOCAB]]), "0..22"),
    (torch.tensor([[-1, 2]]), "0..22"),
    (torch.tensor([[1.0, 2.0]]), "LongTensor"),
    (torch.tensor([1, 2]), "LongTensor"),
])
def test_bad_prompt_ids_get_a_clear_error(model, idx, word):
    with pytest.raises((ValueError, TypeError), match=word):
        inference.generate_tokens(model, idx, 3)


# --- Timing helpers ------------------------------------------------------------------------


def test_spread_is_median_min_max():
    spread = stats.Spread.of([3.0, 1.0, 10.0, 2.0])
    assert (spread.median, spread.low, spread.high, spread.repeats) == (2.5, 1.0, 10.0, 4)
    with pytest.raises(ValueError):
        stats.Spread.of([])


@pytest.mark.parametrize("use_kv_cache", [True, False])
def test_time_request_reports_consistent_figures(model, use_kv_cache):
    timing = inference.time_request(model, batch_size=3, prompt_tokens=4, new_tokens=6,
                                    use_kv_cache=use_kv_cache, repeats=3)
    for name in ("time_to_first_token_s", "time_per_output_token_s", "request_s",
                 "tokens_per_s"):
        spread = getattr(timing, name)
        assert 0 < spread.low <= spread.median <= spread.high, name
        assert spread.repeats == 3
    # A request is the first token plus the later ones.
    assert timing.request_s.low <= timing.time_to_first_token_s.high + \
        5 * timing.time_per_output_token_s.high + 1e-9
    # tokens/s is computed per repeat; with an odd number of repeats the median commutes.
    assert timing.tokens_per_s.median == pytest.approx(3 * 6 / timing.request_s.median, rel=1e-9)


def test_sweep_gives_one_timing_per_batch_size(model):
    sweep = inference.sweep_batch_sizes(model, [1, 4], prompt_tokens=2, new_tokens=3, repeats=1)
    assert [t.batch_size for t in sweep] == [1, 4]
    for t in sweep:
        assert (t.prompt_tokens, t.new_tokens, t.use_kv_cache) == (2, 3, True)
        assert t.time_to_first_token_s.repeats == 1
        assert t.tokens_per_s.median == pytest.approx(t.batch_size * 3 / t.request_s.median)


@pytest.mark.parametrize("kwargs, word", [(dict(batch_size=0), "batch_size"),
                                          (dict(new_tokens=1), "new_tokens"),
                                          (dict(repeats=0), "repeats")])
def test_time_request_rejects_bad_settings(model, kwargs, word):
    with pytest.raises(ValueError, match=word):
        inference.time_request(model, **kwargs)


# --- FLOPs per generated token, and KV-cache bytes ----------------------------------------


@pytest.mark.parametrize("config", [small(), small(n_kv_head=1)], ids=["mha", "gqa"])
@pytest.mark.parametrize("context", [1, 7, BLOCK])
@pytest.mark.parametrize("use_kv_cache", [True, False])
def test_measured_flops_per_token_match_the_formula(config, context, use_kv_cache):
    """TinyGPT writes attention as matmuls, so PyTorch's counter sees every matmul."""
    model = model_for(config)
    measured = counting.measure_flops_per_generated_token(model, context, use_kv_cache)
    analytic = flops.flops_per_generated_token(config, context, use_kv_cache)
    assert measured == analytic, f"measured {measured:,} vs formula {analytic:,}"


def test_the_cache_saves_compute_that_grows_with_the_context():
    config = small()
    on = [flops.flops_per_generated_token(config, c, True) for c in range(1, BLOCK + 1)]
    off = [flops.flops_per_generated_token(config, c, False) for c in range(1, BLOCK + 1)]
    assert on[0] == off[0], "with one token of context there is nothing to reuse"
    ratios = [b / a for a, b in zip(on, off, strict=True)]
    assert all(later > earlier for earlier, later in zip(ratios, ratios[1:], strict=False))
    assert ratios[-1] > BLOCK / 2, "without the cache the whole context is recomputed"


def test_request_flops_add_up_the_schedule():
    config = small()
    # Prompt 4, 2 new tokens, no slide: a prefill of 4 tokens, then one decode at context 5.
    prefill = flops.flops_per_generated_token(config, 4, use_kv_cache=False)
    expected = prefill + flops.flops_per_generated_token(config, 5, use_kv_cache=True)
    assert flops.request_flops(config, 4, 2, use_kv_cache=True) == expected
    on = flops.request_flops(config, 4, 3 * BLOCK, use_kv_cache=True, batch_size=3)
    off = flops.request_flops(config, 4, 3 * BLOCK, use_kv_cache=False, batch_size=3)
    assert on < off
    assert on % 3 == 0 and flops.request_flops(config, 4, 3 * BLOCK, True) == on // 3


@pytest.mark.parametrize("n_kv_head", [None, 2, 1])
def test_kv_cache_formula_matches_the_tensors_and_counts_kv_heads(n_kv_head):
    config = small(n_kv_head=n_kv_head)
    model = model_for(config)
    cache = model.new_cache(3)
    with torch.no_grad():
        model(prompts(3, 6), cache=cache)
    formula = flops.kv_cache_bytes(config.n_layer, config.kv_heads, config.head_dim,
                                       tokens=6, batch_size=3, bytes_per_value=4)
    from_tensors = sum(t[:, :, :cache.length].numel() * t.element_size()
                       for t in cache.k + cache.v)
    assert formula == from_tensors == cache.nbytes()
    with_query_heads = flops.kv_cache_bytes(config.n_layer, config.n_head, config.head_dim,
                                                6, 3, 4)
    assert with_query_heads == formula * config.n_head // config.kv_heads


@pytest.mark.parametrize("kwargs, word", [(dict(n_kv_heads=0), "n_kv_heads"),
                                          (dict(tokens=-1), "tokens"),
                                          (dict(bytes_per_value=0), "bytes_per_value")])
def test_kv_cache_formula_rejects_bad_sizes(kwargs, word):
    arguments = dict(n_layer=2, n_kv_heads=2, head_dim=8, tokens=4)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=word):
        flops.kv_cache_bytes(**arguments)


# --- Figures -------------------------------------------------------------------------------


def test_the_benchmark_compares_identical_generations(monkeypatch):
    """benchmarks/bench_inference.py's measurement, run once on a tiny model: cached and
    uncached generation must give the same tokens, and the speed-up is a positive ratio."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_inference.py"
    spec = importlib.util.spec_from_file_location("bench_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "NEW_TOKENS", 12)
    speed_up, same = module.cache_speed_up("tiny", small(block_size=16), None, 1, "cpu")
    assert same and speed_up > 0


def test_request_flops_checks_context_keep_like_generation_does():
    config = ModelConfig(vocab_size=50, n_layer=1, n_head=2, n_embd=8, block_size=16)
    with pytest.raises(ValueError, match=r"context_keep \(or None\) must be a whole number "
                                         r">= 1 and <= 16"):
        flops.request_flops(config, 8, 200, True, context_keep=500)
