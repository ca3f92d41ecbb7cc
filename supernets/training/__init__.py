"""Training schedules for supernets: sandwich, progressive shrinking, DεpS, standalone, balanced mixture;
the trainer hooks (anchor policies and subnet samplers, ``sampling.py``)."""

from __future__ import annotations

from typing import Any

from supernets.training.balanced_mixture import BalancedMixtureTrainer
from supernets.training.base import Trainer, TrainingStoppedError, soft_cross_entropy
from supernets.training.config import TrainConfig
from supernets.training.deps import DepsTrainer
from supernets.training.progressive import ProgressiveShrinkingTrainer
from supernets.training.sampling import (
    AnchorPolicy,
    Anchors,
    SubnetSampler,
    anchor_policies,
    make_anchors,
    make_sampler,
    register_anchors,
    register_sampler,
    samplers,
)
from supernets.training.sandwich import SandwichTrainer
from supernets.training.standalone import StandaloneTrainer

TrainingStopped = TrainingStoppedError

_TRAINERS: dict[str, type[Trainer]] = {
    "sandwich": SandwichTrainer,
    "progressive-shrinking": ProgressiveShrinkingTrainer,
    "deps": DepsTrainer,
    "standalone": StandaloneTrainer,
    "balanced-mixture": BalancedMixtureTrainer,
}
SCHEDULES: tuple[str, ...] = tuple(_TRAINERS)


def make_trainer(schedule: str, **kwargs: Any) -> Trainer:
    """The ``schedule`` trainer from ``supernet=, space=, config=, seed=`` (standalone also ``arch=``)."""
    try:
        cls = _TRAINERS[schedule]
    except KeyError:
        raise ValueError(
            f"unknown training.schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}"
        ) from None
    if "arch" in kwargs and cls is not StandaloneTrainer:
        kwargs.pop("arch")  # only standalone trains one fixed subnet
    return cls(**kwargs)


__all__ = [
    "SCHEDULES",
    "AnchorPolicy",
    "Anchors",
    "BalancedMixtureTrainer",
    "DepsTrainer",
    "ProgressiveShrinkingTrainer",
    "SandwichTrainer",
    "StandaloneTrainer",
    "SubnetSampler",
    "TrainConfig",
    "Trainer",
    "TrainingStopped",
    "TrainingStoppedError",
    "anchor_policies",
    "make_anchors",
    "make_sampler",
    "make_trainer",
    "register_anchors",
    "register_sampler",
    "samplers",
    "soft_cross_entropy",
]
