"""Quantization-aware supernets: fake-quantize every convolution of a stage at the stage's bit-width.

The blocks are wrapped, not edited: a forward pre-hook on each block of stage ``i`` enters a
torch-function mode that replaces the block's ``conv2d`` calls' input and weight by their LSQ
fake-quantized values at ``active_arch.stages[i].bits`` (see kernels/quant.py); float stages
(32 bits) run unchanged. Each convolution call site of a block (expand, depthwise, squeeze-excite,
project) has its own step sizes per bit-width, shared by every subnet (as in OQAT); the sliced
weights of a smaller subnet use the step sizes of the shared tensor.

BatchNorm is shared by all bit-widths (no per-bit BatchNorm): every evaluated (arch, bits) is
recalibrated anyway (supernets/bn.py), which fixes the statistics that shift with the bit-width,
the main reason for per-bit BatchNorm; the affine parameters stay shared, so extraction and the
state dict of the float net are unchanged. The stem and the head stay float, as is usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from kernels.quant import LsqQuantizer
from supernets.arch import Arch

_CONVS = {torch.conv2d, F.conv2d}


class _ConvCounter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in _CONVS:
            self.count += 1
        return func(*args, **(kwargs or {}))


class _FakeQuantConvs(TorchFunctionMode):
    """Replaces ``conv2d(x, w, ...)`` by ``conv2d(qa(x), qw(w), ...)``, call site by call site."""

    def __init__(self, sites: BlockQuantizers, bits: int) -> None:
        super().__init__()
        self.sites, self.bits, self.next = sites, bits, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _CONVS:
            if self.next >= len(self.sites.weights):
                raise RuntimeError(
                    f"block made more conv2d calls than the {len(self.sites.weights)} counted when "
                    "quantizers were attached"
                )
            i, self.next = self.next, self.next + 1
            x, w = args[0], args[1]
            args = (self.sites.acts[i](x, self.bits), self.sites.weights[i](w, self.bits), *args[2:])
        return func(*args, **kwargs)


class BlockQuantizers(nn.Module):
    """Weight and input quantizers for each ``conv2d`` call site of one block."""

    def __init__(self, sites: int, bits: tuple[int, ...]) -> None:
        super().__init__()
        self.weights = nn.ModuleList(LsqQuantizer(bits, weight=True) for _ in range(sites))
        self.acts = nn.ModuleList(LsqQuantizer(bits, weight=False) for _ in range(sites))


def _entering(mode: TorchFunctionMode) -> Callable[[nn.Module, Any], None]:
    def hook(_m: nn.Module, _args: Any) -> None:
        mode.__enter__()  # a pre-hook's return value would replace the block's input

    return hook


def _leaving(mode: TorchFunctionMode) -> Callable[[nn.Module, Any, Any], None]:
    def hook(_m: nn.Module, _args: Any, _out: Any) -> None:
        mode.__exit__(None, None, None)

    return hook


def attach_quantizers(
    supernet: nn.Module,
    stages: Sequence[Sequence[nn.Module]],
    bits: tuple[int, ...],
    active_arch: Callable[[], Arch],
    example: torch.Tensor,
) -> nn.ModuleList:
    """Hook fake quantization into ``stages``' blocks and register the step sizes as ``supernet.quant``.

    ``example`` (a batch for the largest subnet) is run once, in eval mode without gradients, to
    count each block's ``conv2d`` call sites. Returns the per-stage, per-block quantizers.
    """
    counters: list[list[_ConvCounter]] = [[_ConvCounter() for _ in row] for row in stages]
    handles = []
    for row, crow in zip(stages, counters, strict=True):
        for block, counter in zip(row, crow, strict=True):
            handles.append(block.register_forward_pre_hook(_entering(counter)))
            handles.append(block.register_forward_hook(_leaving(counter)))
    was_training = supernet.training
    try:
        supernet.eval()
        with torch.no_grad():
            supernet(example)
    finally:
        for h in handles:
            h.remove()
        supernet.train(was_training)
    per_stage = [[BlockQuantizers(max(c.count, 1), bits) for c in crow] for crow in counters]
    for i, (row, qrow) in enumerate(zip(stages, per_stage, strict=True)):
        for block, sites in zip(row, qrow, strict=True):
            _hook(block, sites, i, active_arch)
    quant = nn.ModuleList(nn.ModuleList(qrow) for qrow in per_stage)
    supernet.quant = quant
    return quant


def _hook(block: nn.Module, sites: BlockQuantizers, stage: int, active_arch: Callable[[], Arch]) -> None:
    modes: list[_FakeQuantConvs] = []

    def enter(_m: nn.Module, _args: Any) -> None:
        bits = active_arch().stages[stage].bits
        if bits is None or bits >= 32:
            return
        mode = _FakeQuantConvs(sites, bits)
        mode.__enter__()
        modes.append(mode)

    def leave(_m: nn.Module, _args: Any, _out: Any) -> None:
        if modes:
            modes.pop().__exit__(None, None, None)

    block.register_forward_pre_hook(enter)
    block.register_forward_hook(leave)


class FakeQuantBlock(nn.Module):
    """An extracted block of a quantized stage: its convolutions fake-quantized at ``bits``.

    Its BatchNorms stay unfolded when the model is deployed: the learned weight step sizes are
    those of the unfolded weights (folding turns them into per-channel steps, which only the
    real int8 conversion does).
    """

    def __init__(self, block: nn.Module, sites: BlockQuantizers, bits: int) -> None:
        super().__init__()
        self.block = block
        self.sites = sites
        self.bits = bits
        for module in block.modules():
            if callable(getattr(module, "reparameterize", None)):
                object.__setattr__(module, "reparameterize", _keep_batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _FakeQuantConvs(self.sites, self.bits):
            out: torch.Tensor = self.block(x)
        return out

    def reparameterize(self) -> None:
        """Nothing to fold (see the class docstring)."""


def _keep_batchnorm() -> None:
    return None


def wrap_extracted(
    blocks: Sequence[nn.Module], quant: nn.ModuleList, arch: Arch, stage_of: Sequence[tuple[int, int]]
) -> list[nn.Module]:
    """``blocks`` (extracted, at positions ``stage_of[k] = (stage, block)``) with quantized ones wrapped."""
    import copy

    out: list[nn.Module] = []
    for block, (i, j) in zip(blocks, stage_of, strict=True):
        bits = arch.stages[i].bits
        if bits is None or bits >= 32:
            out.append(block)
        else:
            out.append(FakeQuantBlock(block, copy.deepcopy(quant[i][j]), bits))  # type: ignore[index]
    return out
