"""The search benchmark's paired comparison: per-seed differences, wins and spread."""

from __future__ import annotations

import pytest

from bench.search import _paired


def test_paired_compares_seed_by_seed() -> None:
    rows = [
        {"method": "refine", "budget": 25, "seed": s, "hv_test": v}
        for s, v in enumerate([1.0, 2.0, 3.0, 4.0])
    ] + [
        {"method": "random", "budget": 200, "seed": s, "hv_test": v}
        for s, v in enumerate([0.5, 2.5, 2.0, 4.0])
    ]
    p = _paired(rows, ("refine", 25), ("random", 200))
    assert p["seeds"] == 4
    assert p["wins"] == 3  # a tie counts as reaching the other's hypervolume
    assert p["diff_mean"] == pytest.approx((0.5 - 0.5 + 1.0 + 0.0) / 4)
    assert p["diff_std"] > 0
    # Only seeds both methods ran are paired.
    p = _paired(rows[:2] + rows[4:], ("refine", 25), ("random", 200))
    assert p["seeds"] == 2 and p["wins"] == 1
