"""Fused MBConv (EfficientNetV2): a full ``k x k`` expand convolution then a ``1 x 1`` projection.

The inverted bottleneck of :mod:`kernels.bottleneck` with ``fused = True`` and an identity mixer.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels._registry import register_block
from kernels.base import ZERO_COST, BlockCost
from kernels.bottleneck import ElasticInvertedBottleneck, ElasticMixer, InvertedBottleneck
from kernels.conv_bn import ConvBNAct


class FusedMBConv(InvertedBottleneck):
    """Static block: ``project(expand_kxk(x))`` plus ``x`` when shapes allow."""

    def __init__(
        self, *, expand: ConvBNAct | None, project: ConvBNAct, residual: bool, mixer: nn.Module | None = None
    ) -> None:
        super().__init__(
            expand=expand,
            mixer=mixer if mixer is not None else nn.Identity(),
            project=project,
            residual=residual,
        )


class NoMixer(ElasticMixer):
    """The mixer of a fused bottleneck: none; it only checks that the kernel is odd."""

    def check_kernel(self, kernel_size: int) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"fused_mbconv: kernel size must be odd and >= 1, got {kernel_size}")

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        return x

    def export(self, channels: int, kernel_size: int) -> nn.Module:
        return nn.Identity()

    def cost(
        self, channels: int, kernel_size: int, in_hw: tuple[int, int]
    ) -> tuple[BlockCost, tuple[int, int]]:
        return ZERO_COST, in_hw


def _no_mixer_cost(
    channels: int, kernel_size: int, in_hw: tuple[int, int], stride: int
) -> tuple[BlockCost, tuple[int, int]]:
    return ZERO_COST, in_hw


@register_block("fused_mbconv")
class ElasticFusedMBConv(ElasticInvertedBottleneck):
    """Elastic fused MBConv: first channels, centre-cropped expand kernel, fewer hidden channels."""

    fused = True
    static_type = FusedMBConv

    def build_mixer(self, max_hidden: int) -> ElasticMixer:
        return NoMixer()

    mixer_cost = staticmethod(_no_mixer_cost)
