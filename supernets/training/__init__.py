"""Training schedules for supernets: sandwich, progressive shrinking, DεpS, standalone, balanced mixture;
the trainer hooks (anchor policies and samplers, ``sampling.py``; the mixture's, ``mixture_sampler.py``)."""

from __future__ import annotations

from typing import Any

from supernets.training.balanced_mixture import BalancedMixtureTrainer
from supernets.training.base import Trainer, TrainingStoppedError, soft_cross_entropy
from supernets.training.config import TrainConfig
from supernets.training.deps import DepsTrainer
from supernets.training.mixture_sampler import MemberDraw, MixtureSampler
from supernets.training.progressive import ProgressiveShrinkingTrainer
from supernets.training.sampling import (
    AnchorPolicy,
    Anchors,
    Sampler,
    SubnetSampler,
    anchor_policies,
    make_anchors,
    make_sampler,
    register_anchors,
    register_sampler,
    samplers,
    samplers_of,
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


def _trainer_class(schedule: str) -> type[Trainer]:
    try:
        return _TRAINERS[schedule]
    except KeyError:
        raise ValueError(
            f"unknown training.schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}"
        ) from None


def schedule_samplers(schedule: str) -> tuple[str, ...]:
    """The ``training.sampler`` values ``schedule`` can draw with; the first is its default."""
    return _trainer_class(schedule).sampler_names()


def make_trainer(schedule: str, **kwargs: Any) -> Trainer:
    """The ``schedule`` trainer from ``supernet=, space=, config=, seed=`` (standalone also ``arch=``)."""
    cls = _trainer_class(schedule)
    if "arch" in kwargs and cls is not StandaloneTrainer:
        kwargs.pop("arch")  # only standalone trains one fixed subnet
    return cls(**kwargs)


__all__ = [
    "SCHEDULES",
    "AnchorPolicy",
    "Anchors",
    "BalancedMixtureTrainer",
    "DepsTrainer",
    "MemberDraw",
    "MixtureSampler",
    "ProgressiveShrinkingTrainer",
    "Sampler",
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
    "samplers_of",
    "schedule_samplers",
    "soft_cross_entropy",
]
