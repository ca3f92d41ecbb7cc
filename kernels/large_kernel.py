"""Large-kernel depthwise convolution re-parameterised from parallel small and dilated branches.

During training a ``K x K`` depthwise conv runs beside small and dilated
depthwise branches (UniRepLKNet's dilated re-param block), each with its own
BatchNorm; for deployment every branch is folded and merged into one ``K x K``
kernel. The branch set is fixed by the largest kernel. An elastic
sub-configuration with kernel ``k`` centre-crops the large kernel and keeps
only the branches whose dilated extent fits in ``k``.
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

# (kernel, dilation) of the branches beside a large kernel, after UniRepLKNet.
_BRANCHES: dict[int, tuple[tuple[int, int], ...]] = {
    3: ((1, 1),),
    5: ((3, 1), (3, 2)),
    7: ((5, 1), (3, 2), (3, 3)),
    9: ((5, 1), (5, 2), (3, 3), (3, 4)),
    11: ((5, 1), (5, 2), (3, 3), (3, 4), (3, 5)),
    13: ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5)),
}


def default_branches(kernel_size: int) -> tuple[tuple[int, int], ...]:
    """The (kernel, dilation) branches that run beside a ``kernel_size`` large kernel."""
    if kernel_size not in _BRANCHES:
        raise ValueError(
            f"large_kernel_dw: kernel size must be one of {sorted(_BRANCHES)}, got {kernel_size}"
        )
    return _BRANCHES[kernel_size]


def extent(kernel: int, dilation: int) -> int:
    """Side of the dense kernel a dilated kernel covers."""
    return dilation * (kernel - 1) + 1


def _dense_kernel(weight: torch.Tensor, dilation: int, size: int) -> torch.Tensor:
    """A dilated depthwise weight written as a dense ``size x size`` kernel, centred."""
    k = weight.shape[-1]
    e = extent(k, dilation)
    dense = weight.new_zeros(weight.shape[0], weight.shape[1], e, e)
    dense[:, :, ::dilation, ::dilation] = weight
    pad = (size - e) // 2
    return F.pad(dense, (pad, pad, pad, pad))


class RepLargeKernelDW(nn.Module):
    """Static mixer: ``act(large(x) + sum(branches(x)))``; ``reparameterize()`` leaves one conv."""

    def __init__(
        self,
        channels: int,
        *,
        kernel_size: int,
        stride: int = 1,
        branches: tuple[tuple[int, int], ...] | None = None,
        act_layer: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        branches = default_branches(kernel_size) if branches is None else branches
        for k, d in branches:
            if k % 2 == 0 or extent(k, d) > kernel_size:
                raise ValueError(
                    f"RepLargeKernelDW: branch kernel {k} dilation {d} must be odd and fit in {kernel_size}"
                )
        self.kernel_size = kernel_size
        self.large = ConvBNAct(
            channels, channels, kernel_size, stride=stride, groups=channels, act_layer=None
        )
        self.branches = nn.ModuleList(
            ConvBNAct(channels, channels, k, stride=stride, dilation=d, groups=channels, act_layer=None)
            for k, d in branches
        )
        self.act: nn.Module = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.large(x)
        for branch in self.branches:
            y = y + branch(x)
        return self.act(y)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold every BatchNorm and add each branch's dilated kernel into the large one."""
        self.large.reparameterize()
        conv = self.large.conv
        assert conv.bias is not None
        for branch in self.branches:
            assert isinstance(branch, ConvBNAct)
            branch.reparameterize()
            bconv = branch.conv
            assert bconv.bias is not None
            conv.weight.add_(_dense_kernel(bconv.weight, bconv.dilation[0], self.kernel_size))
            conv.bias.add_(bconv.bias)
        self.branches = nn.ModuleList()


class ElasticRepLargeKernelDW(ElasticMixer):
    """Elastic form of :class:`RepLargeKernelDW`; see the module docstring for what a smaller kernel keeps."""

    def __init__(
        self, max_channels: int, *, max_kernel: int, stride: int, act_layer: type[nn.Module]
    ) -> None:
        super().__init__()
        self.branch_spec = default_branches(max_kernel)
        self.max_kernel = max_kernel
        self.stride = stride
        self.act_layer = act_layer
        self.large = ElasticConvBN(max_channels, max_channels, max_kernel, stride=stride, depthwise=True)
        self.branches = nn.ModuleList(
            ElasticConvBN(max_channels, max_channels, k, stride=stride, dilation=d, depthwise=True)
            for k, d in self.branch_spec
        )
        self.act = act_layer()

    def check_kernel(self, kernel_size: int) -> None:
        if kernel_size % 2 == 0 or not 3 <= kernel_size <= self.max_kernel:
            raise ValueError(
                f"large_kernel_dw: kernel size must be odd, >= 3 and <= {self.max_kernel}, got {kernel_size}"
            )

    def _active(self, kernel_size: int) -> list[tuple[int, ElasticConvBN]]:
        return [
            (i, b)
            for i, ((k, d), b) in enumerate(zip(self.branch_spec, self.branches, strict=True))
            if extent(k, d) <= kernel_size and isinstance(b, ElasticConvBN)
        ]

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        c = x.shape[1]
        y = self.large(x, c, (kernel_size, kernel_size))
        for i, branch in self._active(kernel_size):
            k = self.branch_spec[i][0]
            y = y + branch(x, c, (k, k))
        return self.act(y)

    def export(self, channels: int, kernel_size: int) -> RepLargeKernelDW:
        active = self._active(kernel_size)
        spec = tuple(self.branch_spec[i] for i, _ in active)
        static = RepLargeKernelDW(
            channels, kernel_size=kernel_size, stride=self.stride, branches=spec, act_layer=self.act_layer
        )
        static.large = self.large.export(channels, channels, (kernel_size, kernel_size), act_layer=None)
        static.branches = nn.ModuleList(
            b.export(channels, channels, (spec_k, spec_k), act_layer=None)
            for (_, b), (spec_k, _) in zip(active, spec, strict=True)
        )
        return static

    def cost(
        self, channels: int, kernel_size: int, in_hw: tuple[int, int]
    ) -> tuple[BlockCost, tuple[int, int]]:
        return large_kernel_dw_cost(channels, kernel_size, in_hw, self.stride)


def large_kernel_dw_cost(
    channels: int, kernel_size: int, in_hw: tuple[int, int], stride: int
) -> tuple[BlockCost, tuple[int, int]]:
    """Deploy-form cost (one merged depthwise conv plus the activation) and the output size."""
    total, hw = conv_cost(
        in_channels=channels,
        out_channels=channels,
        kernel=(kernel_size, kernel_size),
        in_hw=in_hw,
        stride=stride,
        groups=channels,
    )
    return total + elementwise_cost(channels, hw), hw


@register_block("large_kernel_dw")
class ElasticLargeKernelDW(ElasticInvertedBottleneck):
    """Inverted bottleneck whose depthwise mixer is a re-parameterised large kernel (sizes 3..13, odd)."""

    def build_mixer(self, max_hidden: int) -> ElasticMixer:
        return ElasticRepLargeKernelDW(
            max_hidden,
            max_kernel=self.max_config.kernel_size,
            stride=self.max_config.stride,
            act_layer=self.act_layer,
        )

    mixer_cost = staticmethod(large_kernel_dw_cost)
