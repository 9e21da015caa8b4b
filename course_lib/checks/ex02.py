"""Checks for exercises/02_training_a_tiny_model.ipynb: tokens, FLOPs and memory of training.

The FLOP checks build fresh TinyGPTs of their own and measure them with PyTorch's
FlopCounterMode, so they test the learner's code against what really runs.
"""

from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib import references
from course_lib.checks import (
    BITS,
    MACS,
    NO_BACKWARD,
    Wrong,
    call,
    compare,
    task,
)
from course_lib.checks import summary as _summary
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

NO_BACKWARD_RAN = ("The model has no gradients after your function ran, so the backward pass "
                   "never ran: the task is to measure it, not to assume it. Call "
                   "loss.backward() inside a FlopCounterMode block (not under torch.no_grad()) "
                   "and count what it executes.")
KAPLAN_HALF_ATTENTION = (
    "Your attention term is half the count: that is Kaplan et al.'s 2 x n_layer x n_ctx x "
    "n_embd. TinyGPT scores each query against block_size keys (2 x block_size x n_embd "
    "FLOPs) and mixes as many values (as much again): 4 x n_layer x block_size x n_embd per "
    "token in the forward pass.")

# Fresh shapes the learner's code has not seen; the second uses grouped-query attention.
_CONFIGS = (ModelConfig(vocab_size=37, n_layer=2, n_head=2, n_embd=16, block_size=12),
            ModelConfig(vocab_size=50, n_layer=3, n_head=4, n_kv_head=2, n_embd=32, block_size=8))
_BATCH_SIZE = 3


