"""The supernet interface shared by families: activate a subnet, extract it as a static module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from kernels.fuse import reparameterize_model
from kernels.preprocess import Preprocess, resize_images
from supernets.arch import Arch


class Supernet(nn.Module, ABC):
    """A network whose subnets share weights; ``forward`` runs the active one on [0, 1] images."""

    mean: torch.Tensor
    std: torch.Tensor

    def init_normalisation(self, *, in_channels: int, mean: Sequence[float], std: Sequence[float]) -> None:
        """Keep the data's per-channel ``mean``/``std`` (checked against ``in_channels``) as buffers.

        Not persistent: the job's data sets them, so a checkpoint does not carry them.
        """
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(
                f"mean/std need one value per input channel ({in_channels}), got {len(mean)}/{len(std)}"
            )
        self.mean_std = (tuple(float(m) for m in mean), tuple(float(s) for s in std))
        self.register_buffer("mean", torch.tensor(self.mean_std[0]).reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.mean_std[1]).reshape(1, -1, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        """[0, 1] images normalised and resized to ``resolution``, as ``preprocess`` does when deployed."""
        return resize_images((x - self.mean) / self.std, resolution)

    def preprocess(self, resolution: int) -> Preprocess:
        """The input module an extracted subnet at ``resolution`` starts with."""
        return Preprocess(mean=self.mean_std[0], std=self.mean_std[1], resolution=resolution)

    @property
    @abstractmethod
    def active_arch(self) -> Arch: ...

    @abstractmethod
    def set_active(self, arch: Arch) -> None:
        """Select the subnet the next ``forward`` computes (``ValueError`` if not in the space)."""

    @abstractmethod
    def extract(self, arch: Arch) -> nn.Module:
        """A static plain module (preprocessing included) computing ``arch`` with copies of its weights."""

    def sort_channels(self) -> None:
        """Reorder channels of every block that supports it by importance, keeping the full net's function."""
        for module in self.modules():
            fn = getattr(module, "sort_channels", None)
            if callable(fn) and module is not self:
                fn()

    def zero_init_residual_bn(self) -> None:
        """Zero the last BatchNorm gamma of every residual block, so each starts as the identity."""
        for module in self.modules():
            fn = getattr(module, "zero_init_last_bn", None)
            if callable(fn):
                fn()

    @staticmethod
    def deploy(model: nn.Module) -> nn.Module:
        """Fold BatchNorm (and merge branches) of an extracted model in place for deployment."""
        return reparameterize_model(model.eval())
