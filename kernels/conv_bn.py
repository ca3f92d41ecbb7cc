"""Convolution + BatchNorm + activation, the static unit most blocks are built from."""

from __future__ import annotations

import torch
from torch import nn

from kernels.fuse import fuse_conv_bn


class ConvBNAct(nn.Module):
    """``act(bn(conv(x)))``; ``reparameterize()`` folds the BatchNorm into the convolution."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        act_layer: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        padding = (dilation * (ks[0] - 1) // 2, dilation * (ks[1] - 1) // 2)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            ks,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn: nn.Module = nn.BatchNorm2d(out_channels)
        self.act: nn.Module = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def reparameterize(self) -> None:
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn(self.conv, self.bn)
            self.bn = nn.Identity()
