"""Counting the work of convolutions and the bytes an unfused deploy form moves.

Costs describe the *deploy* form (BatchNorm folded into a conv bias, branches
merged) for one image in float32. Bytes count, for each operator a
straightforward implementation runs: a convolution reads its input and weights
and writes its output; a non-identity activation reads and writes its tensor; a
residual add reads two tensors and writes one; a concatenation writes its output
and reads its parts.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels.base import BlockCost

FLOAT_BYTES = 4


def conv_out_hw(
    in_hw: tuple[int, int], kernel: tuple[int, int], stride: int, dilation: int = 1
) -> tuple[int, int]:
    """Output size of a 'same'-padded convolution (padding = dilation * (k - 1) // 2)."""
    out = []
    for size, k in zip(in_hw, kernel, strict=True):
        pad = dilation * (k - 1) // 2
        out.append((size + 2 * pad - dilation * (k - 1) - 1) // stride + 1)
    return out[0], out[1]


def conv_cost(
    *,
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    in_hw: tuple[int, int],
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    bias: bool = True,
) -> tuple[BlockCost, tuple[int, int]]:
    """Cost of one convolution (with its folded bias) and its output size."""
    oh, ow = conv_out_hw(in_hw, kernel, stride, dilation)
    weights = out_channels * (in_channels // groups) * kernel[0] * kernel[1]
    params = weights + (out_channels if bias else 0)
    macs = oh * ow * weights
    elements = in_channels * in_hw[0] * in_hw[1] + out_channels * oh * ow + params
    return BlockCost(macs=macs, params=params, bytes_moved=FLOAT_BYTES * elements), (oh, ow)


def elementwise_cost(channels: int, hw: tuple[int, int], *, reads: int = 1, writes: int = 1) -> BlockCost:
    """Bytes of an elementwise operator (activation, residual add, concatenation) on a C x H x W tensor."""
    return BlockCost(macs=0, params=0, bytes_moved=FLOAT_BYTES * channels * hw[0] * hw[1] * (reads + writes))


def measure_macs(module: nn.Module, input_chw: tuple[int, int, int]) -> int:
    """MACs of every ``nn.Conv2d`` and ``nn.Linear`` in ``module`` for one image, counted by hooks.

    Mixers with a merged small-input path (``merge_max_pixels``, see ``InceptionDWConv``) are
    counted on their branch path, the work the cost model describes.
    """
    total = 0
    merging = [m for m in module.modules() if hasattr(m, "merge_max_pixels")]
    limits = [getattr(m, "merge_max_pixels") for m in merging]  # noqa: B009
    for m in merging:
        setattr(m, "merge_max_pixels", 0)  # noqa: B010

    def hook(layer: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            w = layer.weight
            total += output[0].numel() * w.shape[1] * w.shape[2] * w.shape[3]
        elif isinstance(layer, nn.Linear):
            total += output[0].numel() * layer.in_features

    handles = [
        m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            module(torch.zeros(1, *input_chw))
    finally:
        for h in handles:
            h.remove()
        for m, limit in zip(merging, limits, strict=True):
            setattr(m, "merge_max_pixels", limit)  # noqa: B010
    return total
