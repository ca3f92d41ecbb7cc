"""An inverted bottleneck with a pluggable depthwise token mixer, in static and elastic form.

``1x1 expand -> mixer (depthwise, carries the stride) -> 1x1 project (+ residual)``:
the shape of MBConv, so a block built on it can stand in for MBConv in a stage. A *fused*
bottleneck (EfficientNetV2's fused MBConv) has a ``k x k`` expand that carries the stride
and an identity mixer. The width rule, the residual rule and the cost of the whole block
live here once; MBConv, whose weights are laid out for Once-for-All's kernel transforms,
uses them too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from kernels.base import BlockConfig, BlockCost, ElasticBlock
from kernels.conv_bn import ConvBNAct
from kernels.cost import conv_cost, elementwise_cost
from kernels.elastic_conv import ElasticConvBN

MixerCost = Callable[[int, int, tuple[int, int], int], tuple[BlockCost, tuple[int, int]]]
"""``(channels, kernel_size, in_hw, stride) -> (deploy-form cost with activation, output size)``."""


def hidden_channels(in_channels: int, expand_ratio: float) -> int:
    """Width of the expanded (depthwise) part of a block."""
    return max(1, round(in_channels * expand_ratio))


def resolve_residual(max_config: BlockConfig, residual: bool | None, name: str) -> bool:
    """Whether a block has a shortcut: ``None`` means 'when stride is 1 and channels are equal'."""
    can_add = max_config.stride == 1 and max_config.in_channels == max_config.out_channels
    if residual and not can_add:
        raise ValueError(
            f"{name}: a residual needs stride 1 and equal channels, got {max_config}; "
            "pass residual=None to decide automatically"
        )
    return can_add if residual is None else residual


def check_residual_config(config: BlockConfig, has_residual: bool, name: str) -> None:
    """A block with a shortcut keeps equal active channels, so the shortcut still adds up."""
    if has_residual and config.in_channels != config.out_channels:
        raise ValueError(
            f"{name}: a residual block needs equal active channels, got "
            f"{config.in_channels}->{config.out_channels}; give both the same width"
        )


def bottleneck_cost(
    config: BlockConfig,
    *,
    input_hw: tuple[int, int],
    residual: bool,
    mixer_cost: MixerCost,
    fused: bool = False,
) -> BlockCost:
    """Deploy-form cost of ``expand -> act -> mixer -> project (+ residual)`` at ``config``.

    ``fused``: the expand is ``k x k`` and strided, and ``mixer_cost`` sees stride 1.
    """
    hidden = hidden_channels(config.in_channels, config.expand_ratio)
    k = config.kernel_size if fused else 1
    total, hw = conv_cost(
        in_channels=config.in_channels,
        out_channels=hidden,
        kernel=(k, k),
        in_hw=input_hw,
        stride=config.stride if fused else 1,
    )
    total += elementwise_cost(hidden, hw)
    mixed, hw = mixer_cost(hidden, config.kernel_size, hw, 1 if fused else config.stride)
    total += mixed
    projected, hw = conv_cost(in_channels=hidden, out_channels=config.out_channels, kernel=(1, 1), in_hw=hw)
    total += projected
    if residual:
        total += elementwise_cost(config.out_channels, hw, reads=2)
    return total


class InvertedBottleneck(nn.Module):
    """Static block: ``project(mixer(expand(x)))`` plus ``x`` when shapes allow."""

    def __init__(
        self, *, expand: ConvBNAct | None, mixer: nn.Module, project: ConvBNAct, residual: bool
    ) -> None:
        super().__init__()
        self.expand: nn.Module = expand if expand is not None else nn.Identity()
        self.mixer = mixer
        self.project = project
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.mixer(self.expand(x)))
        return x + y if self.residual else y

    def reparameterize(self) -> None:
        """Fold every BatchNorm and merge the mixer's branches; safe to call again."""
        for part in (self.expand, self.mixer, self.project):
            fn = getattr(part, "reparameterize", None)
            if callable(fn):
                fn()


