"""Speculative decoding: exactly the target's own greedy output for every k, whatever the
draft; the counts behind the acceptance rate; bad input; the draft's training; the timing
helper and its figure (structure only, no timed assertion)."""

from __future__ import annotations

import pytest
import torch

from course_lib import inference, speculative
from course_lib.figures import serving_load
from course_lib.figures.base import new_figure
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

TARGET = ModelConfig(vocab_size=40, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, block_size=48)
# Tiny steps: one thread is fastest, and two crawl on a busy shared machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(config: ModelConfig, seed: int, scale: float = 0.3) -> TinyGPT:
    torch.manual_seed(seed)
    model = TinyGPT(config).eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(0.0, scale)
    return model


@pytest.fixture(scope="module")
def target() -> TinyGPT:
    return _model(TARGET, 0)


@pytest.fixture(scope="module")
def draft() -> TinyGPT:
    return _model(speculative.draft_config(TARGET), 1)


def _greedy(model: TinyGPT, prompt: torch.Tensor, new_tokens: int) -> list[int]:
    out = inference.generate_tokens(model, prompt, new_tokens, temperature=0)
    return out[0, prompt.shape[1]:].tolist()


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("prompt_tokens, new_tokens", [(1, 30), (7, 41), (20, 3), (5, 1)])
def test_the_output_is_exactly_the_targets_own_greedy_output(target, draft, k, prompt_tokens,
                                                             new_tokens):
    prompt = torch.randint(0, TARGET.vocab_size, (1, prompt_tokens),
                           generator=torch.Generator().manual_seed(prompt_tokens))
    result = speculative.speculative_generate(target, draft, prompt, new_tokens, k)
    assert result.tokens == _greedy(target, prompt, new_tokens)
    assert len(result.tokens) == new_tokens
    assert result.accepted <= result.trials <= result.proposed <= k * result.rounds


def test_a_perfect_draft_is_always_accepted(target):
    prompt = torch.randint(0, TARGET.vocab_size, (1, 4), generator=torch.Generator().manual_seed(0))
    result = speculative.speculative_generate(target, target, prompt, 41, 4)
    assert result.tokens == _greedy(target, prompt, 41)
    assert result.acceptance_rate == 1.0 and result.accepted == result.proposed
    assert result.rounds == 8 and result.tokens_per_pass == 5.0  # 40 tokens, 5 per pass


def test_a_draft_that_is_always_wrong_still_gives_the_targets_tokens(target):
    class Contrary(TinyGPT):
        """Proposes the target's least likely token: every guess is rejected."""

        def forward(self, idx, targets=None, cache=None):
            logits, loss = target(idx, cache=cache)
            return -logits, loss

    contrary = Contrary(TARGET).eval()
    prompt = torch.randint(0, TARGET.vocab_size, (1, 6), generator=torch.Generator().manual_seed(2))
    result = speculative.speculative_generate(target, contrary, prompt, 20, 3)
    assert result.tokens == _greedy(target, prompt, 20)
    assert result.accepted == 0 and result.acceptance_rate == 0.0
    assert result.tokens_per_pass == 1.0


@pytest.mark.parametrize("bad, error, words", [
    (dict(k=0), ValueError, "k (tokens"),
    (dict(new_tokens=50), ValueError, "fit in the context"),
    (dict(prompt=torch.zeros(2, 3, dtype=torch.long)), ValueError, "one sequence"),
])
def test_bad_input_is_refused_with_a_clear_message(target, draft, bad, error, words):
    arguments = dict(prompt=torch.zeros(1, 3, dtype=torch.long), new_tokens=5, k=2) | bad
    with pytest.raises(error, match=words.replace("(", r"\(")):
        speculative.speculative_generate(target, draft, **arguments)


def test_the_draft_must_read_the_same_tokens(target):
    other = _model(ModelConfig(vocab_size=41, n_layer=1, n_head=4, n_embd=16, block_size=48), 3)
    with pytest.raises(ValueError, match="vocab_size"):
        speculative.speculative_generate(target, other, torch.zeros(1, 2, dtype=torch.long), 4, 2)
    with pytest.raises(TypeError, match="TinyGPT"):
        speculative.speculative_generate(target, torch.nn.Linear(2, 2),
                                         torch.zeros(1, 2, dtype=torch.long), 4, 2)


def test_the_draft_is_smaller_and_trains_from_the_target(target, tiny_data):
    teacher = _model(ModelConfig(vocab_size=tiny_data.tokenizer.vocab_size, n_layer=2,
                                 n_head=2, n_embd=16, block_size=16), 4)
    draft = speculative.train_draft(teacher, tiny_data, steps=2)
    assert draft.config == speculative.draft_config(teacher.config)
    assert draft.config.n_layer == 1 and draft.config.n_embd == 8 and not draft.training


def test_timing_rows_and_their_figure(target, draft):
    prompts = [torch.randint(0, TARGET.vocab_size, (1, 5),
                             generator=torch.Generator().manual_seed(s)) for s in range(2)]
    rows = speculative.time_speculative(target, draft, prompts, 12, [1, 3])
    assert [r.k for r in rows] == [1, 3]
    for row in rows:
        assert 0 <= row.acceptance_rate <= 1 and 1 <= row.tokens_per_pass <= row.k + 1
        assert row.seconds.repeats == 2 and row.speed_up > 0
    _, axes = new_figure(ncols=2)
    assert serving_load.plot_speculative(axes, rows, 0.4) is axes
    assert "tokens per pass" in axes[0].get_title()
    assert axes[1].get_title().startswith("Best measured:")
