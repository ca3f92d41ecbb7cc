"""What the search needs from a search space and a predictor, as structural types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from supernets.arch import Arch


class SpaceLike(Protocol):
    """The part of ``supernets.SearchSpace`` the search uses: a flat categorical encoding."""

    def choices(self) -> dict[str, list[Any]]: ...

    def arch_from_choices(self, values: dict[str, Any]) -> Arch: ...

    def choices_of(self, arch: Arch) -> dict[str, Any]: ...

    def sample(self, rng: np.random.Generator) -> Arch: ...


class PredictorLike(Protocol):
    """The part of ``predictors.base.Predictor`` the search uses."""

    def fit(self, archs: Sequence[Arch], y: Any) -> Any: ...

    def predict(self, archs: Sequence[Arch]) -> Any: ...


def predict_values(
    predictors: Mapping[str, PredictorLike], archs: Sequence[Arch], keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Predictions of every metric in ``keys`` for ``archs``, one float array per key."""
    out: dict[str, np.ndarray] = {}
    for key in keys:
        pred = np.asarray(predictors[key].predict(list(archs)), dtype=float).reshape(-1)
        if pred.shape[0] != len(archs):
            raise ValueError(f"predictor for {key!r} returned {pred.shape[0]} values for {len(archs)} archs")
        out[key] = pred
    return out
