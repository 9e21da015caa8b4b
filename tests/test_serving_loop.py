"""The real server: a request served in a busy batch gets exactly the tokens it gets alone,
the ragged decode step matches the model's own forward pass, defined behaviour for bad
requests and the time bound, the step-time probe, and the figures of notebook 09.
Structural only: no assertion depends on how fast this machine is."""

from __future__ import annotations

import pytest
import torch

from course_lib import inference, serving_loop, traffic
from course_lib.figures import serving_load
from course_lib.figures.base import new_figure
from course_lib.model import TinyGPT
from course_lib.scheduler import continuous_batching, one_at_a_time, static_batching
from course_lib.serving_sim import simulate
from course_lib.shapes import ModelConfig
from course_lib.traffic import CUT_OFF, REJECTED, SERVED, Request

CONFIG = ModelConfig(vocab_size=50, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, block_size=32)
# Tiny steps: one thread is fastest, and two crawl on a busy shared machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> TinyGPT:
    """Untrained, with large weights: varied tokens and well-separated logits, so that a
    slip in positions or masks changes the tokens."""
    torch.manual_seed(0)
    built = TinyGPT(CONFIG).eval()
    with torch.no_grad():
        for weight in built.parameters():
            if weight.dim() == 2:
                weight.normal_(0.0, 0.3)
    return built


def _alone(model: TinyGPT, request: Request) -> list[int]:
    prompt = serving_loop.random_prompt(request, CONFIG.vocab_size)
    out = inference.generate_tokens(model, prompt, request.output_tokens, temperature=0)
    return out[0, request.prompt_tokens:].tolist()


@pytest.mark.parametrize("policy", [continuous_batching(6), static_batching(4, 0.01),
                                    one_at_a_time()], ids=lambda p: p.name)
def test_a_request_in_a_busy_batch_gets_exactly_the_tokens_it_gets_alone(model, policy):
    requests = traffic.workload(24, 2000.0, prompt_tokens=(1, 12), mean_output=8,
                                longest_output=20, seed=5)  # all arrive within milliseconds
    run = serving_loop.serve(model, requests, policy)
    assert run.count(SERVED) == len(requests)
    if policy.max_batch > 1:
        assert max(run.batch_sizes) > 1, "the test must really batch"
    for request in requests:
        assert run.outputs[request.id] == _alone(model, request), request


def test_the_ragged_decode_step_matches_the_models_own_forward_pass(model):
    prompts = [torch.randint(0, CONFIG.vocab_size, (1, n)) for n in (3, 9, 1, 15)]
    cache = serving_loop.SlotCache(model, 5)
    slots = [4, 0, 2, 1]  # not in order, one slot left empty
    first = serving_loop.prefill(model, cache, slots, prompts)
    tokens = first.argmax(-1)
    logits = serving_loop.decode_step(model, cache, torch.tensor(slots), tokens)
    for row, prompt in enumerate(prompts):
        own = model.new_cache(1)
        with torch.no_grad():
            alone_first, _ = model(prompt, cache=own)
            alone_next, _ = model(tokens[row].view(1, 1), cache=own)
        torch.testing.assert_close(first[row], alone_first[0, -1], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(logits[row], alone_next[0, -1], rtol=1e-5, atol=1e-5)
        assert int(cache.lengths[slots[row]]) == prompt.shape[1] + 1
    assert int(cache.lengths[3]) == 0


def test_bad_requests_are_refused_with_reasons_and_the_rest_served(model):
    requests = [Request(0, 0.0, 30, 5), Request(1, 0.0, 4, 0), Request(2, 0.0, 4, 3),
                *[Request(i, 0.0, 4, 3) for i in range(3, 9)]]
    run = serving_loop.serve(model, requests, one_at_a_time(), queue_limit=3)
    status = {r.request.id: (r.status, r.reason) for r in run.records}
    assert status[0][0] == REJECTED and "longer than the context" in status[0][1]
    assert status[1][0] == REJECTED and "nothing to generate" in status[1][1]
    assert sum("queue is full" in reason for _, reason in status.values()) == 4
    assert set(run.outputs) == {r.request.id for r in run.records if r.status == SERVED}


def test_a_real_run_ends_at_its_time_bound(model):
    requests = [Request(i, 0.0, 8, 20) for i in range(50)] + [Request(50, 30.0, 4, 4)]
    run = serving_loop.serve(model, requests, one_at_a_time(), time_bound_s=0.2)
    assert run.end_s < 5, "the loop must stop soon after its bound, not wait for request 50"
    assert run.records[-1].status == CUT_OFF and "arrives after" in run.records[-1].reason
    assert run.count(CUT_OFF) >= 1


def test_the_engine_wants_a_tinygpt():
    with pytest.raises(TypeError, match="TinyGPT"):
        serving_loop.TinyGPTEngine(torch.nn.Linear(2, 2), 4)


def test_step_times_feed_a_cost_model_and_its_jitter(model):
    times = serving_loop.measure_step_times(model, [(1, 4), (2, 8)], [1, 3], repeats=3)
    assert set(times.prefill) == {4, 16} and set(times.decode) == {1, 3}
    assert all(len(samples) == 3 for samples in times.decode.values())
    cost = times.cost_model()
    assert cost.decode_s(1) > 0 and cost.prefill_s(4) > 0
    assert len(times.jitter()) == 6 and min(times.jitter()) > 0
    assert times.spreads("decode")[1].repeats == 3


def test_the_figures_of_notebook_09_state_their_findings(model):
    times = serving_loop.measure_step_times(model, [(1, 4), (2, 8)], [1, 4], repeats=2)
    cost = times.cost_model()
    _, axes = new_figure(ncols=2)
    assert serving_load.plot_step_times(axes, times, cost) is axes
    assert "Decode: 4 sequences cost" in axes[1].get_title()
    loads = [100.0, 400.0]
    sweeps = {policy.name: [simulate(traffic.workload(60, rate, seed=1), policy, cost,
                                     context=CONFIG.block_size).summary() for rate in loads]
              for policy in (one_at_a_time(), continuous_batching(8))}
    _, axes = new_figure(ncols=3)
    assert serving_load.plot_load_sweep(axes, loads, sweeps) is axes
    assert "the tokens/s of one at a time" in axes[2].get_title()
    _, (ax,) = new_figure()
    runs = sweeps["continuous batching (8)"]
    assert serving_load.plot_batch_tradeoff(ax, [1, 8], runs, 0.05) is ax
    assert ax.get_title().startswith("Batch 1 to 8: tokens")
    _, (ax,) = new_figure()
    goodputs = {name: [s.requests_per_s for s in runs] for name, runs in sweeps.items()}
    assert serving_load.plot_goodput(ax, loads, goodputs, goodputs) is ax
    assert "goodput peaks at" in ax.get_title()
