"""The measurement protocol for several variants: interleaved rounds, one summary each."""

from __future__ import annotations

import pytest

from predictors.measure import interleaved_samples, time_variants


def test_variants_are_timed_in_turn_round_after_round() -> None:
    calls: list[str] = []
    stats = time_variants(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=2, repeats=4
    )
    # warm-up of each variant first, then every round runs each variant once, in order
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 4
    assert set(stats) == {"a", "b"}
    assert all(s.n == 4 and s.median_ms >= 0 for s in stats.values())


def test_rounds_stop_at_max_rounds_however_long_the_budget() -> None:
    count = [0]

    def run() -> None:
        count[0] += 1

    samples = interleaved_samples([run, run], sync=lambda: None, repeats=3, min_time_s=3600, max_rounds=7)
    assert [len(s) for s in samples] == [7, 7]
    assert count[0] == 14


def test_no_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="a run"):
        time_variants({})
