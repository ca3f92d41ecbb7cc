"""Adaptive sampling (as in nn-Meter): measure next where bootstrapped predictors disagree most."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from supernets.arch import Arch


class SamplingSpace(Protocol):
    def sample(self, rng: np.random.Generator) -> Arch: ...


class UncertainPredictor(Protocol):
    def uncertainty(
        self, archs: list[Arch], *, rng: np.random.Generator, n_models: int = 5
    ) -> np.ndarray: ...


def propose_adaptive(
    space: SamplingSpace,
    predictor: UncertainPredictor,
    rng: np.random.Generator,
    n: int,
    *,
    pool_size: int = 1000,
    n_models: int = 5,
    exclude: Iterable[Arch] = (),
) -> list[Arch]:
    """The ``n`` archs of a random pool whose predictions a bootstrap ensemble disagrees on most.

    ``exclude`` lists archs already measured; they are never proposed again.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if pool_size < n:
        raise ValueError(f"pool_size ({pool_size}) must be at least n ({n}); raise pool_size")
    seen = {a.arch_hash for a in exclude}
    pool: list[Arch] = []
    # Bounded attempts: a tiny space may not hold pool_size unseen archs.
    for _ in range(pool_size * 5):
        arch = space.sample(rng)
        if arch.arch_hash not in seen:
            seen.add(arch.arch_hash)
            pool.append(arch)
            if len(pool) == pool_size:
                break
    if not pool:
        raise ValueError("every sampled arch is already measured; the space is exhausted")
    disagreement = predictor.uncertainty(pool, rng=rng, n_models=n_models)
    order = np.argsort(-disagreement, kind="stable")
    return [pool[i] for i in order[:n]]
