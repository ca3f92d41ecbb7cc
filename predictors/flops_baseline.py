"""The naive latency baseline: latency proportional to FLOPs (a least-squares line)."""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import Predictor
from predictors.features import FeatureEncoder, SpaceLike
from predictors.hardware import get_profile
from supernets.arch import Arch


class FlopsLatencyPredictor(Predictor):
    """``latency = a * FLOPs + b``, fitted on measured subnets; what a FLOPs-only proxy can do."""

    kind = "flops-latency"

    def __init__(self, *, space: SpaceLike, profile: str) -> None:
        get_profile(profile)
        self.encoder = FeatureEncoder(space=space)
        super().__init__(target=f"latency_ms@{profile}", space_key=self.encoder.key)
        self.profile = profile
        self._coef = np.zeros(2)

    def _flops(self, archs: list[Arch]) -> np.ndarray:
        return np.asarray([2.0 * self.encoder.free_stats(a)["macs"] for a in archs])

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        design = np.column_stack([self._flops(archs), np.ones(len(archs))])
        self._coef = np.linalg.lstsq(design, y, rcond=None)[0]

    def _predict(self, archs: list[Arch]) -> np.ndarray:
        return self._flops(archs) * self._coef[0] + self._coef[1]

    def _config(self) -> dict[str, Any]:
        return {"profile": self.profile}

    def _get_state(self) -> dict[str, Any]:
        return {"coef": self._coef.tolist()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._coef = np.asarray(state["coef"], dtype=np.float64)
