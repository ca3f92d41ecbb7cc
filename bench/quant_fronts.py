"""Fronts of the quantization benchmark: the joint (arch + bits) search against float-only and uniform-8.

Each front comes from the service's own Optuna search (``nas.search.search_with_optuna``) whose
"predictors" are real measurements: every architecture the search asks about is extracted, BN
recalibrated and scored on the validation split (cached), and its ``size_bytes`` counted. The
front is the non-dominated set of everything the search measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch

from nas.pareto import Objective, non_dominated
from nas.search import search_with_optuna
from supernets import Arch, SearchSpace, Supernet, score_subnet
from supernets.bits import size_bytes, with_bits
from supernets.space import Choice, Dimension

ACCURACY, SIZE = Objective(metric="accuracy", goal="max"), Objective(metric="size_bytes", goal="min")


@dataclass(frozen=True)
class FrontPoint:
    arch: Arch
    accuracy: float
    size_bytes: int


class FixedBits:
    """A space whose bit-widths are fixed at ``bits`` for every stage (the search sees no bits choices)."""

    def __init__(self, space: SearchSpace, bits: int | None) -> None:
        self.space, self.bits = space, bits

    def _keys(self) -> set[str]:
        return {c.key for c in self.space.typed_choices() if c.dimension is Dimension.BITS}

    def typed_choices(self) -> tuple[Choice, ...]:
        return tuple(c for c in self.space.typed_choices() if c.dimension is not Dimension.BITS)

    def choices(self) -> dict[str, list[Any]]:
        return {c.key: list(c.options) for c in self.typed_choices()}

    def arch_from_choices(self, values: dict[str, Any]) -> Arch:
        fixed = {k: self.bits for k in self._keys()}
        return self.space.arch_from_choices({**values, **fixed})

    def choices_of(self, arch: Arch) -> dict[str, Any]:
        return {k: v for k, v in self.space.choices_of(arch).items() if k not in self._keys()}

    def sample(self, rng: np.random.Generator) -> Arch:
        arch = self.space.sample(rng)
        return arch if not self._keys() else with_bits(arch, [self.bits] * len(arch.stages))


class _Measured:
    """A "predictor" that measures: ``predict`` scores each architecture for real (memoised)."""

    def __init__(self, score: Callable[[Arch], float]) -> None:
        self.score, self.seen = score, {}  # type: ignore[var-annotated]

    def fit(self, archs: Sequence[Arch], y: Any) -> None:
        return None

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        for a in archs:
            if a.arch_hash not in self.seen:
                self.seen[a.arch_hash] = (a, self.score(a))
        return np.asarray([self.seen[a.arch_hash][1] for a in archs], dtype=float)


def search_front(
    net: Supernet,
    space: SearchSpace,
    *,
    bits: int | str | None,
    calibration: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    population: int,
    generations: int,
    seed: int,
) -> list[FrontPoint]:
    """The (accuracy, size_bytes) front an NSGA-II search finds; ``bits="joint"`` searches the bits too."""
    searched: Any = space if bits == "joint" else FixedBits(space, bits)  # type: ignore[arg-type]
    # every arch scored as the pipeline scores it (fake-quantized where its stages are)
    accuracy = _Measured(lambda a: score_subnet(net, a, calibration, x, y))
    size = _Measured(lambda a: float(size_bytes(space, a)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_with_optuna(
        space=searched,
        objectives=[ACCURACY, SIZE],
        constraints=[],
        predictors={ACCURACY.key: accuracy, SIZE.key: size},
        algorithm="nsga2",
        population=population,
        generations=generations,
        seed=seed,
    )
    points = [FrontPoint(a, acc, int(size.seen[h][1])) for h, (a, acc) in accuracy.seen.items()]
    keep = non_dominated([(p.accuracy, p.size_bytes) for p in points], ["max", "min"])
    return sorted((points[i] for i in keep), key=lambda p: p.size_bytes)


def size_gain(reference: Sequence[FrontPoint], joint: Sequence[FrontPoint], *, tolerance: float) -> float:
    """Median over ``reference``'s points of ``its size / the smallest joint model within tolerance``.

    A reference point that no joint model matches (accuracy within ``tolerance``) counts as 0.
    """
    gains = []
    for r in reference:
        sizes = [j.size_bytes for j in joint if j.accuracy >= r.accuracy - tolerance]
        gains.append(r.size_bytes / min(sizes) if sizes else 0.0)
    return float(np.median(gains)) if gains else 0.0


def front_rows(name: str, seed: int, front: Sequence[FrontPoint]) -> list[dict[str, Any]]:
    return [
        {
            "front": name,
            "seed": seed,
            "arch": p.arch.arch_hash,
            "bits": "/".join(str(s.bits or 32) for s in p.arch.stages),
            "accuracy": p.accuracy,
            "size_bytes": p.size_bytes,
        }
        for p in front
    ]