def _fresh(config: ModelConfig, batch_size: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TinyGPT(config)
    shape = (batch_size, config.block_size)
    idx = torch.randint(0, config.vocab_size, shape, generator=generator)
    targets = torch.randint(0, config.vocab_size, shape, generator=generator)
    return model, idx, targets


@functools.cache
def _measured(which: int, batch_size: int) -> tuple[int, int]:
    """(forward FLOPs, forward + backward FLOPs) of _CONFIGS[which], as PyTorch counts them.

    Cached: the counter is slow to start, and the count depends only on the shape.
    """
    model, idx, targets = _fresh(_CONFIGS[which], batch_size, seed=which)
    with FlopCounterMode(display=False) as forward:
        model(idx, targets)
    with FlopCounterMode(display=False) as step:
        _, loss = model(idx, targets)
        loss.backward()
    return forward.get_total_flops(), step.get_total_flops()


@task("Task 1 · Tokens seen in training")
def tokens_seen(answer, batch_size: int, block_size: int, steps: int) -> str:
    expected = batch_size * block_size * steps
    compare(answer, expected, [
        (batch_size * block_size, "That is one step: multiply by the number of steps."),
        (block_size * steps, "You left out the batch: each step reads batch_size sequences."),
        (batch_size * steps, "You counted sequences, not tokens: each sequence has "
                             "block_size tokens."),
        (batch_size * (block_size + 1) * steps, "The targets are the inputs shifted by one: "
                                                 "count the block_size input tokens only.")])
    return "this is D, the training tokens in 6 N D."


@task("Task 2 · Measure the backward-pass factor")
def count_training_flops(function) -> str:
    for seed, config in enumerate(_CONFIGS):
        model, idx, targets = _fresh(config, _BATCH_SIZE, seed)
        forward, step = _measured(seed, _BATCH_SIZE)
        result = call(function, model, idx, targets, name="count_training_flops")
        backward_ran = any(p.grad is not None for p in model.parameters())
        model.zero_grad(set_to_none=True)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Wrong("count_training_flops must return a pair: "
                        "(forward FLOPs, forward + backward FLOPs).")
        got_forward, got_step = result
        if not backward_ran:
            raise Wrong(NO_BACKWARD_RAN)
        compare(got_forward, forward, [(forward / 2, MACS), (step, "Your first number includes "
                "the backward pass: count the forward pass on its own first.")],
                name="the forward FLOPs")
        compare(got_step, step, [
            (forward, "Your training-step count equals the forward pass: run loss.backward() "
                      "inside the counter too."),
            (step - forward, "That is the backward pass alone: a training step is forward "
                             "and backward."),
            (step / 2, MACS)], name="the training-step FLOPs")
    return "measured on two fresh models: the step is 3x the forward pass, on any shape."


def _formula_step_flops(config: ModelConfig, batch_size: int, kv_width: int,
                        attention: float = 4, lm_head: bool = True) -> float:
    """The analytic count, with switches for the common omissions (attention: the factor in
    front of n_layer x n_ctx x n_embd; 0 leaves attention out, 2 is Kaplan's half)."""
    d, layers, t = config.n_embd, config.n_layer, config.block_size
    per_layer = d * (d + 2 * kv_width) + d * d + 8 * d * d  # qkv, attention out, MLP
    weights = layers * per_layer + (d * config.vocab_size if lm_head else 0)
    per_token = 2 * weights + attention * layers * t * d
    return 3 * batch_size * t * per_token


@task("Task 3 · FLOPs of a training step, by formula")
def train_step_flops(function) -> str:
    batch_size = _BATCH_SIZE
    for which, config in enumerate(_CONFIGS):
        _, measured = _measured(which, batch_size)
        kv_width = config.kv_heads * config.head_dim
        mistakes = [
            (measured / 3, NO_BACKWARD), (measured / 2, MACS),
            (_formula_step_flops(config, batch_size, kv_width, attention=2),
             KAPLAN_HALF_ATTENTION),
            (_formula_step_flops(config, batch_size, kv_width, attention=0),
             "You left out attention: each token's query meets block_size keys and values, "
             "4 x n_layer x block_size x n_embd FLOPs per token in the forward pass."),
            (_formula_step_flops(config, batch_size, kv_width, lm_head=False),
             "You left out the output layer (lm_head): it is tied to the embedding, so it "
             "adds no parameters, but its matmul runs on every token."),
        ]
        if config.kv_heads != config.n_head:
            mistakes.append((_formula_step_flops(config, batch_size, config.n_embd),
                             "With grouped-query attention the key and value projections are "
                             "n_kv_head x head_dim wide, not n_embd."))
        got = call(function, config, batch_size, name="train_step_flops")
        compare(got, measured, mistakes, name=f"train_step_flops for {config}")
    return "your formula equals PyTorch's count exactly, attention and lm_head included."


@task("Task 4 · Training memory with AdamW")
def adamw_bytes(answer, model: str) -> str:
    n = references.value(f"{model}.params")
    expected = references.value("memory.adamw_bytes_per_param") * n
    compare(answer, expected, [
        (4 * n, "That is the fp32 weights alone: training also stores a gradient and two AdamW "
                "moments per parameter."),
        (8 * n, "Weights and gradients only: AdamW also keeps two moments per parameter."),
        (12 * n, "You left out the gradients: one fp32 number per parameter."),
        (8 * expected, BITS)])
    return "and activations come on top, growing with batch size and context."


def _sparse_peak(chip: str) -> str:
    return ("Half the expected value: did you use the peak quoted with sparsity, twice the "
            "dense figure? A training run's matmuls are dense: use "
            f"{chip}.peak_flops ({references.get(f'{chip}.peak_flops').what}).")


@task("Task 5 · Utilisation of a real training run")
def implied_mfu(answer, model: str, chip: str) -> str:
    n = references.value(f"{model}.params")
    d = references.value(f"{model}.training_tokens")
    capacity = references.value(f"{model}.gpu_hours") * 3600 * references.value(
        f"{chip}.peak_flops")
    expected = 6 * n * d / capacity
    compare(answer, expected, [
        (expected * 3600, "GPU-hours must become seconds (x 3600) before you multiply by a "
                          "peak in FLOP per second."),
        (expected / 3, NO_BACKWARD),
        (expected * 100, "Give a fraction between 0 and 1, not a percentage."),
        (expected / 2, _sparse_peak(chip))])
    return "well below 1: real runs lose time to communication, memory traffic and restarts."


CHECKS = (tokens_seen, count_training_flops, train_step_flops, adamw_bytes, implied_mfu)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
