"""Once-for-All progressive shrinking: full net, then elastic kernel, depth, and expand ratio/width.

What OFA runs on ImageNet (``train_ofa_net.py`` of mit-han-lab/once-for-all and section 3.2 of
the paper), per stage: epochs, base LR per 64-image GPU batch (the full network's 2.6 at batch
2048 is 0.08125 per 64), warm-up epochs, subnets per step (``dynamic_batch_size``), and the
options free:

=================  ======  =========  =======  =======  ==================================
stage              epochs  base LR    warm-up  subnets  free (resolution 128-224 in all)
=================  ======  =========  =======  =======  ==================================
full network       180     0.08125    -        1        nothing (K7, E6, D4)
elastic kernel     120     3e-2       5        1        kernel {3, 5, 7}
depth, phase 1     25      2.5e-3     0        2        + depth {3, 4}
depth, phase 2     120     7.5e-3     5        2        + depth {2, 3, 4}
expand, phase 1    25      2.5e-3     0        4        + expand {4, 6}
expand, phase 2    120     7.5e-3     5        4        + expand {3, 4, 6}
=================  ======  =========  =======  =======  ==================================

Every shrinking step's loss is the label cross-entropy (label smoothing 0.1) plus
``kd_ratio`` (1.0) x the cross-entropy against the frozen full network's soft predictions.

What is scaled here: the total length (``TrainConfig.epochs``, measured in steps, so a phase
can end inside an epoch) and the base LR (``TrainConfig.lr`` plays the full network's 2.6).
What is kept: the relative lengths of the phases, full : kernel : depth : expand = 180 : 120 :
145 : 145 (``OFA_PHASE_FRACTIONS``, to pass as ``ps_phase_fractions``), their LRs relative
to the full network's (``OFA_PHASE_LR_SCALES``: 1, 0.369, 0.0923, 0.0923, phase 2's; phase 1
of depth and expand runs the first 25/145 of its phase at a third of it, as OFA's 2.5e-3 vs
7.5e-3), warm-ups of 5/120 of the kernel stage and of phase 2 of depth and expand, cosine
decay within each stage, 1/1/2/4 subnets per step, the options each phase frees ("phase 1"
limits a newly free dimension to its two largest options), channels sorted by importance when
the expand phase starts, and the losses. The width multiplier (not in OFA's MobileNetV3
space) is freed with the expand ratio. As in every schedule here, the last BatchNorm of each
residual block starts at zero, the full stage samples resolutions like OFA's, and the loss
weights are ``label_weight`` and ``distill_weight`` with ``label_smoothing``, as in sandwich
and DεpS. The teacher's forwards (no backward) are not counted in ``Trainer.passes``.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from supernets.arch import Arch
from supernets.space import Dimension, SearchSpace
from supernets.supernet import Supernet
from supernets.training.base import Trainer, cosine_lr, soft_cross_entropy
from supernets.training.config import TrainConfig

PHASES = ("full", "kernel", "depth", "expand")
# The dimensions each phase frees (read from every choice's ``Dimension``); all others stay largest.
FREE_DIMENSIONS: dict[str, tuple[Dimension, ...]] = {
    "full": (Dimension.RESOLUTION,),
    "kernel": (Dimension.RESOLUTION, Dimension.KERNEL),
    "depth": (Dimension.RESOLUTION, Dimension.KERNEL, Dimension.DEPTH),
    "expand": (Dimension.RESOLUTION, Dimension.KERNEL, Dimension.DEPTH, Dimension.EXPAND, Dimension.WIDTH),
}
# Dimensions a phase frees; its "phase 1" draws them from their two largest options only.
NEWLY_FREE: dict[str, tuple[Dimension, ...]] = {
    "depth": (Dimension.DEPTH,),
    "expand": (Dimension.EXPAND, Dimension.WIDTH),
}

_OFA_EPOCHS = (180, 120, 25 + 120, 25 + 120)
_OFA_FULL_LR = 2.6 / 32  # per 64-image batch, as the stage LRs below
OFA_PHASE_FRACTIONS: tuple[float, float, float, float] = tuple(  # type: ignore[assignment]
    e / sum(_OFA_EPOCHS) for e in _OFA_EPOCHS
)
OFA_PHASE_LR_SCALES: tuple[float, float, float, float] = (
    1.0,
    3e-2 / _OFA_FULL_LR,
    7.5e-3 / _OFA_FULL_LR,
    7.5e-3 / _OFA_FULL_LR,
)
OFA_SUBNETS_PER_STEP = {"full": 1, "kernel": 1, "depth": 2, "expand": 4}
OFA_PHASE1_SHARE = 25 / 145  # of the depth and expand phases
OFA_PHASE1_LR = 2.5e-3 / 7.5e-3  # relative to the phase's (phase 2's) LR
OFA_WARMUP_SHARE = 5 / 120  # of the kernel stage and of phase 2 of depth and expand


def ofa_config(**fields: Any) -> TrainConfig:
    """A ``TrainConfig`` with OFA's phase lengths and LR scales (other fields as given)."""
    return TrainConfig(
        ps_phase_fractions=OFA_PHASE_FRACTIONS, ps_phase_lr_scales=OFA_PHASE_LR_SCALES, **fields
    )


def phase_boundaries(fractions: tuple[float, ...], total: int) -> list[int]:
    """End (exclusive) of each phase in ``total`` units (steps); a phase may get none when there are few."""
    ends, acc = [], 0.0
    for f in fractions:
        acc += f
        ends.append(int(acc * total + 0.5))
    ends[-1] = total
    return ends


