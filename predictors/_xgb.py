"""A small gradient-boosted regressor around ``xgboost.train`` with margins, bootstraps and JSON state."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import xgboost as xgb


class BoostedRegressor:
    """Boosted trees on a feature matrix, optionally on top of a per-row base margin."""

    def __init__(
        self,
        *,
        n_estimators: int = 400,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.9,
        colsample: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        if n_estimators < 1 or max_depth < 1:
            raise ValueError(f"need n_estimators >= 1 and max_depth >= 1, got {n_estimators}, {max_depth}")
        if not 0 < learning_rate <= 1 or not 0 < subsample <= 1 or not 0 < colsample <= 1:
            raise ValueError("learning_rate, subsample and colsample must lie in (0, 1]")
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.n_estimators = n_estimators
        self.params: dict[str, Any] = {
            "objective": "reg:squarederror",
            "max_depth": max_depth,
            "eta": learning_rate,
            "subsample": subsample,
            "colsample_bytree": colsample,
            "min_child_weight": min_child_weight,
            "lambda": reg_lambda,
            "seed": seed,
            "nthread": n_jobs,
            "tree_method": "hist",
            "verbosity": 0,
        }
        self.booster: xgb.Booster | None = None

    def _matrix(self, x: np.ndarray, y: np.ndarray | None, margin: np.ndarray | None) -> xgb.DMatrix:
        return xgb.DMatrix(x, label=y, base_margin=margin)

    def fit(self, x: np.ndarray, y: np.ndarray, *, margin: np.ndarray | None = None) -> BoostedRegressor:
        params = dict(self.params)
        if margin is None:
            params["base_score"] = float(np.mean(y))
        self.booster = xgb.train(params, self._matrix(x, y, margin), num_boost_round=self.n_estimators)
        return self

    def predict(self, x: np.ndarray, *, margin: np.ndarray | None = None) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("BoostedRegressor is not fitted")
        # inplace_predict skips building a DMatrix: most of the cost of predicting a small population.
        out = self.booster.inplace_predict(np.ascontiguousarray(x, dtype=np.float32), base_margin=margin)
        return np.asarray(out, dtype=np.float64)

    def bootstrap_std(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_new: np.ndarray,
        *,
        rng: np.random.Generator,
        n_models: int = 5,
        margin_train: np.ndarray | None = None,
        margin_new: np.ndarray | None = None,
    ) -> np.ndarray:
        """Disagreement of ``n_models`` bootstrapped refits on ``x_new`` (std of their predictions)."""
        if n_models < 2:
            raise ValueError(f"n_models must be >= 2 to measure disagreement, got {n_models}")
        preds = []
        n = len(y_train)
        for _ in range(n_models):
            idx = rng.integers(0, n, size=n)
            member = BoostedRegressor(n_estimators=self.n_estimators)
            member.params = {**self.params, "seed": int(rng.integers(0, 2**31 - 1))}
            member.fit(x_train[idx], y_train[idx], margin=None if margin_train is None else margin_train[idx])
            preds.append(member.predict(x_new, margin=margin_new))
        return np.std(np.stack(preds), axis=0)

    def state(self) -> str | None:
        if self.booster is None:
            return None
        return base64.b64encode(bytes(self.booster.save_raw(raw_format="ubj"))).decode()

    def load_state(self, state: str | None) -> None:
        if state is None:
            self.booster = None
            return
        booster = xgb.Booster()
        booster.load_model(bytearray(base64.b64decode(state)))
        self.booster = booster
