"""Speculative decoding: a small draft model guesses k tokens, the model checks them all in
one forward pass.

Torch layer. Decoding one token costs one forward pass of the (large) model, and at small
batch that pass is limited by reading the weights, not by arithmetic: checking k + 1
tokens in one pass costs about as much as generating one. Speculative decoding
(Leviathan et al. 2023; Chen et al. 2023) exploits that. Each round:

1. the draft model, much cheaper per token, proposes k tokens one by one;
2. the target model runs once on the last confirmed token and the k proposals, which gives
   its own choice at each of the k + 1 positions;
3. proposals are accepted from the left while they equal the target's choice; at the first
   mismatch the target's choice replaces it (and after k accepted, the target's choice at
   the last position comes free): every round yields between 1 and k + 1 tokens.

With greedy decoding (as here) the output is exactly the target's own greedy output: every
token kept is one the target chose given the tokens before it. Rejected positions are
dropped from both KV caches by shortening them (KVCache.length); the next pass overwrites
them. If each proposal is accepted with probability a, a round yields on average
(1 - a^(k+1)) / (1 - a) tokens (course_lib.serving_sim.expected_tokens_per_step).

The draft here is a smaller TinyGPT distilled from the target (course_lib.distill).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from course_lib import distill, inference, validate
from course_lib.data import TokenData
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.stats import Spread
from course_lib.training_config import TrainConfig

MAX_DRAFT_STEPS = 100_000  # distillation steps for a draft: more would take many hours


@dataclass(frozen=True)
class SpeculativeResult:
    """The new tokens of one speculative generation, and how the guessing went."""

    tokens: list[int]
    k: int
    rounds: int  # target passes after the prefill (each checks up to k proposals)
    proposed: int  # draft tokens proposed
    accepted: int  # of those, accepted
    trials: int  # proposals checked up to and including each round's first mismatch

    @property
    def acceptance_rate(self) -> float:
        """Estimate of a, the chance a proposal is accepted given that the ones before it
        were: accepted / trials (proposals after a round's first mismatch are never tried,
        so accepted / proposed would understate a)."""
        return self.accepted / self.trials if self.trials else float("nan")

    @property
    def tokens_per_pass(self) -> float:
        """New tokens per target pass, the prefill's first token left out."""
        return (len(self.tokens) - 1) / self.rounds if self.rounds else float("nan")


def _check(target: TinyGPT, draft: TinyGPT, prompt: torch.Tensor, new_tokens: int,
           k: int) -> None:
    for name, model in (("target", target), ("draft", draft)):
        if not isinstance(model, TinyGPT):
            raise TypeError(f"{name} must be a TinyGPT, got {type(model).__name__}")
    if draft.config.vocab_size != target.config.vocab_size:
        raise ValueError("the draft must read the same tokens as the target: vocab_size "
                         f"{draft.config.vocab_size} vs {target.config.vocab_size}")
    validate.whole("k (tokens the draft proposes per round)", k)
    validate.whole("new_tokens", new_tokens)
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.shape[0] != 1:
        raise ValueError("prompt must be a LongTensor of shape (1, tokens): one sequence")
    room = min(target.config.block_size, draft.config.block_size)
    if prompt.shape[1] + new_tokens > room:
        raise ValueError(f"the prompt ({prompt.shape[1]} tokens) and new_tokens ({new_tokens}) "
                         f"must fit in the context ({room} tokens); this loop does not slide")


