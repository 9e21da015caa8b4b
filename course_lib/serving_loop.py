"""A real server for TinyGPT: slots with their own KV caches, and a decode step that
advances every active sequence at once, each at its own position.

Torch layer. course_lib.scheduler holds the loop and its policies; this module is the
engine that does the work on the wall clock.

**Slots.** A server holds `slots` sequences at once. The keys and values of all of them
live in one tensor per layer, one row per slot: row s is slot s's KV cache, and each row
has its own length. (TinyGPT's KVCache has a single length for its whole batch: fine for
prompts that start together, not for a server where a request that arrived a second ago
shares the batch with one that is 40 tokens into its answer.)

**Prefill** runs the prompts admitted at one step through the model's own forward pass,
together, padded on the right to the longest, into a fresh KVCache, and copies each
prompt's keys and values into its slot's row.

**The decode step** (`decode_step`, shown whole in notebook 09) feeds one token per active
slot as one batch. Each row gets the position embedding of its own position, writes its
new key and value at its own place in its row, and attends to its own cached positions
only (a per-row mask). The arithmetic per row is the model's own, so a request served in
a busy batch gets exactly the tokens it would get alone (tests/test_serving_loop.py).

Decoding is greedy: the most likely token. Prompts are random token ids unless given:
token values do not change the arithmetic, so they time the same as real text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from course_lib import validate
from course_lib.model import CausalSelfAttention, KVCache, TinyGPT
from course_lib.scheduler import Policy, ServingRun, run
from course_lib.serving_sim import CostModel, fit_cost_model
from course_lib.stats import MAX_REPEATS, Spread
from course_lib.traffic import Request
from course_lib.training_config import MAX_BATCH_SIZE

TORCH_INT_LIMIT = 2**63 - 1  # token ids and generator seeds are 64-bit integers in torch


class SlotCache:
    """Keys and values of `slots` sequences: k[layer] and v[layer] have shape (slots,
    kv_heads, block_size, head_dim); row s holds slot s's first lengths[s] positions."""

    def __init__(self, model: TinyGPT, slots: int):
        config = model.config
        shape = (validate.whole("slots", slots), config.kv_heads, config.block_size,
                 config.head_dim)
        options = {"device": model.device, "dtype": model.wte.weight.dtype}
        self.k = [torch.zeros(shape, **options) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, **options) for _ in range(config.n_layer)]
        self.lengths = torch.zeros(slots, dtype=torch.long, device=model.device)

    def load(self, slot: int, cache: KVCache, row: int, length: int) -> None:
        """Copy the first `length` positions of a KVCache's row `row` into row `slot`."""
        for layer in range(len(self.k)):
            self.k[layer][slot, :, :length] = cache.k[layer][row, :, :length]
            self.v[layer][slot, :, :length] = cache.v[layer][row, :, :length]
        self.lengths[slot] = length