class ElasticMixer(nn.Module, ABC):
    """The depthwise part of an elastic bottleneck; channels come from the input."""

    @abstractmethod
    def check_kernel(self, kernel_size: int) -> None:
        """Raise ``ValueError`` if ``kernel_size`` is not a valid active kernel."""

    @abstractmethod
    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor: ...

    @abstractmethod
    def export(self, channels: int, kernel_size: int) -> nn.Module:
        """A static mixer with copies of the active weights."""

    @abstractmethod
    def cost(
        self, channels: int, kernel_size: int, in_hw: tuple[int, int]
    ) -> tuple[BlockCost, tuple[int, int]]:
        """Deploy-form cost of the active mixer for one image and its output size."""


class ElasticInvertedBottleneck(ElasticBlock):
    """Elastic bottleneck; subclasses supply the mixer through :meth:`build_mixer`.

    ``fused = True``: the expand convolution has the block's (elastic) kernel and stride.
    """

    fused: ClassVar[bool] = False
    static_type: ClassVar[type[InvertedBottleneck]] = InvertedBottleneck

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
            raise ValueError(
                f"{type(self).__name__}: channels must be >= 1, got {m.in_channels}->{m.out_channels}"
            )
        if m.expand_ratio < 1:
            raise ValueError(f"{type(self).__name__}: expand_ratio must be >= 1, got {m.expand_ratio}")
        if m.stride not in (1, 2):
            raise ValueError(f"{type(self).__name__}: stride must be 1 or 2, got {m.stride}")
        self.act_layer = act_layer
        self.has_residual = resolve_residual(m, residual, type(self).__name__)
        max_hidden = hidden_channels(m.in_channels, m.expand_ratio)
        k, stride = (m.kernel_size, m.stride) if self.fused else (1, 1)
        self.expand = ElasticConvBN(m.in_channels, max_hidden, k, stride=stride)
        self.expand_act = act_layer()
        self.mixer = self.build_mixer(max_hidden)
        self.mixer.check_kernel(m.kernel_size)
        self.project = ElasticConvBN(max_hidden, m.out_channels, 1)

    @abstractmethod
    def build_mixer(self, max_hidden: int) -> ElasticMixer:
        """The elastic depthwise mixer at the largest configuration."""

    @staticmethod
    @abstractmethod
    def mixer_cost(
        channels: int, kernel_size: int, in_hw: tuple[int, int], stride: int
    ) -> tuple[BlockCost, tuple[int, int]]:
        """Deploy-form cost of the mixer (with its activation) for one image, and its output size."""

    def check_config(self, config: BlockConfig) -> None:
        super().check_config(config)
        if config.in_channels < 1 or config.out_channels < 1 or config.expand_ratio < 1:
            raise ValueError(f"{type(self).__name__}: need channels >= 1 and expand_ratio >= 1, got {config}")
        self.mixer.check_kernel(config.kernel_size)
        check_residual_config(config, self.has_residual, type(self).__name__)

    def _residual(self, config: BlockConfig) -> bool:
        return self.has_residual

    def _expand_kernel(self, config: BlockConfig) -> tuple[int, int]:
        k = config.kernel_size if self.fused else 1
        return (k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.active
        if x.shape[1] != a.in_channels:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[1]} channels, the active config {a.in_channels}"
            )
        hidden = hidden_channels(a.in_channels, a.expand_ratio)
        y = self.expand_act(self.expand(x, hidden, self._expand_kernel(a)))
        y = self.mixer(y, a.kernel_size)
        y = self.project(y, a.out_channels, (1, 1))
        return x + y if self._residual(a) else y

    def extract(self) -> InvertedBottleneck:
        a = self.active
        hidden = hidden_channels(a.in_channels, a.expand_ratio)
        return self.static_type(
            expand=self.expand.export(
                a.in_channels, hidden, self._expand_kernel(a), act_layer=self.act_layer
            ),
            mixer=self.mixer.export(hidden, a.kernel_size),
            project=self.project.export(hidden, a.out_channels, (1, 1), act_layer=None),
            residual=self._residual(a),
        ).train(self.training)

    def cost(self, input_hw: tuple[int, int]) -> BlockCost:
        return self.config_cost(self.active, input_hw=input_hw, residual=self.has_residual)

    @classmethod
    def config_cost(cls, config: BlockConfig, *, input_hw: tuple[int, int], residual: bool) -> BlockCost:
        """Deploy-form cost of this block type at ``config``, without building one."""
        return bottleneck_cost(
            config, input_hw=input_hw, residual=residual, mixer_cost=cls.mixer_cost, fused=cls.fused
        )
