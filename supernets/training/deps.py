"""DεpS: train the full model alone first, then ramp the subnets in (ε-shrinking), then sandwich."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from supernets.training.base import Trainer
from supernets.training.elastic import sample_elastic
from supernets.training.sandwich import SandwichTrainer


class DepsTrainer(SandwichTrainer):
    """Full model only for ``deps_full_fraction`` of the steps; then subnets' gradient scale ramps 0 -> 1.

    The ramp lasts ``deps_ramp_fraction`` of the steps; sandwich steps follow, distilling
    in place from the (partially trained) full model. Expanded channels are sorted by
    importance when shrinking starts.
    """

    schedule = "deps"

    def __init__(self, **kwargs: Any) -> None:
        Trainer.__init__(self, **kwargs)  # no zero-init: the full model trains alone first
        self.channels_sorted = False

    @property
    def full_steps(self) -> int:
        return int(self.config.deps_full_fraction * self.total_steps + 0.5)

    def subnet_weight(self) -> float:
        ramp = max(1, int(self.config.deps_ramp_fraction * self.total_steps + 0.5))
        return min(1.0, (self._step - self.full_steps + 1) / ramp)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        if self._step < self.full_steps:
            out = self.forward(sample_elastic(self.space, self.rng, ("resolution",)), x)
            loss = F.cross_entropy(out, y, label_smoothing=self.config.label_smoothing)
            loss.backward()
            return loss.item()
        if not self.channels_sorted:
            self.supernet.sort_channels()
            self.reset_optimizer_state()
            self.channels_sorted = True
        return self.sandwich_step(x, y, self.subnet_weight())

    def epoch_metrics(self) -> dict[str, float]:
        return {"subnet_weight": max(0.0, self.subnet_weight())}

    def extra_state(self) -> dict[str, Any]:
        return {"channels_sorted": self.channels_sorted}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.channels_sorted = bool(state["channels_sorted"])