@torch.no_grad()
def speculative_generate(target: TinyGPT, draft: TinyGPT, prompt: torch.Tensor,
                         new_tokens: int, k: int) -> SpeculativeResult:
    """`new_tokens` greedy tokens of `target` after `prompt` (1, tokens), drafted k at a time.

    Invariants: the target's cache holds every token but the newest; the draft's holds a
    prefix of them, and `unseen` lists the rest. Shown whole in notebook 09.
    """
    _check(target, draft, prompt, new_tokens, k)
    target.eval()
    draft.eval()
    prompt = prompt.to(target.device)
    target_cache, draft_cache = target.new_cache(1), draft.new_cache(1)
    logits, _ = target(prompt, cache=target_cache)  # prefill: the first new token
    out = [int(logits[0, -1].argmax())]
    unseen = prompt[0].tolist() + out  # tokens the draft has not read yet
    rounds = proposed = accepted = trials = 0
    while len(out) < new_tokens:
        k_now = min(k, new_tokens - len(out) - 1)  # never propose past the last token
        guesses = []
        for _ in range(k_now):  # 1. the draft guesses, one token at a time
            fed = unseen if not guesses else guesses[-1:]
            draft_logits, _ = draft(torch.tensor([fed], device=draft.device), cache=draft_cache)
            guesses.append(int(draft_logits[0, -1].argmax()))
        # 2. one target pass over the newest token and the guesses: its choice at each place
        checked, _ = target(torch.tensor([out[-1:] + guesses], device=target.device),
                            cache=target_cache)
        choices = checked[0].argmax(dim=-1).tolist()
        n = 0  # 3. accept guesses while they match; the target's choice follows them
        while n < k_now and guesses[n] == choices[n]:
            n += 1
        out += guesses[:n] + [choices[n]]
        target_cache.length -= k_now - n  # forget the rejected guesses
        if k_now:
            draft_cache.length -= k_now - 1 - min(n, k_now - 1)
            unseen = guesses[k_now - 1:] + [choices[n]] if n == k_now else [choices[n]]
        else:
            unseen = unseen + [choices[n]]
        rounds, proposed, accepted = rounds + 1, proposed + k_now, accepted + n
        trials += n + int(n < k_now)  # the first mismatch was a trial too
    return SpeculativeResult(out, k, rounds, proposed, accepted, trials)


@validate.checked
def draft_config(target: ModelConfig) -> ModelConfig:
    """The course's draft: one layer, half the width, same tokens and context as the target."""
    return ModelConfig(vocab_size=target.vocab_size, n_layer=1, n_head=target.n_head,
                       n_embd=max(target.n_head, target.n_embd // 2),
                       block_size=target.block_size)


@validate.checked
def train_draft(target: TinyGPT, data: TokenData, steps: int, *, seed: int = 0) -> TinyGPT:
    """A draft_config() TinyGPT distilled from `target` for `steps` steps (course_lib.distill)."""
    validate.whole("steps", steps, highest=MAX_DRAFT_STEPS)
    validate.seed("seed", seed)
    torch.manual_seed(seed)
    draft = TinyGPT(draft_config(target.config)).to(target.device)
    config = TrainConfig(max_iters=steps, eval_interval=steps, eval_iters=2,
                         warmup_iters=min(100, steps // 10), seed=seed)
    distill.distill(target, draft, data, config, progress=False)
    return draft.eval()


@dataclass(frozen=True)
class SpeculativeTiming:
    """One k over several prompts: acceptance, tokens per target pass, and time (s)."""

    k: int
    acceptance_rate: float
    tokens_per_pass: float
    seconds: Spread  # per request
    plain_seconds: Spread  # the same requests, target alone (greedy, KV cache)

    @property
    def speed_up(self) -> float:
        return self.plain_seconds.median / self.seconds.median


def _seconds(generate) -> tuple[float, object]:
    start = time.perf_counter()
    result = generate()
    return time.perf_counter() - start, result


def time_speculative(target: TinyGPT, draft: TinyGPT, prompts: Sequence[torch.Tensor],
                     new_tokens: int, ks: Sequence[int]) -> list[SpeculativeTiming]:
    """Each prompt (1, tokens) served plainly and with each k in turn (interleaved, so a busy
    spell of the machine hits all alike); one SpeculativeTiming per k. The plain run is
    course_lib.inference's greedy loop with the KV cache."""
    validate.items("prompts", prompts, torch.Tensor)
    ks = [validate.whole(f"ks[{i}]", k) for i, k in enumerate(validate.items("ks", ks))]
    speculative_generate(target, draft, prompts[0], new_tokens, max(ks))  # warm-up
    plain, timed = [], {k: [] for k in ks}
    for prompt in prompts:
        seconds, _ = _seconds(lambda p=prompt: inference.generate_tokens(
            target, p.to(target.device), new_tokens, temperature=0))
        plain.append(seconds)
        for k in ks:
            timed[k].append(_seconds(lambda p=prompt, k=k: speculative_generate(
                target, draft, p, new_tokens, k)))
    rows = []
    for k in ks:
        results = [result for _, result in timed[k]]
        accepted, trials = sum(r.accepted for r in results), sum(r.trials for r in results)
        passes = sum(r.rounds for r in results)
        rows.append(SpeculativeTiming(
            k, accepted / trials if trials else float("nan"),
            sum(len(r.tokens) - 1 for r in results) / passes,
            Spread.of([seconds for seconds, _ in timed[k]]), Spread.of(plain)))
    return rows
