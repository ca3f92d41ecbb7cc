"""Hyper-parameters of supernet training, shared by every schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from supernets.training.sampling import anchor_policies, samplers


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How a supernet is trained; fields a schedule does not use are ignored by it.

    ``ps_*`` fields shape progressive shrinking: the share of epochs and the LR scale of
    its phases full -> kernel -> depth -> expand/width. ``label_weight`` adds the labels'
    cross-entropy to the in-place distillation loss of every subnet but the largest (0 is
    BigNAS's pure distillation; with 1, a 3-epoch supernet's smallest subnet scored 5 points
    higher here). ``deps_*`` fields shape DεpS: the
    share of steps that train only the full model, then the share over which the
    subnets' gradient scale ramps from 0 to 1. ``channels_last`` trains in NHWC layout,
    2-3x faster for depthwise convolutions on CPU. ``anchors`` and ``sampler`` name the
    trainer hooks (``supernets/training/sampling.py``): the subnets every step of sandwich and
    DεpS trains and distils from, and how a step's subnets are drawn (sandwich, DεpS: its
    ``num_random_subnets`` random subnets, ``uniform`` by default; the balanced mixture: the
    configuration and member, ``balanced-mixture``); ``sampler=None`` takes the schedule's default.
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-5
    warmup_epochs: int = 0
    label_smoothing: float = 0.1
    num_random_subnets: int = 2
    distill: bool = True
    distill_weight: float = 1.0
    label_weight: float = 1.0
    grad_clip: float | None = None
    ps_phase_fractions: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    ps_phase_lr_scales: tuple[float, float, float, float] = (1.0, 0.3, 0.3, 0.3)
    deps_full_fraction: float = 0.5
    deps_ramp_fraction: float = 0.1
    channels_last: bool = True
    anchors: str = "sandwich"
    sampler: str | None = None  # None: the schedule's default (``Trainer.sampler_names()[0]``)

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")

        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(
            self.warmup_epochs == 0 or 0 < self.warmup_epochs < self.epochs,
            f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})",
        )
        need(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        need(self.num_random_subnets >= 0, f"num_random_subnets must be >= 0, got {self.num_random_subnets}")
        need(self.distill_weight >= 0, f"distill_weight must be >= 0, got {self.distill_weight}")
        need(self.label_weight >= 0, f"label_weight must be >= 0, got {self.label_weight}")
        need(
            self.grad_clip is None or self.grad_clip > 0,
            f"grad_clip must be > 0 or None, got {self.grad_clip}",
        )
        need(
            len(self.ps_phase_fractions) == 4
            and all(f >= 0 for f in self.ps_phase_fractions)
            and math.isclose(sum(self.ps_phase_fractions), 1.0, abs_tol=1e-6),
            f"ps_phase_fractions must be 4 non-negative shares summing to 1, got {self.ps_phase_fractions}",
        )
        need(
            len(self.ps_phase_lr_scales) == 4 and all(s > 0 for s in self.ps_phase_lr_scales),
            f"ps_phase_lr_scales must be 4 positive factors, got {self.ps_phase_lr_scales}",
        )
        need(
            0 <= self.deps_full_fraction < 1,
            f"deps_full_fraction must be in [0, 1), got {self.deps_full_fraction}",
        )
        need(
            0 < self.deps_ramp_fraction <= 1,
            f"deps_ramp_fraction must be in (0, 1], got {self.deps_ramp_fraction}",
        )
        need(
            self.anchors in anchor_policies(),
            f"anchors must be one of {list(anchor_policies())}, got {self.anchors!r}",
        )
        need(
            self.sampler is None or self.sampler in samplers(),
            f"sampler must be one of {list(samplers())} or None (the schedule's default), "
            f"got {self.sampler!r}",
        )
        # JSON gives lists; keep the dataclass hashable and comparable
        object.__setattr__(self, "ps_phase_fractions", tuple(float(f) for f in self.ps_phase_fractions))
        object.__setattr__(self, "ps_phase_lr_scales", tuple(float(s) for s in self.ps_phase_lr_scales))

    @property
    def uses_distillation(self) -> bool:
        return self.distill and self.distill_weight > 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
