"""Pruning: removing the weights of a trained model that matter least.

Torch layer. Each function returns a pruned copy of the course's TinyGPT (the original is
never changed):

- `prune_unstructured` zeroes the smallest-magnitude weights wherever they are: the
  matrices keep their shape, and a dense matmul multiplies the zeros just the same, so
  nothing gets faster.
- `prune_mlp_neurons` removes whole MLP neurons (a row of the first matrix and the
  matching column of the second, ranked by `neuron_importance`), which leaves a genuinely
  smaller dense model. Its new layers take the old layers' dtype and device, so a float64
  or GPU model stays one.

Only the transformer blocks' linear layers are pruned; the tied token embedding / output
layer is kept whole. Notebook 06 shows `neuron_importance` and `prune_mlp_neurons` whole.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from course_lib import validate
from course_lib.model import TinyGPT
from course_lib.quantize import block_linears, check_model, is_quantized


def _check_prunable(model, amount) -> None:
    check_model(model)
    # Below 1: removing every weight would leave no model.
    validate.positive("amount (the fraction of weights to remove)", amount, allow_zero=True,
                      below=1)
    if is_quantized(model):
        raise ValueError("model is quantized: prune the float32 model first, then quantize")


@validate.checked
@torch.no_grad()
def prune_unstructured(model: TinyGPT, amount: float) -> TinyGPT:
    """A copy of `model` with the smallest-magnitude `amount` (0 to <1) of each block
    linear layer's weights set to zero.

    The matrices keep their shape and their bytes, and a dense matmul multiplies the
    zeros as it would any number: the model is no faster and no smaller, only sparser.
    Only sparse kernels or hardware that skip zeros (for example 2:4 structured sparsity
    on recent GPUs) turn sparsity into speed.
    """
    _check_prunable(model, amount)
    pruned = copy.deepcopy(model)
    for parent, name in block_linears(pruned):
        weight = getattr(parent, name).weight
        n_zero = round(amount * weight.numel())
        if n_zero:
            smallest = torch.topk(weight.abs().flatten(), n_zero, largest=False).indices
            weight.view(-1)[smallest] = 0.0
    return pruned.eval()


@validate.checked
def neuron_importance(mlp: nn.Module) -> torch.Tensor:
    """How much each MLP hidden neuron can matter: |weights in| x |weights out| (L2 norms).

    A neuron reads the input through its row of c_fc and writes to the output through
    its column of c_proj; if either is small, removing the neuron changes little.
    """
    return mlp.c_fc.weight.norm(dim=1) * mlp.c_proj.weight.norm(dim=0)


@validate.checked
@torch.no_grad()
def prune_mlp_neurons(model: TinyGPT, amount: float) -> TinyGPT:
    """A copy of `model` with the least important `amount` (0 to <1) of each layer's MLP
    neurons removed: a smaller dense model, with fewer FLOPs per token.

    Each MLP's c_fc loses the rows and c_proj the columns of the removed neurons, so the
    matrices really shrink (4 n_embd hidden neurons become (1 - amount) x 4 n_embd). The
    new layers are made with the old ones' dtype and on their device.
    """
    _check_prunable(model, amount)
    pruned = copy.deepcopy(model)
    for block in pruned.blocks:
        mlp = block.mlp
        hidden = mlp.c_fc.out_features
        keep_count = max(1, round((1 - amount) * hidden))
        keep = torch.topk(neuron_importance(mlp), keep_count).indices.sort().values
        like = {"dtype": mlp.c_fc.weight.dtype, "device": mlp.c_fc.weight.device}
        c_fc = nn.Linear(mlp.c_fc.in_features, keep_count, bias=mlp.c_fc.bias is not None,
                         **like)
        c_fc.weight.copy_(mlp.c_fc.weight[keep])
        c_proj = nn.Linear(keep_count, mlp.c_proj.out_features,
                           bias=mlp.c_proj.bias is not None, **like)
        c_proj.weight.copy_(mlp.c_proj.weight[:, keep])
        if c_fc.bias is not None:
            c_fc.bias.copy_(mlp.c_fc.bias[keep])
        if c_proj.bias is not None:
            c_proj.bias.copy_(mlp.c_proj.bias)
        mlp.c_fc, mlp.c_proj = c_fc, c_proj
    return pruned.eval()
