from __future__ import annotations

import json

import numpy as np
import pytest

from predictors import FlopsLatencyPredictor, Predictor, XGBAccuracyPredictor, predictor_kinds
from supernets import SearchSpace, make_space
from tests.predictors.conftest import TINY_SPACE, synthetic_latency, unique_archs


@pytest.fixture(scope="module")
def fitted(tiny_space: SearchSpace) -> FlopsLatencyPredictor:
    archs = unique_archs(tiny_space, 20, seed=5)
    return FlopsLatencyPredictor(space=tiny_space, profile="cpu-fp32").fit(
        archs, synthetic_latency(tiny_space, archs)
    )


def test_kinds_are_registered() -> None:
    assert {"xgb-latency", "xgb-accuracy", "lut-latency", "flops-latency"} <= set(predictor_kinds())


def test_generic_load_dispatches_on_kind(tiny_space: SearchSpace, fitted: FlopsLatencyPredictor) -> None:
    loaded = Predictor.from_bytes(fitted.to_bytes(), space=tiny_space)
    assert isinstance(loaded, FlopsLatencyPredictor)
    archs = unique_archs(tiny_space, 4, seed=6)
    np.testing.assert_allclose(loaded.predict(archs), fitted.predict(archs))


def test_load_rejects_other_space(fitted: FlopsLatencyPredictor) -> None:
    other = make_space({**TINY_SPACE, "depths": [1, 2]}, in_channels=1, num_classes=10, image_size=16)
    with pytest.raises(ValueError, match="same search space"):
        Predictor.from_bytes(fitted.to_bytes(), space=other)


def test_load_rejects_wrong_class_and_bad_data(
    tiny_space: SearchSpace, fitted: FlopsLatencyPredictor
) -> None:
    with pytest.raises(ValueError, match="not a XGBAccuracyPredictor"):
        XGBAccuracyPredictor.from_bytes(fitted.to_bytes(), space=tiny_space)
    with pytest.raises(ValueError, match="not a serialised predictor"):
        Predictor.from_bytes(b"{}", space=tiny_space)
    doc = json.loads(fitted.to_bytes())
    doc["metadata"]["kind"] = "crystal-ball"
    with pytest.raises(ValueError, match="unknown predictor kind"):
        Predictor.from_bytes(json.dumps(doc).encode(), space=tiny_space)
    doc["metadata"]["kind"], doc["metadata"]["version"] = "flops-latency", 99
    with pytest.raises(ValueError, match="newer"):
        Predictor.from_bytes(json.dumps(doc).encode(), space=tiny_space)


def test_fit_rejects_empty_and_nan(tiny_space: SearchSpace) -> None:
    pred = FlopsLatencyPredictor(space=tiny_space, profile="cpu-fp32")
    with pytest.raises(ValueError, match="zero"):
        pred.fit([], [])
    archs = unique_archs(tiny_space, 2, seed=0)
    with pytest.raises(ValueError, match="finite"):
        pred.fit(archs, [1.0, float("nan")])
    assert not pred.is_fitted
