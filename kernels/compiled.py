"""The fused path for a whole block: its deploy form, compiled.

On CPU this is ``torch.compile`` of the re-parameterised block (Inductor fuses
the elementwise work into the convolutions' loops). Where a CUDA device and
Triton are present, :func:`fuse_block` uses the Triton kernel of
:mod:`kernels.triton_bottleneck` for blocks it supports and falls back to
``torch.compile`` otherwise.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
from torch import nn

from kernels.fuse import reparameterize_model


def deploy(block: nn.Module) -> nn.Module:
    """An eval-mode copy of ``block`` with BatchNorm folded and branches merged; ``block`` is untouched."""
    return reparameterize_model(copy.deepcopy(block).eval())


def to_channels_last(module: nn.Module) -> nn.Module:
    """``module`` with its 4-d weights in channels_last (NHWC) memory order, converted in place."""
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def compile_deploy(
    block: nn.Module, *, channels_last: bool = False, mode: str | None = None, dynamic: bool = False
) -> nn.Module:
    """``torch.compile`` of the deploy form of ``block`` (compilation happens on the first call)."""
    deployed = deploy(block)
    if channels_last:
        deployed = to_channels_last(deployed)
    compiled = torch.compile(deployed, mode=mode, dynamic=dynamic, fullgraph=True)
    return cast(nn.Module, compiled)


def triton_available() -> bool:
    """True when a CUDA device and an importable Triton make the Triton block kernel usable."""
    if not torch.cuda.is_available():
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def fuse_block(block: nn.Module, **compile_kwargs: Any) -> nn.Module:
    """The fused deploy form: the Triton block kernel on a GPU where it supports the block, else compiled."""
    deployed = deploy(block)
    param = next(deployed.parameters(), None)
    if param is not None and param.device.type == "cuda" and triton_available():
        from kernels.triton_bottleneck import TritonBottleneck, supports

        if supports(deployed):
            return TritonBottleneck(deployed)
    return compile_deploy(block, **compile_kwargs)
