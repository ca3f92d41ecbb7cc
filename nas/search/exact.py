"""An exact 'predictor' for metrics the search space computes itself: params, MACs, FLOPs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from kernels.base import BlockCost
from supernets.arch import Arch
from supernets.bits import size_bytes

_METRICS = ("params", "macs", "flops", "size_bytes")


class _CostedSpace(Protocol):
    def total_cost(self, arch: Arch) -> BlockCost: ...

    def layer_costs(self, arch: Arch) -> list[tuple[str, BlockCost]]: ...


class ExactCostPredictor:
    """Predicts ``params``, ``macs``, ``flops`` or ``size_bytes`` by counting them; ``fit`` learns nothing."""

    def __init__(self, *, space: _CostedSpace, metric: str) -> None:
        if metric not in _METRICS:
            raise ValueError(f"ExactCostPredictor counts {', '.join(_METRICS)}; got metric {metric!r}")
        self.space = space
        self.metric = metric

    def fit(self, archs: Sequence[Arch], y: Any) -> ExactCostPredictor:
        return self

    def value(self, arch: Arch) -> float:
        if self.metric == "size_bytes":
            return float(size_bytes(self.space, arch))
        cost = self.space.total_cost(arch)
        if self.metric == "params":
            return float(cost.params)
        return float(cost.macs if self.metric == "macs" else cost.flops)

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.value(a) for a in archs], dtype=float)