@torch.no_grad()
def prefill(model: TinyGPT, cache: SlotCache, slots: Sequence[int],
            prompts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Run `prompts` (each (1, tokens)) through the model in one pass, into `slots`; the
    logits (len(prompts), vocab) at each prompt's last token.

    The prompts are padded on the right to the longest. Attention is causal, so a prompt's
    own tokens never see the padding after them: their logits, keys and values are what
    the prompt alone would give, and only those are kept.
    """
    lengths = [prompt.shape[1] for prompt in prompts]
    batch = torch.zeros((len(prompts), max(lengths)), dtype=torch.long, device=model.device)
    for row, prompt in enumerate(prompts):
        batch[row, : lengths[row]] = prompt[0]
    fresh = model.new_cache(len(prompts))
    logits, _ = model(batch, cache=fresh)
    for row, (slot, length) in enumerate(zip(slots, lengths, strict=True)):
        cache.load(slot, fresh, row, length)
    return logits[torch.arange(len(prompts)), torch.tensor(lengths) - 1]


def _attend(attn: CausalSelfAttention, x: torch.Tensor, k_rows: torch.Tensor,
            v_rows: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Attention for one new token per row, row i at positions[i] of cache row slots[i]."""
    B, _, C = x.shape
    kv_dim = attn.kv_heads * attn.head_dim
    q, k, v = attn.c_attn(x).split([C, kv_dim, kv_dim], dim=2)
    q = q.view(B, 1, attn.n_head, attn.head_dim).transpose(1, 2)  # (B, heads, 1, head_dim)
    k_rows[slots, :, positions] = k.view(B, attn.kv_heads, attn.head_dim)  # each at its place
    v_rows[slots, :, positions] = v.view(B, attn.kv_heads, attn.head_dim)
    width = int(positions.max()) + 1  # the longest row's positions; shorter rows are masked
    keys, values = k_rows[slots, :, :width], v_rows[slots, :, :width]
    if attn.kv_heads != attn.n_head:  # grouped-query attention, as in the model
        keys = keys.repeat_interleave(attn.n_head // attn.kv_heads, dim=1)
        values = values.repeat_interleave(attn.n_head // attn.kv_heads, dim=1)
    scores = (q @ keys.transpose(-2, -1)) / math.sqrt(attn.head_dim)  # (B, heads, 1, width)
    beyond = torch.arange(width, device=x.device)[None, :] > positions[:, None]  # (B, width)
    scores = scores.masked_fill(beyond[:, None, None, :], float("-inf"))  # each row: its own
    y = F.softmax(scores, dim=-1) @ values  # (B, heads, 1, head_dim)
    return attn.c_proj(y.transpose(1, 2).reshape(B, 1, C))


@torch.no_grad()
def decode_step(model: TinyGPT, cache: SlotCache, slots: torch.Tensor,
                tokens: torch.Tensor) -> torch.Tensor:
    """One token for each of `slots` (B,), fed `tokens` (B,): the next-token logits (B, vocab).

    Row i sits at its own position, cache.lengths[slots[i]]; the layers are the model's
    own. Shown whole in notebook 09.
    """
    positions = cache.lengths[slots]
    x = (model.wte(tokens) + model.wpe(positions))[:, None, :]  # (B, 1, n_embd)
    for layer, block in enumerate(model.blocks):
        x = x + _attend(block.attn, block.ln_1(x), cache.k[layer], cache.v[layer], slots,
                        positions)
        x = x + block.mlp(block.ln_2(x))
    cache.lengths[slots] += 1
    return model.lm_head(model.ln_f(x))[:, 0]


def random_prompt(request: Request, vocab_size: int, seed: int = 0) -> torch.Tensor:
    """Random token ids (1, prompt_tokens) for `request`, the same for the same seed and id."""
    validate.instance("request", request, Request)
    validate.whole("vocab_size", vocab_size, highest=TORCH_INT_LIMIT)
    # the modulo keeps a huge request id within manual_seed's range; smaller ones are unchanged
    mixed = (validate.seed("seed", seed) * 1_000_003 + request.id) % TORCH_INT_LIMIT
    generator = torch.Generator().manual_seed(mixed)
    return torch.randint(vocab_size, (1, request.prompt_tokens), generator=generator)


def _prompts(prompts: Mapping[int, torch.Tensor] | None) -> dict[int, torch.Tensor]:
    """The prompts given by request id, each a tensor of token ids of shape (1, tokens)."""
    validate.instance("prompts", prompts, (Mapping, type(None)), " (request id -> token ids)")
    for key, ids in (prompts or {}).items():
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[0] != 1:
            raise ValueError(f"prompts[{key!r}] must be a tensor of token ids of shape (1, "
                             f"tokens), got {ids!r:.60}")
    return dict(prompts or {})


class TinyGPTEngine:
    """TinyGPT on the wall clock: slots, their caches, the next token each slot will be fed,
    and every token produced, by request id. Greedy decoding."""

    def __init__(self, model: TinyGPT, slots: int,
                 prompts: Mapping[int, torch.Tensor] | None = None, seed: int = 0):
        if not isinstance(model, TinyGPT):
            raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
        self.slots = validate.whole("slots", slots, highest=MAX_BATCH_SIZE)
        self.prompts = _prompts(prompts)
        self.seed = validate.seed("seed", seed)
        self.model = model.eval()
        self.context = model.config.block_size
        self.cache = SlotCache(model, slots)
        self.next_token = torch.zeros(slots, dtype=torch.long, device=model.device)
        self.owner: dict[int, int] = {}  # slot -> request id
        self.outputs: dict[int, list[int]] = {}
        self._start = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._start

    def wait_until(self, t: float) -> None:
        time.sleep(max(0.0, t - self.now()))

    def prompt_ids(self, request: Request) -> torch.Tensor:
        ids = self.prompts.get(request.id)
        if ids is None:
            ids = random_prompt(request, self.model.config.vocab_size, self.seed)
        elif ids.shape[1] != request.prompt_tokens:  # the loop fits requests to the context
            raise ValueError(f"prompts[{request.id}] holds {ids.shape[1]} tokens, but request "
                             f"{request.id} has prompt_tokens={request.prompt_tokens}")
        return ids.to(self.model.device)

    def prefill(self, slots: Sequence[int], requests: Sequence[Request]) -> None:
        logits = prefill(self.model, self.cache, slots, [self.prompt_ids(r) for r in requests])
        tokens = logits.argmax(dim=-1).tolist()  # tolist(): the CPU waits for the device
        for slot, request, token in zip(slots, requests, tokens, strict=True):
            self.next_token[slot] = token
            self.owner[slot] = request.id
            self.outputs[request.id] = [token]

    def decode(self, slots: Sequence[int]) -> None:
        rows = torch.tensor(list(slots), dtype=torch.long, device=self.model.device)
        logits = decode_step(self.model, self.cache, rows, self.next_token[rows])
        tokens = logits.argmax(dim=-1)
        self.next_token[rows] = tokens
        for slot, token in zip(slots, tokens.tolist(), strict=True):
            self.outputs[self.owner[slot]].append(token)

    def warm_up(self) -> None:
        """One untimed prefill and decode step: first calls pay one-off allocation costs."""
        self.prefill([0], [Request(0, 0.0, 4, 2)])
        self.decode([0])
        self.outputs.clear()
        self._start = time.perf_counter()


@validate.checked
def serve(model: TinyGPT, requests: Sequence[Request], policy: Policy, *,
          queue_limit: int = 256, time_bound_s: float = 60.0,
          prompts: Mapping[int, torch.Tensor] | None = None, seed: int = 0) -> ServingRun:
    """Serve `requests` for real, arrivals on the wall clock (course_lib.scheduler.run);
    the run's `outputs` holds the tokens each request received."""
    engine = TinyGPTEngine(model, policy.max_batch, prompts, seed)
    engine.warm_up()
    result = run(requests, engine, policy, queue_limit=queue_limit, time_bound_s=time_bound_s)
    result.outputs = engine.outputs
    return result


@dataclass(frozen=True)
class StepTimes:
    """Measured step times (s): prefill passes by their tokens (prompts x tokens per prompt),
    decode steps by their batch size."""

    prefill: dict[int, list[float]]
    decode: dict[int, list[float]]

    def spreads(self, kind: str) -> dict[int, Spread]:
        """Median and range per prefill size in tokens ('prefill') or batch size ('decode')."""
        return {size: Spread.of(samples) for size, samples in getattr(self, kind).items()}

    def cost_model(self) -> CostModel:
        """Straight lines through every sample: they pass through the mean step times, which
        is what a long run pays (a few slow steps count in full)."""
        pairs = {kind: [(size, t) for size, samples in getattr(self, kind).items()
                        for t in samples] for kind in ("prefill", "decode")}
        return fit_cost_model(*zip(*pairs["prefill"], strict=True),
                              *zip(*pairs["decode"], strict=True))

    def jitter(self) -> list[float]:
        """Every decode sample divided by the cost model's time for its batch: how much
        slower or faster than the line each step really was."""
        cost = self.cost_model()
        return [t / cost.decode_s(batch) for batch, samples in self.decode.items()
                for t in samples]


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def _check_prefills(prefills: Sequence[tuple[int, int]], room: int) -> None:
    """Each of `prefills` must be a pair (prompts, tokens per prompt) of whole numbers, the
    tokens within the model's context (`room`)."""
    for i, pair in enumerate(validate.items("prefills", prefills, (tuple, list))):
        if len(pair) != 2:
            raise ValueError(f"prefills[{i}] must be a pair (prompts, tokens per prompt), got "
                             f"{pair!r:.60}")
        validate.whole(f"prefills[{i}][0] (prompts)", pair[0], highest=MAX_BATCH_SIZE)
        validate.whole(f"prefills[{i}][1] (tokens per prompt)", pair[1], highest=room)


@validate.checked
def measure_step_times(model: TinyGPT, prefills: Sequence[tuple[int, int]],
                       batch_sizes: Sequence[int], *, context: int = 16,
                       repeats: int = 30) -> StepTimes:
    """Time the engine's prefill passes, each (prompts, tokens per prompt) of `prefills`,
    and its decode step at each batch size (every row `context` tokens in). Sizes are
    interleaved so that a slow spell of a busy machine falls on all of them alike. The
    inputs of serving_sim's cost model."""
    validate.whole("repeats", repeats, highest=MAX_REPEATS)
    room = model.config.block_size
    sizes = [validate.whole(f"batch_sizes[{i}]", batch, highest=MAX_BATCH_SIZE)
             for i, batch in enumerate(validate.items("batch_sizes", batch_sizes))]
    _check_prefills(prefills, room)
    validate.whole("context (tokens before each decode step)", context, highest=room - 1)
    slots = max([*sizes, *(n for n, _ in prefills)])
    engine = TinyGPTEngine(model, slots)
    engine.warm_up()
    engine.prefill(range(slots), [Request(s, 0.0, context, 1) for s in range(slots)])
    passes: dict[int, list[float]] = {n * tokens: [] for n, tokens in prefills}
    decodes: dict[int, list[float]] = {b: [] for b in batch_sizes}
    for _ in range(repeats):
        for n, tokens in prefills:
            requests = [Request(s, 0.0, tokens, 1) for s in range(n)]
            passes[n * tokens].append(_timed(lambda r=requests: engine.prefill(range(len(r)),
                                                                               r)))
        for batch in batch_sizes:
            rows = list(range(batch))
            engine.cache.lengths[rows] = context  # every row `context` tokens into its answer
            decodes[batch].append(_timed(lambda rows=rows: engine.decode(rows)))
    return StepTimes(passes, decodes)