def sample_elastic(
    space: SearchSpace,
    rng: np.random.Generator,
    free: Collection[Dimension],
    *,
    limited: Collection[Dimension] = (),
) -> Arch:
    """A subnet whose choices of the ``free`` dimensions are drawn uniformly (those of ``limited``
    ones from their two largest options) and whose other choices are the largest subnet's.

    One draw per free choice, in ``typed_choices()`` order; the other choices draw nothing.
    """
    values = space.choices_of(space.largest())
    for choice in space.typed_choices():
        if choice.dimension not in free:
            continue
        allowed = sorted(choice.options)[-2:] if choice.dimension in limited else choice.options
        values[choice.key] = allowed[int(rng.integers(len(allowed)))]
    return space.arch_from_choices(values)


@dataclass(frozen=True)
class Stage:
    """Steps ``[start, end)`` of one phase or sub-phase, with its LR, warm-up and sampling."""

    name: str
    phase: str
    start: int
    end: int
    lr: float
    warmup: int
    subnets: int
    limited: tuple[Dimension, ...] = ()


def stages(config: TrainConfig, steps_per_epoch: int) -> list[Stage]:
    """The six stages of OFA's schedule over ``config.epochs * steps_per_epoch`` steps (some may be empty)."""
    ends = phase_boundaries(config.ps_phase_fractions, config.epochs * steps_per_epoch)
    out: list[Stage] = []
    start = 0
    for p, (phase, end) in enumerate(zip(PHASES, ends, strict=True)):
        lr = config.lr * config.ps_phase_lr_scales[p]
        n = OFA_SUBNETS_PER_STEP[phase]
        length = end - start
        if phase == "full":
            out.append(Stage("full", phase, start, end, lr, config.warmup_epochs * steps_per_epoch, n))
        elif phase == "kernel":
            out.append(Stage("kernel", phase, start, end, lr, int(OFA_WARMUP_SHARE * length + 0.5), n))
        else:
            mid = start + int(OFA_PHASE1_SHARE * length + 0.5)
            out.append(Stage(f"{phase}-1", phase, start, mid, lr * OFA_PHASE1_LR, 0, n, NEWLY_FREE[phase]))
            warmup = int(OFA_WARMUP_SHARE * (end - mid) + 0.5)
            out.append(Stage(f"{phase}-2", phase, mid, end, lr, warmup, n))
        start = end
    return out


class ProgressiveShrinkingTrainer(Trainer):
    """OFA's stages by step; after the full stage, subnets distil from a frozen copy of the full network."""

    schedule = "progressive-shrinking"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supernet.zero_init_residual_bn()
        self.teacher: Supernet | None = None
        self.channels_sorted = False

    @property
    def stages(self) -> list[Stage]:
        return stages(self.config, self._steps_per_epoch)

    def stage_at(self, step: int) -> Stage:
        """The stage that trains ``step`` (the last one after training ends)."""
        found = [s for s in self.stages if s.start <= step < s.end]
        if found:
            return found[0]
        if not self._steps_per_epoch:  # nothing trained yet: the schedule starts with the full network
            return Stage("full", "full", 0, 0, self.config.lr, 0, 1)
        return self.stages[-1]

    @property
    def phase(self) -> str:
        """The phase of the next step."""
        return self.stage_at(self._step).phase

    def phase_ends(self) -> dict[str, int]:
        """Global step after which each phase is complete."""
        ends = phase_boundaries(self.config.ps_phase_fractions, self.total_steps)
        return dict(zip(PHASES, ends, strict=True))

    def learning_rate(self, step: int) -> float:
        stage = self.stage_at(step)
        return cosine_lr(stage.lr, step - stage.start, stage.end - stage.start, stage.warmup)

    def _freeze_teacher(self, teacher: Supernet) -> Supernet:
        teacher.set_active(self.space.largest())
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def _sample(self, stage: Stage) -> Arch:
        return sample_elastic(self.space, self.rng, FREE_DIMENSIONS[stage.phase], limited=stage.limited)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        stage = self.stage_at(self._step)
        if stage.phase == "full":
            out = self.forward(self._sample(stage), x)
            loss = F.cross_entropy(out, y, label_smoothing=self.config.label_smoothing)
            loss.backward()
            return loss.item()
        if self.teacher is None:
            self.teacher = self._freeze_teacher(copy.deepcopy(self.supernet))
        if stage.phase == "expand" and not self.channels_sorted:
            self.supernet.sort_channels()
            self.reset_optimizer_state()
            self.channels_sorted = True
        teacher_probs = None
        if self.config.uses_distillation:
            with torch.no_grad():
                teacher_probs = F.softmax(self.teacher(x), dim=1)
        total = 0.0
        for _ in range(stage.subnets):
            out = self.forward(self._sample(stage), x)
            loss = F.cross_entropy(out, y, label_smoothing=self.config.label_smoothing)
            if teacher_probs is not None:
                loss = self.config.label_weight * loss + self.config.distill_weight * soft_cross_entropy(
                    out, teacher_probs
                )
            loss.backward()
            total += loss.item()
        return total / stage.subnets

    def epoch_metrics(self) -> dict[str, float]:
        return {
            "phase": float(PHASES.index(self.stage_at(self._step - 1).phase)),
            "passes": float(self.passes),
        }

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
