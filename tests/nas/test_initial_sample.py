"""The measure stage's initial sample: FLOPs-stratified by default, uniform on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from nas.pipeline.measure import draw_initial_sample, initial_sample_size
from nas.schemas import SearchSpec
from supernets import make_space
from supernets.training.sampling import FlopsStratifiedSampler

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "examples" / "fmnist-demo.yaml").read_text())


@pytest.fixture(scope="module")
def space():  # type: ignore[no-untyped-def]
    return make_space(DEMO["search_space"], in_channels=1, num_classes=10, image_size=28)


def _log_flops(space, archs) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.log([space.total_cost(a).flops for a in archs])


def test_stratified_sample_covers_the_flops_range_one_per_stratum(space) -> None:  # type: ignore[no-untyped-def]
    n = 15
    archs = draw_initial_sample(space, n, how="flops-stratified", seed=0)
    assert len({a.arch_hash for a in archs}) == n
    assert archs[0] == space.largest() and archs[1] == space.smallest()
    strata = FlopsStratifiedSampler(space)

    def strata_hit(sample) -> int:  # type: ignore[no-untyped-def]
        bounds = [strata.stratum(i, n - 2) for i in range(n - 2)]
        flops = [space.total_cost(a).flops for a in sample[2:]]
        return len({next(i for i, (lo, hi) in enumerate(bounds) if lo <= f < hi) for f in flops})

    # Uniform draws crowd the middle of the range (5-6 of the 13 strata on seeds 0-4); the stratified
    # sample reaches 9-10 of them (the sampler takes the nearest subnet where a stratum's rejection
    # sampling misses, at the extremes) and spreads wider in log-FLOPs on every seed.
    uniform = draw_initial_sample(space, n, how="uniform", seed=0)
    for seed in range(5):
        strat = draw_initial_sample(space, n, how="flops-stratified", seed=seed)
        unif = draw_initial_sample(space, n, how="uniform", seed=seed)
        assert strata_hit(strat) >= strata_hit(unif) + 3
        assert np.std(_log_flops(space, strat[2:])) > 1.5 * np.std(_log_flops(space, unif[2:]))
    assert uniform[:2] == archs[:2]


def test_the_sample_is_seeded_and_uniform_is_the_old_draw(space) -> None:  # type: ignore[no-untyped-def]
    a = draw_initial_sample(space, 12, how="flops-stratified", seed=3)
    assert a == draw_initial_sample(space, 12, how="flops-stratified", seed=3)
    assert a != draw_initial_sample(space, 12, how="flops-stratified", seed=4)
    # uniform: the largest, the smallest, then space.sample's seeded stream without duplicates
    rng = np.random.default_rng(7)
    expected = {x.arch_hash: x for x in (space.largest(), space.smallest())}
    while len(expected) < 12:
        x = space.sample(rng)
        expected.setdefault(x.arch_hash, x)
    assert draw_initial_sample(space, 12, how="uniform", seed=7) == list(expected.values())


def test_an_unknown_kind_is_refused(space) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="initial sample"):
        draw_initial_sample(space, 5, how="sobol", seed=0)


def test_the_initial_sample_size_is_the_specs_or_half_the_budget() -> None:
    assert initial_sample_size(SearchSpec(measure_budget=40, rounds=2)) == 20
    assert initial_sample_size(SearchSpec(measure_budget=40, rounds=0)) == 40
    assert initial_sample_size(SearchSpec(measure_budget=40, rounds=2, initial_measurements=25)) == 25
    assert initial_sample_size(SearchSpec(measure_budget=40, rounds=0, initial_measurements=40)) == 40
    with pytest.raises(ValueError, match=r"initial_measurements \(41\) is more than search\.measure_budget"):
        SearchSpec(measure_budget=40, initial_measurements=41)
