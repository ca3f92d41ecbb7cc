"""The contract every block in the library follows.

A block has an *elastic* form, built at its largest configuration, whose
weights a smaller configuration slices (``set_active``), and a *static* form
(``extract``) holding copies of the sliced weights for one configuration.
A static form that has BatchNorm or parallel branches folds them with
``reparameterize()`` for deployment; the call is idempotent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class BlockConfig:
    """One configuration of a block: the elastic choices plus fixed geometry."""

    in_channels: int
    out_channels: int
    kernel_size: int = 3
    expand_ratio: float = 1.0
    stride: int = 1


@dataclass(frozen=True)
class BlockCost:
    """Work a block does for one image: multiply-accumulates, weights, and bytes moved.

    ``bytes_moved`` counts float32 reads and writes of weights and of every
    activation a straightforward (unfused) implementation materialises.
    """

    macs: int
    params: int
    bytes_moved: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def __add__(self, other: BlockCost) -> BlockCost:
        return BlockCost(
            self.macs + other.macs, self.params + other.params, self.bytes_moved + other.bytes_moved
        )


ZERO_COST = BlockCost(0, 0, 0)


class ElasticBlock(nn.Module, ABC):
    """A block whose sub-configurations share the weights of its largest one."""

    block_name: str = ""

    def __init__(self, max_config: BlockConfig) -> None:
        super().__init__()
        self.max_config = max_config
        self._active = max_config

    @property
    def active(self) -> BlockConfig:
        return self._active

    def set_active(self, config: BlockConfig) -> None:
        """Select the sub-configuration the next ``forward`` computes."""
        self.check_config(config)
        self._active = config

    def check_config(self, config: BlockConfig) -> None:
        m = self.max_config
        if config.in_channels > m.in_channels or config.out_channels > m.out_channels:
            raise ValueError(
                f"{type(self).__name__}: channels {config.in_channels}->{config.out_channels} "
                f"exceed the block's largest {m.in_channels}->{m.out_channels}"
            )
        if config.kernel_size > m.kernel_size or config.expand_ratio > m.expand_ratio:
            raise ValueError(
                f"{type(self).__name__}: kernel {config.kernel_size}/expand {config.expand_ratio} "
                f"exceed the block's largest {m.kernel_size}/{m.expand_ratio}"
            )
        if config.stride != m.stride:
            raise ValueError(f"{type(self).__name__}: stride is fixed at {m.stride}")

    @abstractmethod
    def extract(self) -> nn.Module:
        """A static module for the active configuration with copies of its weights."""

    @abstractmethod
    def cost(self, input_hw: tuple[int, int]) -> BlockCost:
        """Cost of the active configuration for one image of ``input_hw``."""
