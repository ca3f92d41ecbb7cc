"""Balanced mixture of supernets (Javan, Toews, Pedersoli 2023) for the ``pooling-mixture-resnet`` family.

Each step draws a configuration ``a`` uniformly, a member ``m`` from the balanced p(m | a), takes
an SGD step on member ``m`` running ``a``, then scores ``m`` on one validation minibatch (batch
statistics, no gradient) and moves ``W[a, m]`` towards that accuracy by an exponential moving
average. ``p(m | a) = softmax_m(T * W[a, m])`` with the temperature rising geometrically from
``t_start`` to ``t_end`` over training; balancing rescales the columns of p by the inverse of the
members' load and renormalises the rows until the load is uniform (KL below ``balance_tol``).
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
from typing import Any

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

EMA_DECAY = 0.9
T_START = 1.0
T_END = 100.0
BALANCE_TOL = 1e-4


def temperature(step: int, total: int, t_start: float = T_START, t_end: float = T_END) -> float:
    """Geometric ramp: ``t_start`` at step 0, ``t_end`` at the last step (``total - 1``)."""
    if total <= 1:
        return t_end
    frac = min(1.0, max(0.0, step / (total - 1)))
    return t_start * (t_end / t_start) ** frac


def kl_to_uniform(marginal: np.ndarray) -> float:
    m = marginal / marginal.sum()
    return float(np.sum(m * np.log(np.maximum(m, 1e-300) * len(m))))


def balance(p: np.ndarray, *, tol: float = BALANCE_TOL, max_iter: int = 10_000) -> np.ndarray:
    """Rows of ``p`` (configurations x members, rows summing to 1) rescaled so every member carries
    the same load: divide each column by its mean, renormalise the rows, until KL(load || uniform) < tol."""
    q = np.asarray(p, dtype=np.float64).copy()
    if q.ndim != 2 or (q < 0).any():
        raise ValueError("p must be a non-negative configurations x members matrix")
    q /= q.sum(axis=1, keepdims=True)
    for _ in range(max_iter):
        load = q.mean(axis=0)
        if kl_to_uniform(load) < tol:
            return q
        q /= np.maximum(load, 1e-300)[None, :]
        q /= q.sum(axis=1, keepdims=True)
    return q


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


def member_probs(weights: np.ndarray, temp: float, *, balanced: bool = True) -> np.ndarray:
    """p(m | a) = softmax over members of ``temp * W[a, :]``, balanced unless told otherwise."""
    logits = temp * np.asarray(weights, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return balance(p) if balanced else p


class BalancedMixtureTrainer(Trainer):
    """Trains the members of a :class:`PoolingMixtureSupernet` by the balanced-mixture rule."""

    schedule = "balanced-mixture"

    def __init__(self, *, supernet: Supernet, space: SearchSpace, config: TrainConfig, seed: int) -> None:
        if not isinstance(supernet, PoolingMixtureSupernet) or not isinstance(space, PoolingSpace):
            raise ValueError(
                "training.schedule 'balanced-mixture' trains only the pooling-mixture-resnet family; "
                f"got {type(space).__name__}"
            )
        super().__init__(supernet=supernet, space=space, config=config, seed=seed)
        self.net = supernet
        self.pspace = space
        self.archs = space.enumerate_archs()
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
        self._pending: tuple[int, int] | None = None
        self.last_temperature = T_START

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

    def temperature(self) -> float:
        return temperature(self._step, self.total_steps)

    def probs(self) -> np.ndarray:
        """The balanced p(m | a) at the current temperature."""
        return member_probs(self.net.mixture_weights.cpu().numpy(), self.temperature())

    def member_lr(self, member: int) -> float:
        share = math.ceil(self.total_steps / self.net.num_members)
        warmup = self.config.warmup_epochs * self._steps_per_epoch // self.net.num_members
        return cosine_lr(self.config.lr, self.member_steps[member], share, warmup)

    def draw(self) -> tuple[int, int]:
        """A configuration uniformly, then its member from the balanced p(m | a)."""
        a = int(self.rng.integers(len(self.archs)))
        row = self.probs()[a]
        u = self.rng.random() * row.sum()
        return a, min(int(np.searchsorted(np.cumsum(row), u, side="right")), len(row) - 1)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        a, m = self.draw()
        lr = self.member_lr(m)
        for g in self.member_groups[m]:
            self.optimizer.param_groups[g]["lr"] = lr
        self.net.set_active(self.archs[a], member=m)
        loss = F.cross_entropy(self.net(x), y, label_smoothing=self.config.label_smoothing)
        loss.backward()
        self._pending = (a, m)
        self.last_temperature = self.temperature()
        return loss.item()

    def on_step_end(self) -> None:
        assert self._pending is not None and self._val is not None
        a, m = self._pending
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
        p = self.probs()
        self.net.assignment.copy_(torch.from_numpy(p.argmax(axis=1)))
        load = np.bincount(p.argmax(axis=1), minlength=self.net.num_members) / len(p)
        return {"temperature": self.temperature(), "max_member_share": float(load.max())}

    def assignment_report(self) -> dict[str, Any]:
        """W, the balanced p(m | a) and the assignment, with each configuration's label."""
        p = self.probs()
        return assignment_payload(self.pspace, self.net, p, self.temperature())

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
