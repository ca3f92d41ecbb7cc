"""Inception depthwise convolution (InceptionNeXt) as the mixer of an inverted bottleneck.

A fraction of the channels goes through a small square depthwise kernel, the
same fraction through a ``1 x k`` band and another through a ``k x 1`` band;
the remaining channels pass through unchanged (strided when the block is).
The branch channels come first, so an elastic sub-configuration keeps the first
channels of every branch. ``kernel_size`` is the band length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kernels._registry import register_block
from kernels.base import BlockCost
from kernels.bottleneck import ElasticInvertedBottleneck, ElasticMixer
from kernels.conv_bn import ConvBNAct
from kernels.cost import conv_cost, elementwise_cost
from kernels.elastic_conv import ElasticConvBN

SQUARE_KERNEL = 3
BRANCH_RATIO = 0.125
# Up to this many input pixels (batch x height x width) the deploy form runs its three branches
# as one depthwise convolution whose k x k kernel holds all three (zeros elsewhere). A depthwise
# call costs ~50-70 us on this CPU however small its input, so at batch 1 on the small feature
# maps of our supernets one call beats three although it does ~10x the multiply-adds; at larger
# inputs the three small kernels win (measured: bench/reports/kernels.md).
MERGE_MAX_PIXELS = 2048


def branch_channels(channels: int, branch_ratio: float = BRANCH_RATIO) -> int:
    """Channels each of the three convolution branches gets."""
    return max(1, int(channels * branch_ratio))


def _check_band(kernel_size: int) -> None:
    if kernel_size < SQUARE_KERNEL or kernel_size % 2 == 0:
        raise ValueError(f"inception_dw: band kernel must be odd and >= {SQUARE_KERNEL}, got {kernel_size}")


class InceptionDWConv(nn.Module):
    """Static mixer: square, wide and tall depthwise branches on a few channels, identity on the rest."""

    def __init__(
        self,
        channels: int,
        *,
        band_kernel: int,
        stride: int = 1,
        branch_ratio: float = BRANCH_RATIO,
        act_layer: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        _check_band(band_kernel)
        if not 0 < branch_ratio <= 1 / 3:
            raise ValueError(f"InceptionDWConv: branch_ratio must be in (0, 1/3], got {branch_ratio}")
        gc = branch_channels(channels, branch_ratio)
        if 3 * gc > channels:
            raise ValueError(f"InceptionDWConv: {channels} channels cannot hold three branches of {gc}")
        self.split = [gc, gc, gc, channels - 3 * gc]
        self.stride = stride
        self.band_kernel = band_kernel
        self.merge_max_pixels = MERGE_MAX_PIXELS
        self.merged = False
        self.register_buffer("merged_weight", torch.empty(0))
        self.register_buffer("merged_bias", torch.empty(0))
        self.square = ConvBNAct(gc, gc, SQUARE_KERNEL, stride=stride, groups=gc, act_layer=None)
        self.wide = ConvBNAct(gc, gc, (1, band_kernel), stride=stride, groups=gc, act_layer=None)
        self.tall = ConvBNAct(gc, gc, (band_kernel, 1), stride=stride, groups=gc, act_layer=None)
        self.act: nn.Module = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged and x.shape[0] * x.shape[2] * x.shape[3] <= self.merge_max_pixels:
            branches = self.merged_weight.shape[0]
            y = F.conv2d(
                x[:, :branches],
                self.merged_weight,
                self.merged_bias,
                stride=self.stride,
                padding=self.band_kernel // 2,
                groups=branches,
            )
            rest = x[:, branches:]
            if self.stride > 1:
                rest = rest[:, :, :: self.stride, :: self.stride]
            return self.act(torch.cat((y, rest), dim=1))
        sq, wd, tl, rest = torch.split(x, self.split, dim=1)
        if self.stride > 1:
            rest = rest[:, :, :: self.stride, :: self.stride]
        return self.act(torch.cat((self.square(sq), self.wide(wd), self.tall(tl), rest), dim=1))

    def reparameterize(self) -> None:
        """Fold each branch's BatchNorm, then build the merged kernel of the small-input path."""
        for branch in (self.square, self.wide, self.tall):
            branch.reparameterize()
        self._merge_branches()

    @torch.no_grad()
    def _merge_branches(self) -> None:
        k, gc = self.band_kernel, self.split[0]
        ref = self.square.conv.weight
        weight = torch.zeros(3 * gc, 1, k, k, dtype=ref.dtype, device=ref.device)
        bias = torch.zeros(3 * gc, dtype=ref.dtype, device=ref.device)
        for i, branch in enumerate((self.square, self.wide, self.tall)):
            conv = branch.conv
            kh, kw = conv.weight.shape[-2:]
            top, left = (k - kh) // 2, (k - kw) // 2
            weight[i * gc : (i + 1) * gc, :, top : top + kh, left : left + kw] = conv.weight
            if conv.bias is not None:
                bias[i * gc : (i + 1) * gc] = conv.bias
        self.merged_weight = weight
        self.merged_bias = bias
        self.merged = True


