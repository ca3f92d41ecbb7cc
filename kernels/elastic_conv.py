"""An elastic convolution + BatchNorm: sub-configurations slice the largest weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kernels.bn import copy_bn_slice, elastic_batch_norm
from kernels.conv_bn import ConvBNAct


class ElasticConvBN(nn.Module):
    """``bn(conv(x))`` whose active channels are the first ones and whose kernel is a centre crop.

    A depthwise layer (``depthwise=True``) has one filter per channel, so its
    input and output channels are the same active count.
    """

    def __init__(
        self,
        max_in: int,
        max_out: int,
        max_kernel: int | tuple[int, int],
        *,
        stride: int = 1,
        dilation: int = 1,
        depthwise: bool = False,
    ) -> None:
        super().__init__()
        if max_in < 1 or max_out < 1:
            raise ValueError(f"ElasticConvBN: channels must be >= 1, got {max_in}->{max_out}")
        if depthwise and max_in != max_out:
            raise ValueError(f"ElasticConvBN: depthwise needs equal channels, got {max_in}->{max_out}")
        ks = (max_kernel, max_kernel) if isinstance(max_kernel, int) else max_kernel
        if ks[0] % 2 == 0 or ks[1] % 2 == 0:
            raise ValueError(f"ElasticConvBN: kernel sizes must be odd so padding keeps the centre, got {ks}")
        self.max_kernel = ks
        self.stride = stride
        self.dilation = dilation
        self.depthwise = depthwise
        self.weight = nn.Parameter(torch.empty(max_out, 1 if depthwise else max_in, *ks))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(max_out)

    def active_weight(self, in_channels: int, out_channels: int, kernel: tuple[int, int]) -> torch.Tensor:
        """The slice of the largest weight that the given sub-configuration uses."""
        kh, kw = kernel
        if kh > self.max_kernel[0] or kw > self.max_kernel[1] or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"kernel {kernel} must be odd and at most {self.max_kernel}")
        top = (self.max_kernel[0] - kh) // 2
        left = (self.max_kernel[1] - kw) // 2
        w = self.weight[:out_channels, : 1 if self.depthwise else in_channels]
        return w[:, :, top : top + kh, left : left + kw]

    def forward(
        self,
        x: torch.Tensor,
        out_channels: int,
        kernel: tuple[int, int],
        *,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``bn(conv(x))`` at the active size. ``weight`` stands in for the centre crop, for a block
        that derives its smaller kernels otherwise (MBConv's learned kernel transforms)."""
        in_channels = x.shape[1]
        if self.depthwise and out_channels != in_channels:
            raise ValueError(f"depthwise conv: {in_channels} input channels but {out_channels} requested")
        w = self.active_weight(in_channels, out_channels, kernel) if weight is None else weight
        pad = (self.dilation * (kernel[0] - 1) // 2, self.dilation * (kernel[1] - 1) // 2)
        y = F.conv2d(
            x,
            w,
            stride=self.stride,
            padding=pad,
            dilation=self.dilation,
            groups=out_channels if self.depthwise else 1,
        )
        return elastic_batch_norm(self.bn, y)

    @torch.no_grad()
    def export(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        *,
        act_layer: type[nn.Module] | None,
    ) -> ConvBNAct:
        """A static :class:`ConvBNAct` holding copies of the active weights and statistics."""
        static = ConvBNAct(
            in_channels,
            out_channels,
            kernel,
            stride=self.stride,
            dilation=self.dilation,
            groups=out_channels if self.depthwise else 1,
            act_layer=act_layer,
        ).to(self.weight.device, self.weight.dtype)
        self.copy_into(static, in_channels, out_channels, kernel, with_count=False)
        return static

    @torch.no_grad()
    def copy_into(
        self,
        static: ConvBNAct,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        *,
        weight: torch.Tensor | None = None,
        with_count: bool = True,
    ) -> None:
        """Copy the active weight (or ``weight``, as in :meth:`forward`) and BatchNorm into ``static``."""
        static.conv.weight.copy_(
            self.active_weight(in_channels, out_channels, kernel) if weight is None else weight
        )
        copy_bn_slice(self.bn, static.bn, out_channels, with_count=with_count)
