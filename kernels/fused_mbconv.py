"""Fused MBConv (EfficientNetV2): a full ``k x k`` expand convolution then a ``1 x 1`` projection."""

from __future__ import annotations

import torch
from torch import nn

from kernels._registry import register_block
from kernels.base import BlockConfig, BlockCost, ElasticBlock
from kernels.bottleneck import (
    InvertedBottleneck,
    check_residual_config,
    hidden_channels,
    resolve_residual,
)
from kernels.conv_bn import ConvBNAct
from kernels.cost import conv_cost, elementwise_cost
from kernels.elastic_conv import ElasticConvBN


class FusedMBConv(InvertedBottleneck):
    """Static block: ``project(expand_kxk(x))`` plus ``x`` when shapes allow."""

    def __init__(self, *, expand: ConvBNAct, project: ConvBNAct, residual: bool) -> None:
        super().__init__(expand=expand, mixer=nn.Identity(), project=project, residual=residual)


@register_block("fused_mbconv")
class ElasticFusedMBConv(ElasticBlock):
    """Elastic fused MBConv: first channels, centre-cropped expand kernel, fewer hidden channels."""

    def __init__(
        self,
        max_config: BlockConfig,
        *,
        act_layer: type[nn.Module] = nn.ReLU,
        residual: bool | None = None,
    ) -> None:
        super().__init__(max_config)
        m = max_config
        if m.in_channels < 1 or m.out_channels < 1:
            raise ValueError(f"fused_mbconv: channels must be >= 1, got {m.in_channels}->{m.out_channels}")
        if m.expand_ratio < 1:
            raise ValueError(f"fused_mbconv: expand_ratio must be >= 1, got {m.expand_ratio}")
        if m.stride not in (1, 2):
            raise ValueError(f"fused_mbconv: stride must be 1 or 2, got {m.stride}")
        self._check_kernel(m.kernel_size)
        self.act_layer = act_layer
        self.has_residual = resolve_residual(m, residual, "fused_mbconv")
        max_hidden = hidden_channels(m.in_channels, m.expand_ratio)
        self.expand = ElasticConvBN(m.in_channels, max_hidden, m.kernel_size, stride=m.stride)
        self.expand_act = act_layer()
        self.project = ElasticConvBN(max_hidden, m.out_channels, 1)

    @staticmethod
    def _check_kernel(kernel_size: int) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"fused_mbconv: kernel size must be odd and >= 1, got {kernel_size}")

    def check_config(self, config: BlockConfig) -> None:
        super().check_config(config)
        self._check_kernel(config.kernel_size)
        if config.in_channels < 1 or config.out_channels < 1 or config.expand_ratio < 1:
            raise ValueError(f"fused_mbconv: need channels >= 1 and expand_ratio >= 1, got {config}")
        check_residual_config(config, self.has_residual, "fused_mbconv")

    def _residual(self, config: BlockConfig) -> bool:
        return self.has_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.active
        if x.shape[1] != a.in_channels:
            raise ValueError(
                f"fused_mbconv: input has {x.shape[1]} channels, active config expects {a.in_channels}"
            )
        hidden = hidden_channels(a.in_channels, a.expand_ratio)
        k = (a.kernel_size, a.kernel_size)
        y = self.project(self.expand_act(self.expand(x, hidden, k)), a.out_channels, (1, 1))
        return x + y if self._residual(a) else y

    def extract(self) -> FusedMBConv:
        a = self.active
        hidden = hidden_channels(a.in_channels, a.expand_ratio)
        k = (a.kernel_size, a.kernel_size)
        return FusedMBConv(
            expand=self.expand.export(a.in_channels, hidden, k, act_layer=self.act_layer),
            project=self.project.export(hidden, a.out_channels, (1, 1), act_layer=None),
            residual=self._residual(a),
        ).train(self.training)

    def cost(self, input_hw: tuple[int, int]) -> BlockCost:
        return self.config_cost(self.active, input_hw=input_hw, residual=self.has_residual)

    @staticmethod
    def config_cost(config: BlockConfig, *, input_hw: tuple[int, int], residual: bool) -> BlockCost:
        """Deploy-form cost of a fused MBConv at ``config``, without building one."""
        hidden = hidden_channels(config.in_channels, config.expand_ratio)
        k = (config.kernel_size, config.kernel_size)
        total, hw = conv_cost(
            in_channels=config.in_channels,
            out_channels=hidden,
            kernel=k,
            in_hw=input_hw,
            stride=config.stride,
        )
        total += elementwise_cost(hidden, hw)
        projected, hw = conv_cost(
            in_channels=hidden, out_channels=config.out_channels, kernel=(1, 1), in_hw=hw
        )
        total += projected
        if residual:
            total += elementwise_cost(config.out_channels, hw, reads=2)
        return total
