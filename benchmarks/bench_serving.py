"""Serving many users: batching policies at one load, the simulator against real runs, and
speculative decoding, measured in one process on the course's trained model.

    .venv/bin/python benchmarks/bench_serving.py [--part policies|simulator|speculative|all]
        [--requests 200] [--repeats 5] [--threads 1]

Part 1 (policies) serves the same seeded Poisson workload with one request at a time,
static batching (batches of --max-batch, 20 ms wait) and continuous batching (up to
--max-batch), at one offered load: --load times the capacity of continuous batching, measured
by sending it --requests requests at once. Policies alternate within each repeat; every figure
is the median over the repeats with the range. It also prints Little's law's gap for every run.

Part 2 (simulator) serves continuous batching for real at three loads (0.3, 0.6 and 0.9 of
that capacity), simulates the same requests, and prints the simulator's gap on p50 and p99
time per output token and on throughput with three cost models: the step-time probe's
(measured before the runs), one fitted to every step of the three runs, and one fitted to
each run's own steps (no drift of the machine between runs), without and with that run's
step-to-step noise (each simulated step multiplied by a measured step's ratio to the line).

Part 3 (speculative) distils a one-layer draft from the course model (--draft-steps),
checks that speculative decoding gives the model's own greedy tokens, and times k = 1..6
against plain greedy decoding, next to Leviathan et al.'s formulas.

Timings on a shared machine are noisy: one thread (the default) keeps them steadier.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from course_lib import data, inference, runtime, serving_loop, serving_sim, speculative, training
from course_lib.scheduler import continuous_batching, one_at_a_time, static_batching
from course_lib.stats import Spread
from course_lib.traffic import workload

PROMPTS, MEAN_OUTPUT, LONGEST_OUTPUT = (4, 16), 16, 48


def probe(model, max_batch: int) -> serving_loop.StepTimes:
    return serving_loop.measure_step_times(model, [(1, 4), (1, 16), (2, 16), (4, 16)],
                                           sorted({1, 2, max_batch // 2, max_batch}))


def requests_at(rate: float, count: int, seed: int = 0):
    return workload(count, rate, prompt_tokens=PROMPTS, mean_output=MEAN_OUTPUT,
                    longest_output=LONGEST_OUTPUT, seed=seed)


def measured_capacity(model, args) -> float:
    """Requests per second continuous batching serves when every request arrives at once."""
    swamp = requests_at(1e6, args.requests, seed=7)
    run = serving_loop.serve(model, swamp, continuous_batching(args.max_batch),
                             time_bound_s=args.time_bound, queue_limit=args.requests)
    return run.summary().requests_per_s


def part_policies(model, capacity: float, args) -> None:
    rate = args.load * capacity
    print(f"Part 1: {args.requests} requests at {rate:.0f} requests/s ({args.load:g} x the "
          f"measured capacity of continuous batching, {capacity:.0f}/s), {args.repeats} repeats")
    policies = [one_at_a_time(), static_batching(args.max_batch, 0.02),
                continuous_batching(args.max_batch)]
    results = {policy.name: [] for policy in policies}
    requests = requests_at(rate, args.requests)
    for _ in range(args.repeats):
        for policy in policies:
            run = serving_loop.serve(model, requests, policy, time_bound_s=args.time_bound,
                                     queue_limit=args.requests)
            results[policy.name].append((run.summary(), run.littles_law().relative_gap))
    print(f"{'policy':<26} {'tokens/s':>18} {'p99 TPOT (ms)':>20} {'p99 TTFT (s)':>20} "
          f"{'batch':>6} {'|Little gap|':>13}")
    for name, rows in results.items():
        print(f"{name:<26} {spread([s.tokens_per_s for s, _ in rows], '.0f'):>18} "
              f"{spread([s.tpot_p99_s * 1e3 for s, _ in rows], '.2f'):>20} "
              f"{spread([s.ttft_p99_s for s, _ in rows], '.3f'):>20} "
              f"{statistics.median(s.mean_batch for s, _ in rows):6.2f} "
              f"{max(abs(g) for _, g in rows):>12.1%} (worst)")


def spread(values: list[float], form: str) -> str:
    """'median (lowest-highest)' of repeated measurements."""
    s = Spread.of(values)
    return f"{s.median:{form}} ({s.low:{form}}-{s.high:{form}})"


def part_simulator(model, cost, capacity: float, args) -> None:
    policy = continuous_batching(args.max_batch)
    print(f"\nPart 2: {policy.name}, {args.requests} requests per load, real against simulated")
    runs = {}
    for fraction in (0.3, 0.6, 0.9):
        requests = requests_at(fraction * capacity, args.requests, seed=2)
        runs[fraction] = (requests, serving_loop.serve(model, requests, policy,
                                                       time_bound_s=args.time_bound,
                                                       queue_limit=args.requests))
    fitted, _ = serving_sim.fit_to_runs([run for _, run in runs.values()])
    print(f"probe cost model:   {cost.describe()}\nfitted to all runs: {fitted.describe()}")
    print(f"{'load':>5} {'cost model':<11} {'p50 TPOT':>9} {'p99 TPOT':>9} {'tokens/s':>9}"
          f"   real: p50/p99 TPOT (ms), tokens/s, Little gap")
    for fraction, (requests, real) in runs.items():
        measured = real.summary()
        own, jitter = serving_sim.fit_to_runs([real])
        for label, model_cost, noise in (("probe", cost, ()), ("all runs", fitted, ()),
                                         ("this run", own, ()), ("+ its noise", own, jitter)):
            simulated = serving_sim.simulate(requests, policy, model_cost, context=64,
                                             jitter=noise).summary()
            gaps = serving_sim.agreement(measured, simulated)
            print(f"{fraction:>5} {label:<11} {gaps['p50 TPOT']:>+9.1%} {gaps['p99 TPOT']:>+9.1%}"
                  f" {gaps['throughput']:>+9.1%}   {measured.tpot_p50_s * 1e3:.2f}/"
                  f"{measured.tpot_p99_s * 1e3:.2f}, {measured.tokens_per_s:.0f}, "
                  f"{real.littles_law().relative_gap:+.1%}")


def part_speculative(model, args) -> None:
    corpus = data.load_default_data(block_size=model.config.block_size)
    draft = speculative.train_draft(model, corpus, args.draft_steps)
    starts = torch.randint(0, len(corpus.val) - 16, (args.prompts,),
                           generator=torch.Generator().manual_seed(0)).tolist()
    prompts = [corpus.val[s:s + 8][None].long() for s in starts]
    new_tokens = model.config.block_size - 8
    same = all(speculative.speculative_generate(model, draft, p, new_tokens, k).tokens
               == inference.generate_tokens(model, p, new_tokens, temperature=0)[0, 8:].tolist()
               for p in prompts for k in (1, 4))
    target_s = inference.time_request(model, 1, 8, 32).time_per_output_token_s.median
    draft_s = inference.time_request(draft, 1, 8, 32).time_per_output_token_s.median
    c = draft_s / target_s
    print(f"\nPart 3: draft {draft.config.n_layer} layer x {draft.config.n_embd} wide, "
          f"{args.draft_steps} distillation steps; {len(prompts)} prompts x {new_tokens} "
          f"tokens; identical to plain greedy: {'yes' if same else 'NO'}")
    print(f"draft step / target step = {draft_s * 1e3:.2f} / {target_s * 1e3:.2f} ms = {c:.2f}")
    print(f"{'k':>2} {'a':>6} {'tokens/pass':>12} {'formula':>8} {'speed-up':>20} {'formula':>8}")
    for row in speculative.time_speculative(model, draft, prompts, new_tokens, range(1, 7)):
        low = row.plain_seconds.median / row.seconds.high
        high = row.plain_seconds.median / row.seconds.low
        print(f"{row.k:>2} {row.acceptance_rate:6.3f} {row.tokens_per_pass:12.2f} "
              f"{serving_sim.expected_tokens_per_step(row.acceptance_rate, row.k):8.2f} "
              f"{row.speed_up:8.2f} ({low:.2f}-{high:.2f}) "
              f"{serving_sim.speculative_speed_up(row.acceptance_rate, row.k, c):8.2f}")
    if not same:
        raise SystemExit("speculative decoding changed the tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("policies", "simulator", "speculative", "all"),
                        default="all")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--time-bound", type=float, default=120.0)
    parser.add_argument("--draft-steps", type=int, default=600)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    runtime.setup()
    threads = runtime.configure_threads(args.threads)
    model = training.load_or_train_default(progress=False).model
    print(f"device {model.device}, {threads} CPU thread(s), torch {torch.__version__}; "
          f"TinyGPT {model.config.n_layer} layers x {model.config.n_embd} wide\n")
    if args.part in ("policies", "simulator", "all"):
        cost = probe(model, args.max_batch).cost_model()
        capacity = measured_capacity(model, args)
        estimate = serving_sim.capacity_requests_per_s(cost, args.max_batch, sum(PROMPTS) / 2,
                                                       MEAN_OUTPUT)
        print(f"capacity of continuous batching ({args.max_batch}): {capacity:.0f} requests/s "
              f"measured (all requests at once), {estimate:.0f} by the probe's cost model\n")
        if args.part in ("policies", "all"):
            part_policies(model, capacity, args)
        if args.part in ("simulator", "all"):
            part_simulator(model, cost, capacity, args)
    if args.part in ("speculative", "all"):
        part_speculative(model, args)


if __name__ == "__main__":
    main()
