"""XGBoost latency predictor: boosted trees on log-latency over a linear cost-model prior."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import nnls

from predictors._xgb import BoostedRegressor
from predictors.base import Predictor
from predictors.features import FeatureEncoder, SpaceLike
from predictors.hardware import get_profile
from supernets.arch import Arch

# Columns of the linear prior: latency ~ c0 + c1*MACs + c2*bytes + c3*active layers (all c >= 0).
_PRIOR_COLUMNS = ("total.macs", "total.bytes", "total.active_layers")


class XGBLatencyPredictor(Predictor):
    """Latency (ms) on one hardware profile.

    A non-negative linear model of MACs, bytes moved and layer count gives a
    first guess; boosted trees fit log(measured / guess) from the full features,
    so the error they learn is relative, which is what ``within +-10%`` asks for.
    """

    kind = "xgb-latency"

    def __init__(
        self,
        *,
        space: SpaceLike,
        profile: str,
        n_estimators: int = 600,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        get_profile(profile)  # rejects unknown names with the list of known ones
        self.encoder = FeatureEncoder(space=space)
        super().__init__(target=f"latency_ms@{profile}", space_key=self.encoder.key)
        self.profile = profile
        self._hyper = {
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "seed": seed,
            "n_jobs": n_jobs,
        }
        self.model = BoostedRegressor(
            n_estimators=n_estimators,
            max_depth=max_depth,
            learning_rate=learning_rate,
            subsample=0.8,
            colsample=0.6,
            seed=seed,
            n_jobs=n_jobs,
        )
        self._prior_coef = np.zeros(len(_PRIOR_COLUMNS) + 1)
        self._prior_idx = [self.encoder.names.index(c) for c in _PRIOR_COLUMNS]
        self._scale = np.ones(len(_PRIOR_COLUMNS) + 1)
        # Training data is kept in memory (not serialised) for bootstrapped adaptive sampling.
        self.train_x: np.ndarray | None = None
        self.train_y: np.ndarray | None = None

    def _prior_design(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(len(x)), x[:, self._prior_idx]])

    def _prior(self, x: np.ndarray) -> np.ndarray:
        pred = self._prior_design(x) @ self._prior_coef
        return np.log(np.maximum(pred, 1e-6))

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        if (y <= 0).any():
            raise ValueError("latencies must be positive milliseconds")
        x = self.encoder.encode(archs)
        design = self._prior_design(x)
        self._scale = np.maximum(np.abs(design).max(axis=0), 1e-12)
        # Weight rows by 1/y so the least squares minimises relative, not absolute, error.
        coef, _ = nnls(design / self._scale / y[:, None], np.ones_like(y))
        self._prior_coef = coef / self._scale
        margin = self._prior(x)
        self.model.fit(x, np.log(y), margin=margin)
        self.train_x, self.train_y = x, y

    def predict_log(self, archs: list[Arch]) -> np.ndarray:
        x = self.encoder.encode(archs)
        return self.model.predict(x, margin=self._prior(x))

    def _predict(self, archs: list[Arch]) -> np.ndarray:
        return np.exp(self.predict_log(archs))

    def uncertainty(self, archs: list[Arch], *, rng: np.random.Generator, n_models: int = 5) -> np.ndarray:
        """Std of log-latency across bootstrapped refits: high where more measurements help most."""
        if self.train_x is None or self.train_y is None:
            raise RuntimeError("uncertainty needs the training data of this process; call fit first")
        x_new = self.encoder.encode(archs)
        return self.model.bootstrap_std(
            self.train_x,
            np.log(self.train_y),
            x_new,
            rng=rng,
            n_models=n_models,
            margin_train=self._prior(self.train_x),
            margin_new=self._prior(x_new),
        )

    def _config(self) -> dict[str, Any]:
        return {"profile": self.profile, **self._hyper}

    def _get_state(self) -> dict[str, Any]:
        return {"prior_coef": self._prior_coef.tolist(), "booster": self.model.state()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._prior_coef = np.asarray(state["prior_coef"], dtype=np.float64)
        self.model.load_state(state["booster"])
