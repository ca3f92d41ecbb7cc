"""Quality of a predictor on held-out subnets: ranking and relative-error metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class PredictorMetrics:
    """Kendall tau, Spearman rho, MAPE (%), RMSE, and the share within +-10% of the truth."""

    kendall_tau: float
    spearman: float
    mape: float
    rmse: float
    within_10pct: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _nan_to_zero(value: float) -> float:
    # A constant prediction has no rank correlation; call it 0 rather than NaN so it serialises.
    return 0.0 if np.isnan(value) else float(value)


def evaluate_predictions(y_true: ArrayLike, y_pred: ArrayLike) -> PredictorMetrics:
    """Compare predictions with measured values on the same subnets."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    if t.size < 2:
        raise ValueError(f"need at least 2 held-out subnets to compute metrics, got {t.size}")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("y_true and y_pred must be finite; drop failed measurements first")
    rel = np.abs(p - t) / np.maximum(np.abs(t), 1e-12)
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        tau = rho = 0.0
    else:
        tau = stats.kendalltau(t, p).statistic
        rho = stats.spearmanr(t, p).statistic
    return PredictorMetrics(
        kendall_tau=_nan_to_zero(float(tau)),
        spearman=_nan_to_zero(float(rho)),
        mape=float(rel.mean() * 100.0),
        rmse=float(np.sqrt(np.mean((p - t) ** 2))),
        within_10pct=float((rel <= 0.10).mean()),
        n=int(t.size),
    )
