"""XGBoost accuracy predictor, pretrained on free cost statistics so few measured subnets suffice."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from predictors._xgb import BoostedRegressor
from predictors.base import Predictor
from predictors.features import FeatureEncoder, SpaceLike
from supernets.arch import Arch


class SampleableSpace(SpaceLike, Protocol):
    def sample(self, rng: np.random.Generator) -> Arch: ...


# The free proxies a pretrained accuracy predictor can learn first (see XGBAccuracyPredictor).
PROXIES = ("macs", "macs+params")


class XGBAccuracyPredictor(Predictor):
    """Accuracy of subnets of one trained supernet.

    With ``pretrain`` (as FBNetV3 does), a booster first learns a free proxy on
    ``n_pretrain`` sampled archs that cost nothing to label: standardised log-MACs
    (``proxy="macs"``, the default) or log-MACs plus log-params (``"macs+params"``).
    On measured subnets a line maps that proxy to accuracy and becomes the base
    margin; residual trees then learn what the proxy misses. Without pretraining
    the trees fit the accuracies directly.

    Why MACs alone: on the predictors benchmark's supernet (ofa-mbv3, Fashion-MNIST, 200 subnets
    on the 10,000-image test split) log-MACs ranks at Kendall tau 0.375 and the sum with
    log-params at 0.204; with 10 / 25 / 50 measured subnets the predictor on the MACs proxy
    reached 0.40 / 0.36 / 0.40 against 0.29 / 0.30 / 0.37 (3 seeds each), the same at 100-200.
    """

    kind = "xgb-accuracy"

    def __init__(
        self,
        *,
        space: SampleableSpace,
        target: str = "accuracy",
        pretrain: bool = True,
        proxy: str = "macs",
        n_pretrain: int = 2000,
        n_estimators: int = 300,
        max_depth: int = 3,
        learning_rate: float = 0.03,
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        if proxy not in PROXIES:
            raise ValueError(f"unknown proxy {proxy!r}; use one of {', '.join(PROXIES)}")
        if n_pretrain < 10:
            raise ValueError(f"n_pretrain must be >= 10 sampled archs, got {n_pretrain}")
        self.space = space
        self.encoder = FeatureEncoder(space=space)
        super().__init__(target=target, space_key=self.encoder.key)
        self._config_kw: dict[str, Any] = {
            "target": target,
            "pretrain": pretrain,
            "proxy": proxy,
            "n_pretrain": n_pretrain,
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "seed": seed,
            "n_jobs": n_jobs,
        }
        self.pretrain = pretrain
        self.proxy = proxy
        self.n_pretrain = n_pretrain
        self.seed = seed
        tree_kw: dict[str, Any] = {"max_depth": max_depth, "seed": seed, "n_jobs": n_jobs}
        self.proxy_model = BoostedRegressor(n_estimators=300, learning_rate=0.1, **tree_kw)
        self.model = BoostedRegressor(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            subsample=0.8,
            colsample=0.6,
            min_child_weight=2.0,
            **tree_kw,
        )
        self._proxy_norm = np.zeros(4)  # mean/std of log-MACs, mean/std of log-params
        self._line = np.zeros(2)  # accuracy ~ line[0] + line[1] * proxy

    def _proxy_targets(self, x: np.ndarray) -> np.ndarray:
        macs = np.log1p(x[:, self.encoder.names.index("total.macs")])
        params = np.log1p(x[:, self.encoder.names.index("total.params")])
        m_mu, m_sd, p_mu, p_sd = self._proxy_norm
        if self.proxy == "macs":
            return (macs - m_mu) / m_sd
        return (macs - m_mu) / m_sd + (params - p_mu) / p_sd

    def _pretrain(self) -> None:
        rng = np.random.default_rng(self.seed)
        x = self.encoder.encode([self.space.sample(rng) for _ in range(self.n_pretrain)])
        macs = np.log1p(x[:, self.encoder.names.index("total.macs")])
        params = np.log1p(x[:, self.encoder.names.index("total.params")])
        self._proxy_norm = np.array(
            [macs.mean(), max(macs.std(), 1e-9), params.mean(), max(params.std(), 1e-9)]
        )
        self.proxy_model.fit(x, self._proxy_targets(x))

    def _margin(self, x: np.ndarray) -> np.ndarray:
        return self._line[0] + self._line[1] * self.proxy_model.predict(x)

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        x = self.encoder.encode(archs)
        if not self.pretrain:
            self.model.fit(x, y)
            return
        if self.proxy_model.booster is None:
            self._pretrain()
        proxy = self.proxy_model.predict(x)
        if len(y) >= 2 and np.ptp(proxy) > 0:
            slope, intercept = np.polyfit(proxy, y, 1)
            # Bigger subnets of one supernet are not less accurate on average; a negative slope is noise.
            self._line = np.array([intercept, slope]) if slope > 0 else np.array([y.mean(), 0.0])
        else:
            self._line = np.array([y.mean(), 0.0])
        self.model.fit(x, y, margin=self._margin(x))

    def _predict(self, archs: list[Arch]) -> np.ndarray:
        x = self.encoder.encode(archs)
        return self.model.predict(x, margin=self._margin(x) if self.pretrain else None)

    def _config(self) -> dict[str, Any]:
        return dict(self._config_kw)

    def _get_state(self) -> dict[str, Any]:
        return {
            "proxy_booster": self.proxy_model.state(),
            "booster": self.model.state(),
            "proxy_norm": self._proxy_norm.tolist(),
            "line": self._line.tolist(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.proxy_model.load_state(state["proxy_booster"])
        self.model.load_state(state["booster"])
        self._proxy_norm = np.asarray(state["proxy_norm"], dtype=np.float64)
        self._line = np.asarray(state["line"], dtype=np.float64)
