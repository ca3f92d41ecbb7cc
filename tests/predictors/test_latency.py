from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictors import FlopsLatencyPredictor, XGBLatencyPredictor, propose_adaptive
from supernets import SearchSpace
from tests.predictors.conftest import synthetic_latency, unique_archs


@pytest.fixture(scope="module")
def split(tiny_space: SearchSpace) -> tuple[list, np.ndarray, list, np.ndarray]:
    archs = unique_archs(tiny_space, 260, seed=1)
    y = synthetic_latency(tiny_space, archs)
    return archs[:160], y[:160], archs[160:], y[160:]


def test_xgb_latency_learns_held_out(tiny_space: SearchSpace, split: tuple) -> None:
    train_a, train_y, test_a, test_y = split
    pred = XGBLatencyPredictor(space=tiny_space, profile="cpu-fp32", n_estimators=300).fit(train_a, train_y)
    m = pred.evaluate(test_a, test_y)
    assert m.kendall_tau > 0.9 and m.within_10pct > 0.9
    assert pred.metadata.metrics["kendall_tau"] == m.kendall_tau
    assert pred.metadata.n_samples == 160 and pred.metadata.target == "latency_ms@cpu-fp32"
    assert (pred.predict(test_a) > 0).all()


def test_xgb_beats_flops_alone(tiny_space: SearchSpace, split: tuple) -> None:
    train_a, train_y, test_a, test_y = split
    xgb = XGBLatencyPredictor(space=tiny_space, profile="cpu-fp32", n_estimators=300).fit(train_a, train_y)
    flops = FlopsLatencyPredictor(space=tiny_space, profile="cpu-fp32").fit(train_a, train_y)
    assert xgb.evaluate(test_a, test_y).mape < flops.evaluate(test_a, test_y).mape


def test_round_trip_predicts_the_same(tiny_space: SearchSpace, split: tuple, tmp_path: Path) -> None:
    train_a, train_y, test_a, _ = split
    pred = XGBLatencyPredictor(space=tiny_space, profile="cpu-fp32", n_estimators=50).fit(train_a, train_y)
    path = pred.save(tmp_path / "sub" / "lat.json")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    loaded = XGBLatencyPredictor.load(path, space=tiny_space)
    assert isinstance(loaded, XGBLatencyPredictor) and loaded.metadata == pred.metadata
    np.testing.assert_allclose(loaded.predict(test_a), pred.predict(test_a), rtol=1e-6)
    flops = FlopsLatencyPredictor(space=tiny_space, profile="cpu-fp32").fit(train_a, train_y)
    again = FlopsLatencyPredictor.from_bytes(flops.to_bytes(), space=tiny_space)
    np.testing.assert_allclose(again.predict(test_a), flops.predict(test_a))


def test_adaptive_proposes_unmeasured_uncertain_archs(tiny_space: SearchSpace, split: tuple) -> None:
    train_a, train_y, _, _ = split
    pred = XGBLatencyPredictor(space=tiny_space, profile="cpu-fp32", n_estimators=40).fit(
        train_a[:40], train_y[:40]
    )
    rng = np.random.default_rng(0)
    picked = propose_adaptive(tiny_space, pred, rng, 5, pool_size=60, n_models=3, exclude=train_a[:40])
    assert len(picked) == 5 == len({a.arch_hash for a in picked})
    assert not {a.arch_hash for a in picked} & {a.arch_hash for a in train_a[:40]}
    pool = unique_archs(tiny_space, 60, seed=9)
    spread = pred.uncertainty(pool, rng=np.random.default_rng(1), n_models=3)
    assert spread.shape == (60,) and (spread >= 0).all() and spread.max() > 0


def test_rejects_bad_inputs(tiny_space: SearchSpace, split: tuple) -> None:
    train_a, train_y, _, _ = split
    with pytest.raises(ValueError, match="known profiles"):
        XGBLatencyPredictor(space=tiny_space, profile="gpu-fast")
    pred = XGBLatencyPredictor(space=tiny_space, profile="cpu-fp32")
    with pytest.raises(RuntimeError, match="not fitted"):
        pred.predict(train_a[:2])
    with pytest.raises(ValueError, match="one per arch"):
        pred.fit(train_a[:3], train_y[:2])
    with pytest.raises(ValueError, match="positive"):
        pred.fit(train_a[:3], [1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="pool_size"):
        propose_adaptive(tiny_space, pred, np.random.default_rng(0), 10, pool_size=5)
