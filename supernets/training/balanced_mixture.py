"""Balanced mixture of supernets (Javan, Toews, Pedersoli 2023) for the ``pooling-mixture-resnet`` family.

Each step draws a configuration ``a`` and a member ``m`` with the trainer's sampler (the
``balanced-mixture`` :class:`~supernets.training.mixture_sampler.MixtureSampler`: ``a`` uniformly,
``m`` from the balanced p(m | a)), takes an SGD step on member ``m`` running ``a``, then scores
``m`` on one validation minibatch (batch statistics, no gradient) and moves ``W[a, m]`` towards
that accuracy by an exponential moving average.
The data given to ``train_epoch`` is split once, by the seed, into a training and a validation half.

Every member has its own momentum, weight decay and learning-rate schedule: the optimiser holds
one pair of parameter groups per member, and SGD leaves parameters without a gradient untouched,
so a member's state moves only on its own steps; its cosine schedule runs over its own step count
(``total steps / members``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernets.arch import Arch
from supernets.pooling_net import PoolingMixtureSupernet
from supernets.pooling_space import PoolingSpace
from supernets.space import SearchSpace
from supernets.supernet import Supernet
from supernets.training.base import Trainer, cosine_lr, parameter_groups
from supernets.training.config import TrainConfig
from supernets.training.mixture_sampler import MemberDraw, MixtureSampler
from supernets.training.sampling import Sampler

EMA_DECAY = 0.9


@contextmanager
def batch_statistics_only(module: nn.Module) -> Iterator[None]:
    """BatchNorm normalises by the batch's statistics without folding them into the running ones
    (the validation minibatch must not leak into the model)."""
    saved = []
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            saved.append(
                (
                    bn,
                    bn.momentum,
                    bn.num_batches_tracked.clone() if bn.num_batches_tracked is not None else None,
                )
            )
            bn.momentum = 0.0
    try:
        yield
    finally:
        for bn, momentum, tracked in saved:
            bn.momentum = momentum
            if tracked is not None and bn.num_batches_tracked is not None:
                bn.num_batches_tracked.copy_(tracked)


class BalancedMixtureTrainer(Trainer):
    """Trains the members of a :class:`PoolingMixtureSupernet` by the balanced-mixture rule."""

    schedule = "balanced-mixture"
    sampler_kind: ClassVar[type[Sampler]] = MixtureSampler
    sampler: MixtureSampler

    def __init__(self, *, supernet: Supernet, space: SearchSpace, config: TrainConfig, seed: int) -> None:
        if not isinstance(supernet, PoolingMixtureSupernet) or not isinstance(space, PoolingSpace):
            raise ValueError(
                "training.schedule 'balanced-mixture' trains only the pooling-mixture-resnet family; "
                f"got {type(space).__name__}"
            )
        super().__init__(supernet=supernet, space=space, config=config, seed=seed)
        self.net = supernet
        self.pspace = space
        self.archs = self.sampler.archs
        groups: list[dict[str, Any]] = []
        self.member_groups: list[list[int]] = []
        for member in supernet.members:
            start = len(groups)
            groups += parameter_groups(member, config.weight_decay)
            self.member_groups.append(list(range(start, len(groups))))
        self.optimizer = torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0
        )
        self.member_steps = [0] * supernet.num_members
        self.seen = np.zeros((len(self.archs), supernet.num_members), dtype=np.int64)
        self._val: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pending: MemberDraw | None = None

    # -- the split ------------------------------------------------------------------------------------

    def split(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The training and validation halves (fixed by the seed; the same every epoch)."""
        order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(self.seed + 7919))
        half = x.shape[0] // 2
        if half < 1:
            raise ValueError("balanced-mixture needs at least 2 training images (half of them validate)")
        tr, va = order[half:], order[:half]
        return x[tr], y[tr], x[va], y[va]

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> dict[str, float]:
        xt, yt, xv, yv = self.split(x, y)
        self._val = (xv, yv)
        return super().train_epoch(xt, yt, **kwargs)

    # -- the rule -------------------------------------------------------------------------------------

    def member_lr(self, member: int) -> float:
        share = math.ceil(self.total_steps / self.net.num_members)
        warmup = self.config.warmup_epochs * self._steps_per_epoch // self.net.num_members
        return cosine_lr(self.config.lr, self.member_steps[member], share, warmup)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        draw = self.sampler.draw(self.rng)
        lr = self.member_lr(draw.member)
        for g in self.member_groups[draw.member]:
            self.optimizer.param_groups[g]["lr"] = lr
        self.net.set_active(draw.arch, member=draw.member)
        loss = F.cross_entropy(self.net(x), y, label_smoothing=self.config.label_smoothing)
        loss.backward()
        self._pending = draw
        return loss.item()

    def on_step_end(self) -> None:
        assert self._pending is not None and self._val is not None
        a, m = self._pending.index, self._pending.member
        self.member_steps[m] += 1
        xv, yv = self._val
        idx = torch.randint(
            xv.shape[0], (min(self.config.batch_size, xv.shape[0]),), generator=self.torch_gen
        )
        device = self.net.assignment.device
        with torch.no_grad(), batch_statistics_only(self.net.members[m]):
            self.net.set_active(self.archs[a], member=m)
            acc = (self.net(xv[idx].to(device)).argmax(1) == yv[idx].to(device)).double().mean()
        w = self.net.mixture_weights
        w[a, m] = EMA_DECAY * w[a, m] + (1 - EMA_DECAY) * acc
        self.seen[a, m] += 1
        self._pending = None

    def epoch_metrics(self) -> dict[str, float]:
        p = self.sampler.probs()
        self.net.assignment.copy_(torch.from_numpy(p.argmax(axis=1)))
        load = np.bincount(p.argmax(axis=1), minlength=self.net.num_members) / len(p)
        return {"temperature": self.sampler.temperature(), "max_member_share": float(load.max())}

    def assignment_report(self) -> dict[str, Any]:
        """W, the balanced p(m | a) and the assignment, with each configuration's label."""
        p = self.sampler.probs()
        return assignment_payload(self.pspace, self.net, p, self.sampler.temperature())

    # -- state ----------------------------------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        return {"member_steps": list(self.member_steps), "seen": self.seen.tolist()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.member_steps = [int(s) for s in state["member_steps"]]
        self.seen = np.asarray(state["seen"], dtype=np.int64)


def assignment_payload(
    space: PoolingSpace, net: PoolingMixtureSupernet, p: np.ndarray, temp: float
) -> dict[str, Any]:
    """JSON-able assignment matrix: configuration labels, W, balanced p, each configuration's member."""
    archs = space.enumerate_archs()
    return {
        "members": net.num_members,
        "temperature": temp,
        "configs": [config_label(space, a) for a in archs],
        "arch_hashes": [a.arch_hash for a in archs],
        "depths": [list(a.depths) for a in archs],
        "weights": net.mixture_weights.cpu().numpy().round(5).tolist(),
        "probs": p.round(5).tolist(),
        "assignment": [int(v) for v in net.assignment.cpu().tolist()],
    }


def config_label(space: PoolingSpace, arch: Arch) -> str:
    """E.g. ``3-3-3 max,max`` (blocks per resolution, then the pool ops)."""
    ops = ",".join(s.downsample or "" for s in arch.stages[1:])
    return "-".join(str(d) for d in arch.depths) + f" {ops}"
