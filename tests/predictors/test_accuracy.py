from __future__ import annotations

import numpy as np
import pytest

from predictors import XGBAccuracyPredictor, evaluate_predictions
from supernets import Arch, SearchSpace
from tests.predictors.conftest import unique_archs


def _accuracy_like(space: SearchSpace, archs: list[Arch], rng: np.random.Generator) -> np.ndarray:
    """Accuracy that grows with log-size, with a small kernel-size effect and noise."""
    out = []
    for arch in archs:
        cost = space.total_cost(arch)
        ks = np.mean([b.kernel_size for s in arch.stages for b in s.blocks])
        out.append(0.3 + 0.02 * np.log(cost.macs) + 0.01 * np.log(cost.params) + 0.004 * ks)
    return np.asarray(out) + rng.normal(0.0, 0.002, len(archs))


@pytest.fixture(scope="module")
def data(tiny_space: SearchSpace) -> tuple[list[Arch], np.ndarray]:
    archs = unique_archs(tiny_space, 220, seed=3)
    return archs, _accuracy_like(tiny_space, archs, np.random.default_rng(0))


def test_pretraining_helps_with_few_samples(tiny_space: SearchSpace, data: tuple) -> None:
    archs, y = data
    test_a, test_y = archs[100:], y[100:]
    taus = {}
    for pretrain in (True, False):
        pred = XGBAccuracyPredictor(space=tiny_space, pretrain=pretrain, n_pretrain=300, n_estimators=100)
        pred.fit(archs[:10], y[:10])
        taus[pretrain] = evaluate_predictions(test_y, pred.predict(test_a)).kendall_tau
    assert taus[True] > 0.75
    assert taus[True] > taus[False] + 0.1


def test_more_samples_rank_well_and_round_trip(tiny_space: SearchSpace, data: tuple) -> None:
    archs, y = data
    pred = XGBAccuracyPredictor(space=tiny_space, n_pretrain=300, n_estimators=150).fit(archs[:100], y[:100])
    assert pred.evaluate(archs[100:], y[100:]).kendall_tau > 0.7
    again = XGBAccuracyPredictor.from_bytes(pred.to_bytes(), space=tiny_space)
    np.testing.assert_allclose(again.predict(archs[100:]), pred.predict(archs[100:]), rtol=1e-6)
    assert again.metadata.kind == "xgb-accuracy" and again.metadata.n_samples == 100


def test_rejects_tiny_pretraining_pool(tiny_space: SearchSpace) -> None:
    with pytest.raises(ValueError, match="n_pretrain"):
        XGBAccuracyPredictor(space=tiny_space, n_pretrain=2)


def test_proxy_choice_is_kept_and_checked(tiny_space: SearchSpace, data: tuple) -> None:
    """The MACs proxy ranks exactly by MACs before any measurement shapes the trees; the other proxy
    adds params; the choice survives a round trip; an unknown one is refused."""
    archs, y = data
    macs = np.log([tiny_space.total_cost(a).macs for a in archs])
    for proxy in ("macs", "macs+params"):
        pred = XGBAccuracyPredictor(space=tiny_space, proxy=proxy, n_pretrain=300).fit(archs[:20], y[:20])
        proxy_values = pred.proxy_model.predict(pred.encoder.encode(archs))
        tau_macs = evaluate_predictions(macs, proxy_values).kendall_tau
        assert (tau_macs > 0.95) == (proxy == "macs")
        again = XGBAccuracyPredictor.from_bytes(pred.to_bytes(), space=tiny_space)
        assert again.proxy == proxy
    with pytest.raises(ValueError, match="proxy"):
        XGBAccuracyPredictor(space=tiny_space, proxy="params")
