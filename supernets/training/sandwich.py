"""BigNAS sandwich rule: largest + smallest + random subnets per step, in-place distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from supernets.arch import Arch
from supernets.space import SearchSpace
from supernets.supernet import Supernet
from supernets.training.base import Trainer, soft_cross_entropy
from supernets.training.config import TrainConfig
from supernets.training.sampling import SubnetSampler


class SandwichTrainer(Trainer):
    """Each step sums the gradients of the largest, the smallest and ``num_random_subnets`` random subnets.

    Which subnets anchor a step and how the random ones are drawn are the trainer's hooks
    (``training.anchors``, default largest + smallest; ``training.sampler``, default uniform).
    The largest (the teacher anchor) learns from the labels (with label smoothing); the others learn from its
    detached predictions. Weight decay is applied once per step by the optimiser, i.e. as a
    regulariser of the largest subnet only, whose weights include every other's. The last
    BatchNorm of every residual block starts at zero so deep subnets start near shallow ones.
    """

    schedule = "sandwich"
    sampler: SubnetSampler

    def __init__(self, *, supernet: Supernet, space: SearchSpace, config: TrainConfig, seed: int) -> None:
        super().__init__(supernet=supernet, space=space, config=config, seed=seed)
        supernet.zero_init_residual_bn()

    def subnet_weight(self) -> float:
        """Scale of the subnets' losses (DεpS ramps it; sandwich keeps it at 1)."""
        return 1.0

    def sandwich_step(self, x: torch.Tensor, y: torch.Tensor, weight: float) -> float:
        anchors = self.anchor_policy.anchors()
        logits = self.forward(anchors.teacher, x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.config.label_smoothing)
        loss.backward()
        if weight <= 0:
            return loss.item()
        teacher = F.softmax(logits.detach(), dim=1)
        archs: list[Arch] = list(anchors.students)
        archs += self.sampler.draw(self.rng, self.config.num_random_subnets)
        for arch in archs:
            out = self.forward(arch, x)
            if self.config.uses_distillation:
                child = self.config.distill_weight * soft_cross_entropy(out, teacher)
                if self.config.label_weight > 0:
                    child = child + self.config.label_weight * F.cross_entropy(
                        out, y, label_smoothing=self.config.label_smoothing
                    )
            else:
                child = F.cross_entropy(out, y)
            (weight * child).backward()
        return loss.item()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return self.sandwich_step(x, y, self.subnet_weight())
