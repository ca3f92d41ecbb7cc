"""Once-for-All progressive shrinking: full net, then elastic kernel, depth, expand ratio and width."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from supernets.supernet import Supernet
from supernets.training.base import Trainer, cosine_lr, soft_cross_entropy
from supernets.training.elastic import sample_elastic

PHASES = ("full", "kernel", "depth", "expand")
FREE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "full": ("resolution",),
    "kernel": ("resolution", "ks"),
    "depth": ("resolution", "ks", "depth"),
    "expand": ("resolution", "ks", "depth", "e", "width"),
}


def phase_boundaries(fractions: tuple[float, ...], epochs: int) -> list[int]:
    """End epoch (exclusive) of each phase; a phase may get no epochs when there are few."""
    ends, acc = [], 0.0
    for f in fractions:
        acc += f
        ends.append(int(acc * epochs + 0.5))
    ends[-1] = epochs
    return ends


class ProgressiveShrinkingTrainer(Trainer):
    """Phases with their own epochs and LR; after the full phase, subnets distil from a frozen copy of it.

    Each step of a shrinking phase trains ``max(1, num_random_subnets)`` subnets sampled with
    that phase's dimensions free. Expanded channels are sorted by importance when the
    expand phase starts.
    """

    schedule = "progressive-shrinking"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.teacher: Supernet | None = None
        self.channels_sorted = False

    def phase_index(self, epoch: int) -> int:
        ends = phase_boundaries(self.config.ps_phase_fractions, self.config.epochs)
        return (
            next(i for i, end in enumerate(ends) if epoch < end)
            if epoch < self.config.epochs
            else len(ends) - 1
        )

    @property
    def phase(self) -> str:
        return PHASES[self.phase_index(self._epoch)]

    def learning_rate(self, step: int) -> float:
        spe = self._steps_per_epoch
        p = self.phase_index(step // spe)
        ends = phase_boundaries(self.config.ps_phase_fractions, self.config.epochs)
        start = (ends[p - 1] if p else 0) * spe
        warmup = self.config.warmup_epochs * spe if p == 0 else 0
        base = self.config.lr * self.config.ps_phase_lr_scales[p]
        return cosine_lr(base, step - start, ends[p] * spe - start, warmup)

    def on_epoch_start(self) -> None:
        phase = self.phase
        if phase != "full" and self.teacher is None:
            self.teacher = self._freeze_teacher(copy.deepcopy(self.supernet))
        if phase == "expand" and not self.channels_sorted:
            self.supernet.sort_channels()
            self.reset_optimizer_state()
            self.channels_sorted = True

    def _freeze_teacher(self, teacher: Supernet) -> Supernet:
        teacher.set_active(self.space.largest())
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        phase = self.phase
        free = FREE_DIMENSIONS[phase]
        if phase == "full":
            out = self.forward(sample_elastic(self.space, self.rng, free), x)
            loss = F.cross_entropy(out, y, label_smoothing=self.config.label_smoothing)
            loss.backward()
            return loss.item()
        teacher_probs = None
        if self.config.uses_distillation and self.teacher is not None:
            with torch.no_grad():
                teacher_probs = F.softmax(self.teacher(x), dim=1)
        n = max(1, self.config.num_random_subnets)
        total = 0.0
        for _ in range(n):
            out = self.forward(sample_elastic(self.space, self.rng, free), x)
            loss = F.cross_entropy(out, y, label_smoothing=self.config.label_smoothing)
            if teacher_probs is not None:
                loss = loss + self.config.distill_weight * soft_cross_entropy(out, teacher_probs)
            loss.backward()
            total += loss.item()
        return total / n

    def epoch_metrics(self) -> dict[str, float]:
        return {"phase": float(self.phase_index(self._epoch - 1))}

    def extra_state(self) -> dict[str, Any]:
        return {
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "channels_sorted": self.channels_sorted,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.channels_sorted = bool(state["channels_sorted"])
        self.teacher = None
        if state["teacher"] is not None:
            teacher = copy.deepcopy(self.supernet)
            teacher.load_state_dict(state["teacher"])
            self.teacher = self._freeze_teacher(teacher)
