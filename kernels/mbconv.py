"""Inverted-residual MBConv: elastic kernel, expand ratio and channels; static deploy form."""

from __future__ import annotations

import functools
import itertools
from typing import Any

import torch
from torch import nn

from kernels._registry import register_block
from kernels.base import BlockConfig, BlockCost, ElasticBlock
from kernels.bn import permute_bn
from kernels.bottleneck import bottleneck_cost, check_residual_config, hidden_channels, resolve_residual
from kernels.conv_bn import ConvBNAct
from kernels.cost import conv_cost, elementwise_cost
from kernels.elastic_conv import ElasticConvBN
from kernels.se import ElasticSqueezeExcite, SqueezeExcite, se_channels


class MBConv(nn.Module):
    """Static MBConv: 1x1 expand, depthwise kxk, optional squeeze-excite, 1x1 project, residual."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hidden_channels: int,
        kernel_size: int,
        stride: int = 1,
        use_se: bool = False,
        act_layer: type[nn.Module] = nn.ReLU,
        residual: bool | None = None,
    ) -> None:
        super().__init__()
        shape = BlockConfig(in_channels, out_channels, kernel_size, 1, stride)
        self.has_residual = resolve_residual(shape, residual, "MBConv")
        self.expand = ConvBNAct(in_channels, hidden_channels, 1, act_layer=act_layer)
        self.depthwise = ConvBNAct(
            hidden_channels,
            hidden_channels,
            kernel_size,
            stride=stride,
            groups=hidden_channels,
            act_layer=act_layer,
        )
        self.se: nn.Module = (
            SqueezeExcite(hidden_channels, se_channels(hidden_channels)) if use_se else nn.Identity()
        )
        self.project = ConvBNAct(hidden_channels, out_channels, 1, act_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.has_residual:
            out = out + x
        return out

    def reparameterize(self) -> None:
        """Fold every BatchNorm into its convolution (idempotent)."""
        self.expand.reparameterize()
        self.depthwise.reparameterize()
        self.project.reparameterize()


def _mbconv_mixer_cost(
    hid: int, k: int, hw: tuple[int, int], stride: int, *, use_se: bool
) -> tuple[BlockCost, tuple[int, int]]:
    """Depthwise ``k x k`` with its activation, then squeeze-excite if ``use_se``."""
    total, hw = conv_cost(
        in_channels=hid, out_channels=hid, kernel=(k, k), in_hw=hw, stride=stride, groups=hid
    )
    total += elementwise_cost(hid, hw)
    if use_se:
        mid = se_channels(hid)
        reduce, _ = conv_cost(in_channels=hid, out_channels=mid, kernel=(1, 1), in_hw=(1, 1))
        excite, _ = conv_cost(in_channels=mid, out_channels=hid, kernel=(1, 1), in_hw=(1, 1))
        # pooling reads the tensor; the gating multiply costs a MAC per element and reads + writes it
        gate = BlockCost(macs=hid * hw[0] * hw[1], params=0, bytes_moved=0)
        total += reduce + excite + gate + elementwise_cost(hid, hw, reads=2, writes=1)
    return total, hw


# Pure and called for every layer of every arch a search looks at: memoised.
@functools.lru_cache(maxsize=1 << 16)
def mbconv_cost(
    config: BlockConfig, *, input_hw: tuple[int, int], use_se: bool, residual: bool | None = None
) -> BlockCost:
    """Cost of one MBConv of ``config`` in its deploy form (BatchNorm folded into biases)."""
    if residual is None:
        residual = config.stride == 1 and config.in_channels == config.out_channels
    return bottleneck_cost(
        config,
        input_hw=input_hw,
        residual=residual,
        mixer_cost=functools.partial(_mbconv_mixer_cost, use_se=use_se),
    )


# Tensor names of checkpoints from before the block was built on ElasticConvBN -> their names now.
_LEGACY_NAMES = (
    ("expand_weight", "expand.weight"),
    ("expand_bn.", "expand.bn."),
    ("dw_weight", "depthwise.weight"),
    ("dw_bn.", "depthwise.bn."),
    ("project_weight", "project.weight"),
    ("project_bn.", "project.bn."),
)


@register_block("mbconv")
class ElasticMBConv(ElasticBlock):
    """MBConv built at its largest configuration; smaller ones take first channels and centre kernels.

    A smaller kernel is the centre crop of the next larger one passed through a learned
    ``k*k x k*k`` transform (identity at start), as in Once-for-All. ``residual=None`` adds
    the input when stride is 1 and the largest in/out channels are equal; ``False`` never does
    (e.g. a stage's first block, whose elastic width may differ from its input's).
    """

    def __init__(
        self,
        max_config: BlockConfig,
        *,
        kernel_sizes: tuple[int, ...] | None = None,
        use_se: bool = False,
        act_layer: type[nn.Module] = nn.ReLU,
        residual: bool | None = None,
    ) -> None:
        super().__init__(max_config)
        kmax = max_config.kernel_size
        sizes = (
            tuple(sorted(set(kernel_sizes), reverse=True))
            if kernel_sizes
            else tuple(range(kmax, 2, -2)) or (kmax,)
        )
        if sizes[0] != kmax or any(k % 2 == 0 or k < 1 for k in sizes):
            raise ValueError(
                f"ElasticMBConv: kernel_sizes {kernel_sizes} must be odd, positive and have the largest "
                f"equal to max_config.kernel_size={kmax}; e.g. kernel_sizes=(3, 5, {kmax})"
            )
        if max_config.expand_ratio <= 0 or max_config.stride not in (1, 2):
            raise ValueError(
                f"ElasticMBConv: expand_ratio must be > 0 and stride 1 or 2, got "
                f"{max_config.expand_ratio} and {max_config.stride}"
            )
        self.kernel_sizes = sizes
        self.use_se = use_se
        self.has_residual = resolve_residual(max_config, residual, "ElasticMBConv")
        cin, cout = max_config.in_channels, max_config.out_channels
        hid = hidden_channels(cin, max_config.expand_ratio)
        # Squeeze-excite is initialised first and the convolutions after it, in this order, as
        # before they were shared layers: a seed gives the same weights as it always did.
        se = ElasticSqueezeExcite(hid) if use_se else None
        self.expand = ElasticConvBN(cin, hid, 1)
        self.depthwise = ElasticConvBN(hid, hid, kmax, stride=max_config.stride, depthwise=True)
        self.kernel_transforms = nn.ParameterDict(
            {f"{a}to{b}": nn.Parameter(torch.eye(b * b)) for a, b in itertools.pairwise(sizes)}
        )
        self.se: ElasticSqueezeExcite | None = se
        self.project = ElasticConvBN(hid, cout, 1)
        self.act = act_layer()
        self.act_layer = act_layer

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        # Checkpoints written before the block used ElasticConvBN name its tensors the old way.
        for old, new in _LEGACY_NAMES:
            for key in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_config(self, config: BlockConfig) -> None:
        super().check_config(config)
        if config.kernel_size not in self.kernel_sizes:
            raise ValueError(f"ElasticMBConv: kernel {config.kernel_size} is not one of {self.kernel_sizes}")
        check_residual_config(config, self.has_residual, "ElasticMBConv")

    def active_kernel(self, kernel_size: int, channels: int) -> torch.Tensor:
        """The depthwise kernel for ``kernel_size`` on the first ``channels`` channels."""
        weight = self.depthwise.weight[:channels]
        for src, dst in itertools.pairwise(self.kernel_sizes):
            if src <= kernel_size:
                break
            start = (src - dst) // 2
            weight = weight[:, :, start : start + dst, start : start + dst]
            weight = (weight.reshape(channels, dst * dst) @ self.kernel_transforms[f"{src}to{dst}"]).reshape(
                channels, 1, dst, dst
            )
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.active
        hid = hidden_channels(c.in_channels, c.expand_ratio)
        k = (c.kernel_size, c.kernel_size)
        h = self.act(self.expand(x, hid, (1, 1)))
        h = self.act(self.depthwise(h, hid, k, weight=self.active_kernel(c.kernel_size, hid)))
        if self.se is not None:
            h = self.se(h)
        out = self.project(h, c.out_channels, (1, 1))
        if self.has_residual:
            out = out + x
        return out

    @torch.no_grad()
    def extract(self) -> MBConv:
        c = self.active
        hid = hidden_channels(c.in_channels, c.expand_ratio)
        block = MBConv(
            c.in_channels,
            c.out_channels,
            hidden_channels=hid,
            kernel_size=c.kernel_size,
            stride=c.stride,
            use_se=self.use_se,
            act_layer=self.act_layer,
            residual=self.has_residual,
        ).to(self.depthwise.weight.device)
        k = (c.kernel_size, c.kernel_size)
        self.expand.copy_into(block.expand, c.in_channels, hid, (1, 1))
        self.depthwise.copy_into(block.depthwise, hid, hid, k, weight=self.active_kernel(c.kernel_size, hid))
        self.project.copy_into(block.project, hid, c.out_channels, (1, 1))
        if self.se is not None:
            block.se = self.se.extract(hid)
        block.train(self.training)
        return block

    def cost(self, input_hw: tuple[int, int]) -> BlockCost:
        return mbconv_cost(self.active, input_hw=input_hw, use_se=self.use_se, residual=self.has_residual)

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Put expanded channels in order of importance (L1 norm of their projection weights).

        The full block computes the same function afterwards; narrower expand ratios then
        keep the most important channels.
        """
        project, expand, depthwise = self.project.weight, self.expand.weight, self.depthwise.weight
        order = torch.argsort(project.abs().sum(dim=(0, 2, 3)), descending=True)
        project.copy_(project[:, order])
        expand.copy_(expand[order])
        depthwise.copy_(depthwise[order])
        permute_bn(self.expand.bn, order)
        permute_bn(self.depthwise.bn, order)
        if self.se is not None:
            self.se.permute_channels(order)

    @torch.no_grad()
    def zero_init_last_bn(self) -> None:
        """Zero the projection BatchNorm's gamma so a residual block starts as the identity (BigNAS)."""
        if self.has_residual:
            self.project.bn.weight.zero_()
