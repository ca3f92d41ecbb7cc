"""Squeeze-and-excite: an elastic form that slices its channels and a static deploy form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def se_channels(channels: int, *, divisor: int = 4) -> int:
    """Width of the squeeze layer for ``channels`` input channels (a quarter, rounded up to ``divisor``)."""
    return max(divisor, (channels // 4 + divisor - 1) // divisor * divisor)


class SqueezeExcite(nn.Module):
    """Static ``x * hardsigmoid(expand(relu(reduce(avgpool(x)))))``, as in MobileNetV3."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1, bias=True)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.expand(F.relu(self.reduce(s)))
        return x * F.hardsigmoid(s)


class ElasticSqueezeExcite(nn.Module):
    """Squeeze-excite built for ``max_channels`` that runs on the first channels of its input."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.max_channels = max_channels
        self.reduce = nn.Conv2d(max_channels, se_channels(max_channels), 1, bias=True)
        self.expand = nn.Conv2d(se_channels(max_channels), max_channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        mid = se_channels(c)
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.conv2d(s, self.reduce.weight[:mid, :c], self.reduce.bias[:mid])  # type: ignore[index,union-attr]
        s = F.conv2d(F.relu(s), self.expand.weight[:c, :mid], self.expand.bias[:c])  # type: ignore[index,union-attr]
        return x * F.hardsigmoid(s)

    @torch.no_grad()
    def extract(self, channels: int) -> SqueezeExcite:
        """A static copy for ``channels`` active channels."""
        mid = se_channels(channels)
        se = SqueezeExcite(channels, mid).to(self.reduce.weight.device)
        se.reduce.weight.copy_(self.reduce.weight[:mid, :channels])
        se.reduce.bias.copy_(self.reduce.bias[:mid])  # type: ignore[index,union-attr]
        se.expand.weight.copy_(self.expand.weight[:channels, :mid])
        se.expand.bias.copy_(self.expand.bias[:channels])  # type: ignore[index,union-attr]
        return se

    @torch.no_grad()
    def permute_channels(self, order: torch.Tensor) -> None:
        """Reorder the block channels this SE sees (``order`` from the block's channel sort)."""
        self.reduce.weight.copy_(self.reduce.weight[:, order])
        self.expand.weight.copy_(self.expand.weight[order])
        self.expand.bias.copy_(self.expand.bias[order])  # type: ignore[index,union-attr]
        # Then put the most used squeeze channels first, so narrower blocks keep them.
        importance = self.expand.weight.abs().sum(dim=(0, 2, 3))
        mid_order = torch.argsort(importance, descending=True)
        self.reduce.weight.copy_(self.reduce.weight[mid_order])
        self.reduce.bias.copy_(self.reduce.bias[mid_order])  # type: ignore[index,union-attr]
        self.expand.weight.copy_(self.expand.weight[:, mid_order])
