from __future__ import annotations

import numpy as np
import pytest

from predictors import evaluate_predictions


def test_perfect_predictions() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = evaluate_predictions(y, y)
    assert m.kendall_tau == pytest.approx(1.0)
    assert m.spearman == pytest.approx(1.0)
    assert m.mape == 0.0 and m.rmse == 0.0 and m.within_10pct == 1.0 and m.n == 4


def test_known_values() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.05, 2.4, 3.0, 8.0])  # errors 5%, 20%, 25%, 0%; ranks preserved
    m = evaluate_predictions(y, p)
    assert m.kendall_tau == pytest.approx(1.0)
    assert m.mape == pytest.approx(12.5)
    assert m.within_10pct == pytest.approx(0.5)
    assert m.rmse == pytest.approx(np.sqrt((0.05**2 + 0.4**2 + 1.0**2) / 4))


def test_reversed_ranking() -> None:
    y = np.array([1.0, 2.0, 3.0])
    m = evaluate_predictions(y, y[::-1])
    assert m.kendall_tau == pytest.approx(-1.0)
    assert m.to_dict()["spearman"] == pytest.approx(-1.0)


def test_constant_prediction_has_zero_tau() -> None:
    m = evaluate_predictions([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert m.kendall_tau == 0.0


def test_rejects_mismatched_or_short_inputs() -> None:
    with pytest.raises(ValueError, match="same length"):
        evaluate_predictions([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_predictions([1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        evaluate_predictions([1.0, np.nan], [1.0, 2.0])