class ElasticInceptionDWConv(ElasticMixer):
    """Elastic form of :class:`InceptionDWConv`; the band length is the elastic kernel size."""

    def __init__(self, max_channels: int, *, max_band: int, stride: int, act_layer: type[nn.Module]) -> None:
        super().__init__()
        _check_band(max_band)
        gc = branch_channels(max_channels)
        if 3 * gc > max_channels:
            raise ValueError(f"inception_dw: {max_channels} hidden channels cannot hold three branches")
        self.stride = stride
        self.act_layer = act_layer
        self.square = ElasticConvBN(gc, gc, SQUARE_KERNEL, stride=stride, depthwise=True)
        self.wide = ElasticConvBN(gc, gc, (1, max_band), stride=stride, depthwise=True)
        self.tall = ElasticConvBN(gc, gc, (max_band, 1), stride=stride, depthwise=True)
        self.act = act_layer()
        self.max_band = max_band

    def check_kernel(self, kernel_size: int) -> None:
        _check_band(kernel_size)
        if kernel_size > self.max_band:
            raise ValueError(f"inception_dw: band kernel {kernel_size} exceeds the largest {self.max_band}")

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        c = x.shape[1]
        gc = branch_channels(c)
        if 3 * gc > c:
            raise ValueError(f"inception_dw: {c} hidden channels cannot hold three branches of {gc}")
        sq, wd, tl, rest = torch.split(x, [gc, gc, gc, c - 3 * gc], dim=1)
        if self.stride > 1:
            rest = rest[:, :, :: self.stride, :: self.stride]
        out = (
            self.square(sq, gc, (SQUARE_KERNEL, SQUARE_KERNEL)),
            self.wide(wd, gc, (1, kernel_size)),
            self.tall(tl, gc, (kernel_size, 1)),
            rest,
        )
        return self.act(torch.cat(out, dim=1))

    def export(self, channels: int, kernel_size: int) -> InceptionDWConv:
        static = InceptionDWConv(
            channels, band_kernel=kernel_size, stride=self.stride, act_layer=self.act_layer
        )
        gc = branch_channels(channels)
        static.square = self.square.export(gc, gc, (SQUARE_KERNEL, SQUARE_KERNEL), act_layer=None)
        static.wide = self.wide.export(gc, gc, (1, kernel_size), act_layer=None)
        static.tall = self.tall.export(gc, gc, (kernel_size, 1), act_layer=None)
        return static.to(self.square.weight.device)

    def cost(
        self, channels: int, kernel_size: int, in_hw: tuple[int, int]
    ) -> tuple[BlockCost, tuple[int, int]]:
        return inception_dw_cost(channels, kernel_size, in_hw, self.stride)


def inception_dw_cost(
    channels: int, kernel_size: int, in_hw: tuple[int, int], stride: int
) -> tuple[BlockCost, tuple[int, int]]:
    """Deploy-form cost of an Inception depthwise mixer with its activation, and its output size.

    This is the work of the three-branch path. On small inputs the deploy form runs one merged
    k x k kernel instead (more multiply-adds in fewer calls); the latency predictor learns that
    from measured time, not from this count.
    """
    gc = branch_channels(channels)
    total = BlockCost(0, 0, 0)
    hw = in_hw
    for kernel in ((SQUARE_KERNEL, SQUARE_KERNEL), (1, kernel_size), (kernel_size, 1)):
        part, hw = conv_cost(
            in_channels=gc, out_channels=gc, kernel=kernel, in_hw=in_hw, stride=stride, groups=gc
        )
        total += part
    # The concatenation reads the branch outputs and the (strided) identity channels and writes all;
    # the activation reads and writes all.
    return total + elementwise_cost(channels, hw) + elementwise_cost(channels, hw), hw


@register_block("inception_dw")
class ElasticInceptionDW(ElasticInvertedBottleneck):
    """Inverted bottleneck whose depthwise mixer is an Inception depthwise convolution."""

    def build_mixer(self, max_hidden: int) -> ElasticMixer:
        return ElasticInceptionDWConv(
            max_hidden,
            max_band=self.max_config.kernel_size,
            stride=self.max_config.stride,
            act_layer=self.act_layer,
        )

    mixer_cost = staticmethod(inception_dw_cost)
