"""Training speed: course_lib.training.train against a plain PyTorch loop, same model, same data.

Both runs train the nanoGPT CPU configuration (4 layers, 4 heads, 128 wide,
context 64, batch 12, lr 1e-3 -> 1e-4, warm-up 100, dropout 0) on the default
corpus from the same initial weights, with the same evaluation schedule, in
this one process. The plain loop uses torch.optim.AdamW with its defaults and
clip_grad_norm_ with its defaults; train() uses the fused AdamW kernel.

Prints tokens/s for each (training tokens / seconds, evaluation included), the
ratio (target >= 1.0) and each run's final validation loss. Seconds are given
two ways: wall clock, and the process's CPU time. On a machine shared with
other programs, wall-clock time depends on what else runs at that moment; with
one thread, CPU time counts only this process's own work, so its ratio is the
fairer comparison there.

    .venv/bin/python benchmarks/bench_training.py            # 2000 steps, several minutes
    .venv/bin/python benchmarks/bench_training.py --iters 200
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

import torch

from course_lib import runtime
from course_lib.data import get_batch, load_default_data
from course_lib.model import TinyGPT
from course_lib.training import (
    TrainConfig,
    default_model_config,
    estimate_loss,
    learning_rate_at,
    train,
)


def plain_loop(model: TinyGPT, data, config: TrainConfig) -> float:
    """The textbook loop with stock PyTorch defaults; returns the final validation loss."""
    runtime.seed_everything(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, betas=(config.beta1, config.beta2),
        weight_decay=config.weight_decay,
    )
    block = model.config.block_size
    model.train()
    for step in range(config.max_iters):
        if step % config.eval_interval == 0:
            estimate_loss(model, data, config, generator)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, config)
        x, y = get_batch(data.train, config.batch_size, block, generator)
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        loss.item()
    return estimate_loss(model, data, config, generator)["val"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000, help="training steps per run")
    args = parser.parse_args()
    print("setup:", runtime.setup())
    data = load_default_data(block_size=64)
    config = TrainConfig(max_iters=args.iters)
    torch.manual_seed(config.seed)
    initial = TinyGPT(default_model_config(data.tokenizer.vocab_size))
    tokens = config.max_iters * config.batch_size * initial.config.block_size
    print(f"model: {initial.num_params()['total']:,} parameters; {config.max_iters} steps, "
          f"{tokens:,} training tokens per run")

    warm_up(initial, data, config)
    plain_val, plain_wall, plain_cpu = timed(plain_loop, copy.deepcopy(initial), data, config)
    history, course_wall, course_cpu = timed(
        train, copy.deepcopy(initial), data, config, progress=False, live_plot=False
    )
    for name, wall, cpu, val in (
        ("plain PyTorch loop", plain_wall, plain_cpu, plain_val),
        ("course_lib train() ", course_wall, course_cpu, history.val_loss[-1]),
    ):
        print(f"{name}: {tokens / wall:7,.0f} tokens/s wall ({wall:6.1f} s), "
              f"{tokens / cpu:7,.0f} tokens/s CPU ({cpu:6.1f} s); "
              f"final val loss {val:.3f} nats/char")
    print(f"ratio (course / plain), wall clock: {plain_wall / course_wall:.2f}; "
          f"CPU time: {plain_cpu / course_cpu:.2f} (target >= 1.0)")


def timed(function, *args, **kwargs):
    """function's result, wall-clock seconds, and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def warm_up(model: TinyGPT, data, config: TrainConfig) -> None:
    """Pay one-time costs (the optimizer's first-use imports, first kernels) before timing."""
    short = dataclasses.replace(config, max_iters=3, eval_iters=1)
    plain_loop(copy.deepcopy(model), data, short)
    train(copy.deepcopy(model), data, short, progress=False, live_plot=False)

if __name__ == "__main__":
    main()
