"""Input preprocessing baked into every exported model: normalise, then resize to its resolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def resize_images(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize (no antialiasing, half-pixel centres) to ``resolution`` square (no-op if equal)."""
    if x.shape[-2] == resolution and x.shape[-1] == resolution:
        return x
    return F.interpolate(
        x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=False
    )


class Preprocess(nn.Module):
    """Float images in [0, 1] (N, C, H, W) at the dataset's size -> normalised, resized to ``resolution``."""

    def __init__(self, *, mean: Sequence[float], std: Sequence[float], resolution: int) -> None:
        super().__init__()
        if len(mean) != len(std) or len(mean) == 0:
            raise ValueError(
                f"Preprocess: mean and std need one value per image channel, got {len(mean)} and {len(std)}"
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"Preprocess: std must be positive, got {list(std)}")
        if resolution < 1:
            raise ValueError(f"Preprocess: resolution must be a positive pixel count, got {resolution}")
        self.resolution = int(resolution)
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(s) for s in std]).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_images((x - self.mean) / self.std, self.resolution)  # type: ignore[operator]
