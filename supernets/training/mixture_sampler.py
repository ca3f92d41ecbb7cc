"""The balanced mixture's draw (Javan, Toews, Pedersoli 2023): a configuration, then the member to train it.

``p(m | a) = softmax_m(T * W[a, m])`` over the supernet's accuracy estimates ``W`` (configurations
x members), with the temperature rising geometrically from ``T_START`` to ``T_END`` over training;
balancing rescales the columns of p by the inverse of the members' load and renormalises the rows
until the load is uniform (KL below ``BALANCE_TOL``). A step draws a configuration uniformly, then
its member from the balanced row: ``training.sampler: balanced-mixture``, registered in the trainer
hooks' registry (``sampling.py``) as the one sampler the ``balanced-mixture`` schedule takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from supernets.arch import Arch
from supernets.pooling_net import PoolingMixtureSupernet
from supernets.pooling_space import PoolingSpace
from supernets.space import SearchSpace
from supernets.training.sampling import Sampler, register_sampler

if TYPE_CHECKING:
    from supernets.training.base import Trainer

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


def member_probs(weights: np.ndarray, temp: float, *, balanced: bool = True) -> np.ndarray:
    """p(m | a) = softmax over members of ``temp * W[a, :]``, balanced unless told otherwise."""
    logits = temp * np.asarray(weights, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return balance(p) if balanced else p


@dataclass(frozen=True)
class MemberDraw:
    """One draw of a mixture: configuration ``index`` of ``enumerate_archs()``, its arch, the member."""

    index: int
    arch: Arch
    member: int


@register_sampler("balanced-mixture")
class MixtureSampler(Sampler):
    """A configuration uniformly, then its member from the balanced p(m | a) at the trainer's step.

    Reads the bound trainer's supernet (``mixture_weights``) and step count (the temperature).
    """

    def __init__(self, space: SearchSpace) -> None:
        if not isinstance(space, PoolingSpace):
            raise ValueError(
                "training.sampler 'balanced-mixture' draws members of the pooling-mixture-resnet family "
                f"only; got {type(space).__name__}"
            )
        super().__init__(space)
        self.archs = space.enumerate_archs()
        self._trainer: Trainer | None = None
        self._net: PoolingMixtureSupernet | None = None

    def bind(self, trainer: Trainer) -> None:
        if not isinstance(trainer.supernet, PoolingMixtureSupernet):
            raise ValueError(
                "training.sampler 'balanced-mixture' needs a mixture of supernets (pooling-mixture-resnet)"
            )
        self._trainer, self._net = trainer, trainer.supernet

    def _bound(self) -> tuple[Trainer, PoolingMixtureSupernet]:
        if self._trainer is None or self._net is None:
            raise RuntimeError("MixtureSampler.bind(trainer) must be called before drawing")
        return self._trainer, self._net

    def temperature(self) -> float:
        trainer, _ = self._bound()
        return temperature(trainer.global_step, trainer.total_steps)

    def probs(self) -> np.ndarray:
        """The balanced p(m | a) at the current temperature."""
        _, net = self._bound()
        return member_probs(net.mixture_weights.cpu().numpy(), self.temperature())

    def draw(self, rng: np.random.Generator) -> MemberDraw:
        """A configuration uniformly, then its member from the balanced p(m | a), with ``rng`` only."""
        a = int(rng.integers(len(self.archs)))
        row = self.probs()[a]
        u = rng.random() * row.sum()
        m = min(int(np.searchsorted(np.cumsum(row), u, side="right")), len(row) - 1)
        return MemberDraw(index=a, arch=self.archs[a], member=m)
