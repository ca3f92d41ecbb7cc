"""The supernet interface shared by families: activate a subnet, extract it as a static module."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from kernels.fuse import reparameterize_model
from supernets.arch import Arch


class Supernet(nn.Module, ABC):
    """A network whose subnets share weights; ``forward`` runs the active one on [0, 1] images."""

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
