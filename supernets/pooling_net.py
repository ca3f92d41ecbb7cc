"""Networks of the ``pooling-mixture-resnet`` family: basic residual blocks, one member, the mixture."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from kernels.conv_bn import ConvBNAct
from supernets.arch import Arch
from supernets.supernet import Supernet

if TYPE_CHECKING:
    from supernets.pooling_space import PoolingSpace


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, a 1x1 projection shortcut when the width changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, act_layer=None)
        self.shortcut: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else ConvBNAct(in_channels, out_channels, 1, act_layer=None)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))

    def zero_init_last_bn(self) -> None:
        bn = self.conv2.bn
        if isinstance(bn, nn.BatchNorm2d):
            nn.init.zeros_(bn.weight)


def pool_layer(op: str) -> nn.Module:
    if op == "max":
        return nn.MaxPool2d(2)
    if op == "avg":
        return nn.AvgPool2d(2)
    raise ValueError(f"pool op {op!r} has weights; it lives in the member network")


class PoolingResNet(nn.Module):
    """One member: a stem, the blocks, a stride-2 conv in front of every block (if ``conv`` is an op)."""

    def __init__(self, space: PoolingSpace) -> None:
        super().__init__()
        self.space = space
        self.stem = ConvBNAct(space.in_channels, space.widths[0], 3)
        self.blocks = nn.ModuleList(
            BasicBlock(space.in_width_of(j), space.width_of(j)) for j in range(space.blocks)
        )
        self.pool_convs = nn.ModuleDict(
            {
                str(j): ConvBNAct(space.in_width_of(j), space.in_width_of(j), 2, stride=2)
                for j in range(space.blocks)
                if "conv" in space.pool_ops
            }
        )
        self.classifier = nn.Linear(space.widths[-1], space.num_classes)

    def body(self, arch: Arch) -> list[nn.Module]:
        """The modules ``arch`` runs, in order (shared pools are fresh parameter-free layers)."""
        layout = self.space.pool_layout(arch)
        layers: list[nn.Module] = [self.stem]
        for j, block in enumerate(self.blocks):
            if j in layout:
                layers.append(self.pool_convs[str(j)] if layout[j] == "conv" else pool_layer(layout[j]))
            layers.append(block)
        return layers

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        for layer in self.body(arch):
            x = layer(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class PoolingMixtureSupernet(Supernet):
    """``mixture.supernets`` member networks; each configuration runs in the member it is assigned to.

    ``mixture_weights`` (configurations x members) is the balanced-mixture trainer's accuracy
    estimate W and ``assignment`` each configuration's member (argmax of the balanced p(m | a));
    both are buffers, so checkpoints carry them. Before training the assignment is round-robin.
    """

    mixture_weights: torch.Tensor
    assignment: torch.Tensor

    def __init__(self, *, space: PoolingSpace, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.init_normalisation(in_channels=space.in_channels, mean=mean, std=std)
        self.space = space
        self.members = nn.ModuleList(PoolingResNet(space) for _ in range(space.num_supernets))
        n = space.size()
        self.register_buffer("mixture_weights", torch.zeros(n, space.num_supernets, dtype=torch.float64))
        self.register_buffer("assignment", torch.arange(n) % space.num_supernets)
        self._arch = space.default_arch()
        self._member = 0
        self.set_active(self._arch)

    @property
    def num_members(self) -> int:
        return len(self.members)

    @property
    def active_arch(self) -> Arch:
        return self._arch

    @property
    def active_member(self) -> int:
        return self._member

    def member_of(self, arch: Arch) -> int:
        """The member ``arch`` is assigned to."""
        return int(self.assignment[self.space.index(arch)])

    def set_active(self, arch: Arch, member: int | None = None) -> None:
        """Run ``arch`` next, in ``member`` (default: the member it is assigned to)."""
        self.space.validate(arch)
        if member is not None and not 0 <= member < self.num_members:
            raise ValueError(f"member {member} is outside 0..{self.num_members - 1}")
        self._arch = arch
        self._member = self.member_of(arch) if member is None else member

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x, self._arch.resolution)
        member: PoolingResNet = self.members[self._member]  # type: ignore[assignment]
        return member(x, self._arch)

    @torch.no_grad()
    def extract(self, arch: Arch, member: int | None = None) -> nn.Module:
        self.space.validate(arch)
        m = self.member_of(arch) if member is None else member
        net: PoolingResNet = self.members[m]  # type: ignore[assignment]
        layers: list[nn.Module] = [self.preprocess(arch.resolution)]
        layers += [copy.deepcopy(layer) for layer in net.body(arch)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), copy.deepcopy(net.classifier)]
        model = nn.Sequential(*layers).to(self.assignment.device)
        return model.train(self.training)
