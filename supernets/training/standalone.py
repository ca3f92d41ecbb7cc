"""Training one fixed subnet from scratch (the baseline every weight-sharing schedule is compared to)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from supernets.arch import Arch
from supernets.space import SearchSpace
from supernets.supernet import Supernet
from supernets.training.base import Trainer
from supernets.training.config import TrainConfig


class StandaloneTrainer(Trainer):
    """Trains only ``arch`` inside the supernet, with labels and label smoothing."""

    schedule = "standalone"

    def __init__(
        self,
        *,
        supernet: Supernet,
        space: SearchSpace,
        config: TrainConfig,
        seed: int,
        arch: Arch | None = None,
    ) -> None:
        if arch is None:
            raise ValueError("the standalone schedule trains one subnet: pass arch= (e.g. space.largest())")
        space.validate(arch)
        super().__init__(supernet=supernet, space=space, config=config, seed=seed)
        self.arch = arch

    def extra_state(self) -> dict[str, Any]:
        return {"arch": self.arch.to_json()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("arch") != self.arch.to_json():
            raise ValueError(
                "checkpoint trained a different arch than this standalone trainer's; pass the same arch="
            )

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        loss = F.cross_entropy(self.forward(self.arch, x), y, label_smoothing=self.config.label_smoothing)
        loss.backward()
        return loss.item()
