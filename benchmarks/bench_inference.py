"""What the KV cache saves, and tokens/s against batch size, measured in one process.

    .venv/bin/python benchmarks/bench_inference.py [--repeats 5] [--device cpu]

Part 1 generates 256 new tokens greedily from an 8-token prompt, with the cache and
without, and prints the speed-up (median over interleaved repeats, with the range of the
per-repeat ratios). Each row checks that both runs produced identical tokens: a fair
comparison does the same job both ways.

256 new tokens do not fit in the course model's 64-token window, and with learned
absolute positions a full window cannot simply drop its oldest token from the cache:
every kept token changes position, so its keys and values must be recomputed (see
course_lib.inference). Three rows:

- headline: the course's tiny model (4 layers, 4 heads, 128 wide) with a window of
  8 + 256 tokens, so that the whole request fits and nothing slides. This measures what
  the cache itself saves, as in a real server whose window is longer than the answer;
- the same model with the course's 64-token window and the default slide (keep the last
  half): what notebook 03's model gets, where the cache is rebuilt every 32 tokens and
  the uncached run never sees more than 64 tokens, so the saving is smaller;
- nanoGPT's slide (keep the whole window, so every step past it is a full re-prefill):
  a control where the cache cannot help, so the ratio should be about 1.

Part 2 times batches of 1 to 64 prompts (8 prompt tokens, 48 new tokens, cache on) and
prints time to first token, time per output token and tokens per second.

Weights are random: the arithmetic, and so the time, does not depend on their values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib import data, inference, runtime
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

PROMPT_TOKENS = 8
NEW_TOKENS = 256
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def time_generation(model, idx, use_kv_cache: bool, context_keep: int | None):
    """Seconds for one greedy request, and the tokens it produced."""
    runtime.synchronize(idx.device)
    start = time.perf_counter()
    out = inference.generate_tokens(model, idx, NEW_TOKENS, temperature=0,
                                    use_kv_cache=use_kv_cache, context_keep=context_keep)
    runtime.synchronize(idx.device)
    return time.perf_counter() - start, out


def cache_speed_up(label: str, config: ModelConfig, context_keep, repeats: int, device):
    torch.manual_seed(0)
    model = TinyGPT(config).to(device).eval()
    idx = torch.randint(0, config.vocab_size, (1, PROMPT_TOKENS),
                        generator=torch.Generator().manual_seed(1))
    idx = idx.to(device)
    seconds = {True: [], False: []}
    outputs = {}
    for run in range(repeats + 1):  # run 0 warms up; cached and uncached alternate
        for use_kv_cache in (True, False):
            elapsed, outputs[use_kv_cache] = time_generation(model, idx, use_kv_cache,
                                                             context_keep)
            if run:
                seconds[use_kv_cache].append(elapsed)
    same = torch.equal(outputs[True], outputs[False])
    ratios = [off / on for on, off in zip(seconds[True], seconds[False], strict=True)]
    on, off = statistics.median(seconds[True]), statistics.median(seconds[False])
    print(f"{label:<50} {on * 1e3:8.0f} ms {off * 1e3:8.0f} ms {off / on:7.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f})  {'yes' if same else 'NO'}")
    return off / on, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: runtime.device())")
    args = parser.parse_args()
    info = runtime.setup()
    device = torch.device(args.device) if args.device else runtime.device()
    print(f"device {device}, {info['threads']} CPU thread(s), torch {torch.__version__}, "
          f"{args.repeats} repeats (median, range of per-repeat ratios)\n")

    vocab = data.load_default_data().tokenizer.vocab_size  # the course's character set
    tiny = ModelConfig(vocab_size=vocab)
    print(f"Part 1: {NEW_TOKENS} new tokens from a {PROMPT_TOKENS}-token prompt, batch 1, greedy")
    print(f"{'model and window policy':<50} {'cache on':>11} {'cache off':>11} {'speed-up':>8}"
          f"  {'':13} same tokens")
    rows = [
        (f"tiny, window {PROMPT_TOKENS + NEW_TOKENS} (request fits: headline)",
         ModelConfig(vocab_size=vocab, block_size=PROMPT_TOKENS + NEW_TOKENS), None),
        (f"tiny, window {tiny.block_size}, slide keeps {tiny.block_size // 2} (notebook 03)",
         tiny, None),
        (f"tiny, window {tiny.block_size}, nanoGPT slide (control)", tiny, tiny.block_size),
    ]
    results = [cache_speed_up(label, config, keep, args.repeats, device)
               for label, config, keep in rows]
    headline = results[0][0]
    print(f"\nheadline: cached generation of {NEW_TOKENS} tokens is {headline:.2f}x faster "
          f"(target >= 2x: {'met' if headline >= 2 else 'NOT met'}); "
          f"{results[1][0]:.2f}x with the course's {tiny.block_size}-token window")
    if not all(same for _, same in results):
        raise SystemExit("cached and uncached generation produced different tokens")

    print(f"\nPart 2: batch sweep, tiny model, {PROMPT_TOKENS}-token prompts, 48 new tokens, "
          "cache on")
    torch.manual_seed(0)
    model = TinyGPT(tiny).to(device).eval()
    print(f"{'batch':>5} {'first token (ms)':>17} {'per token (ms)':>15} {'tokens/s':>10} "
          f"{'tokens/s range':>17}")
    for timing in inference.sweep_batch_sizes(model, BATCH_SIZES, PROMPT_TOKENS, 48,
                                              repeats=args.repeats):
        tps = timing.tokens_per_s
        print(f"{timing.batch_size:>5} {timing.time_to_first_token_s.median * 1e3:>17.2f} "
              f"{timing.time_per_output_token_s.median * 1e3:>15.2f} {tps.median:>10.0f} "
              f"{tps.low:>8.0f}-{tps.high:<8.0f}")


if __name__ == "__main__":
    main()
