"""The trainer template every schedule fills in: one resumable epoch at a time (Ray-Tune-like)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernets.arch import Arch
from supernets.space import SearchSpace
from supernets.supernet import Supernet
from supernets.training.config import TrainConfig
from supernets.training.sampling import (
    AnchorPolicy,
    Sampler,
    SubnetSampler,
    make_anchors,
    make_sampler,
    samplers_of,
)

StepCallback = Callable[[int, int, float], None]


class TrainingStoppedError(Exception):
    """Raised inside ``train_epoch`` when ``should_stop`` says so; resume from the last checkpoint."""


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (in-place / teacher distillation)."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay conv and linear weights only: not BatchNorm, biases, or the kernel transforms (identity-init)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 and "kernel_transforms" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def cosine_lr(base: float, step: int, total: int, warmup: int = 0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to 0 at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


class Trainer(ABC):
    """Trains a supernet by one schedule; ``state_dict()`` after an epoch resumes bit-exactly.

    Randomness (data order, sampled subnets and resolutions) comes only from the trainer's
    own generators, which are part of the state.
    """

    schedule: str = ""
    # the kind of sampler the schedule draws with (``training.sampler`` must name one of that kind)
    sampler_kind: ClassVar[type[Sampler]] = SubnetSampler
    sampler: Sampler

    def __init__(self, *, supernet: Supernet, space: SearchSpace, config: TrainConfig, seed: int) -> None:
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        if config.channels_last:
            supernet.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.supernet = supernet
        self.space = space
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        # the hooks of sandwich-like schedules (training.anchors, training.sampler)
        self.anchor_policy: AnchorPolicy = make_anchors(config.anchors, space)
        self.sampler = self._make_sampler()
        self.optimizer = torch.optim.SGD(
            parameter_groups(supernet, config.weight_decay),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.momentum > 0,
        )
        self._epoch = 0
        self._step = 0
        self._steps_per_epoch = 0
        self._passes = 0  # subnet forwards in training mode (each is followed by a backward)
        self.sampler.bind(self)

    @classmethod
    def sampler_names(cls) -> tuple[str, ...]:
        """Samplers this schedule can draw with; the first is its default (``training.sampler: null``)."""
        return samplers_of(cls.sampler_kind)

    def _make_sampler(self) -> Sampler:
        usable = self.sampler_names()
        name = self.config.sampler or usable[0]
        if name not in usable:
            raise ValueError(
                f"training.sampler {name!r} cannot be used by schedule {self.schedule!r}; "
                f"use one of {list(usable)}"
            )
        return make_sampler(name, self.space)

    # -- what a schedule provides ------------------------------------------------------------------

    @abstractmethod
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Forward and backward passes for one batch (gradients accumulate); returns the main loss."""

    def on_epoch_start(self) -> None:
        """Hook before an epoch's first step (phase changes)."""
        return None

    def on_step_end(self) -> None:
        """Hook after each optimiser step (e.g. scoring the weights just updated)."""
        return None

    def learning_rate(self, step: int) -> float:
        warmup = self.config.warmup_epochs * self._steps_per_epoch
        return cosine_lr(self.config.lr, step, self.total_steps, warmup)

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` saved."""
        return None

    # -- the template ------------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return self._epoch

    @property
    def total_epochs(self) -> int:
        return self.config.epochs

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self._steps_per_epoch

    @property
    def global_step(self) -> int:
        return self._step

    @property
    def passes(self) -> int:
        """Subnet forward-backward passes so far: the compute unit schedules are compared at."""
        return self._passes

    def train_epoch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, float]:
        """One epoch over ``x`` (float [0, 1], N x C x H x W) and labels ``y`` in a seeded random order."""
        if x.ndim != 4 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"need N x C x H x W images with N labels, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if self._epoch >= self.total_epochs:
            raise ValueError(f"training is complete ({self._epoch} of {self.total_epochs} epochs)")
        n = x.shape[0]
        steps = math.ceil(n / self.config.batch_size)
        if self._steps_per_epoch and steps != self._steps_per_epoch:
            raise ValueError(
                f"every epoch must have the same data: {steps} steps now, {self._steps_per_epoch} before"
            )
        self._steps_per_epoch = steps
        device = next(self.supernet.parameters()).device
        self.supernet.train()
        self.on_epoch_start()
        order = torch.randperm(n, generator=self.torch_gen)
        total_loss, lr = 0.0, 0.0
        for i in range(steps):
            if should_stop is not None and should_stop():
                raise TrainingStoppedError(f"stopped at step {i} of epoch {self._epoch}")
            idx = order[i * self.config.batch_size : (i + 1) * self.config.batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            if self.config.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            lr = self.learning_rate(self._step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.train_step(xb, yb)
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.supernet.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.on_step_end()
            self._step += 1
            total_loss += loss * len(idx)
            if on_step is not None:
                on_step(i + 1, steps, loss)
        self._epoch += 1
        return {"loss": total_loss / n, "lr": lr, "epoch": float(self._epoch), **self.epoch_metrics()}

    def epoch_metrics(self) -> dict[str, float]:
        return {}

    # -- shared pieces ------------------------------------------------------------------------------

    def forward(self, arch: Arch, x: torch.Tensor) -> torch.Tensor:
        self.supernet.set_active(arch)
        if self.supernet.training:
            self._passes += 1
        return self.supernet(x)

    def reset_optimizer_state(self) -> None:
        """Drop momentum buffers (after channels are reordered they no longer match their weights)."""
        self.optimizer.state.clear()

    def state_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "model": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self._step, "steps_per_epoch": self._steps_per_epoch},
            "epoch": self._epoch,
            "passes": self._passes,
            "rng": {"numpy": self.rng.bit_generator.state, "torch": self.torch_gen.get_state()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("schedule") != self.schedule:
            raise ValueError(
                f"checkpoint was written by schedule {state.get('schedule')!r}, not {self.schedule!r}; "
                "resume with the schedule that wrote it"
            )
        self.supernet.load_state_dict(state["model"])
        self.load_extra_state(state["extra"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._step = int(state["scheduler"]["step"])
        self._steps_per_epoch = int(state["scheduler"]["steps_per_epoch"])
        self._epoch = int(state["epoch"])
        self._passes = int(state.get("passes", 0))  # checkpoints before the counter: 0
        self.rng.bit_generator.state = state["rng"]["numpy"]
        self.torch_gen.set_state(state["rng"]["torch"])
