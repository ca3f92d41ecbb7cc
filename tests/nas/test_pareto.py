"""Pareto fronts and hypervolume against brute force on small cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.pareto import (
    Constraint,
    Objective,
    ParetoFront,
    crowding_distance,
    fronts_per_constraint_set,
    hypervolume,
    non_dominated,
    non_dominated_ranks,
    reference_point,
)


def _brute_non_dominated(pts: np.ndarray, goals: list[str]) -> list[int]:
    sign = np.array([-1.0 if g == "max" else 1.0 for g in goals])
    p = pts * sign
    out = []
    for i in range(len(p)):
        dominated = any(np.all(p[j] <= p[i]) and np.any(p[j] < p[i]) for j in range(len(p)) if j != i)
        if not dominated:
            out.append(i)
    return out


def _grid_hypervolume(pts: np.ndarray, ref: np.ndarray) -> float:
    """Counts the unit cells of an integer grid dominated by integer points (minimisation): exact."""
    d = pts.shape[1]
    lo = pts.min(axis=0).astype(int)
    count = 0
    for cell in itertools.product(*[range(int(lo[k]), int(ref[k])) for k in range(d)]):
        corner = np.array(cell, dtype=float)
        if np.any(np.all(pts <= corner, axis=1)):
            count += 1
    return float(count)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_non_dominated_matches_brute_force(d: int) -> None:
    rng = np.random.default_rng(d)
    goals = ["max", "min", "min", "max"][:d]
    for _ in range(20):
        pts = rng.integers(0, 5, size=(rng.integers(1, 25), d)).astype(float)
        assert non_dominated(pts, goals) == _brute_non_dominated(pts, goals)


def test_non_dominated_ranks_peel_fronts() -> None:
    rng = np.random.default_rng(7)
    pts = rng.integers(0, 6, size=(40, 3)).astype(float)
    goals = ["min", "max", "min"]
    ranks = non_dominated_ranks(pts, goals)
    remaining = list(range(len(pts)))
    rank = 0
    while remaining:
        front = [remaining[i] for i in _brute_non_dominated(pts[remaining], goals)]
        assert sorted(np.flatnonzero(ranks == rank).tolist()) == sorted(front)
        remaining = [i for i in remaining if i not in front]
        rank += 1


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_exact_against_grid_count(d: int) -> None:
    rng = np.random.default_rng(10 + d)
    side = {2: 12, 3: 8, 4: 6}[d]
    ref = np.full(d, float(side))
    for _ in range(8):
        pts = rng.integers(0, side, size=(rng.integers(1, 12), d)).astype(float)
        expected = _grid_hypervolume(pts, ref)
        assert hypervolume(pts, ref.tolist(), ["min"] * d) == pytest.approx(expected, abs=1e-9)


def test_hypervolume_of_maximised_objectives_mirrors_minimised() -> None:
    rng = np.random.default_rng(3)
    pts = rng.random((15, 3))
    ref = [1.1, 1.2, 1.3]
    goals = ["max", "min", "max"]
    mirrored = pts * np.array([-1.0, 1.0, -1.0])
    mirrored_ref = [-1.1, 1.2, -1.3]
    assert hypervolume(mirrored, mirrored_ref, goals) == pytest.approx(hypervolume(pts, ref, ["min"] * 3))


def test_hypervolume_against_monte_carlo_on_floats() -> None:
    rng = np.random.default_rng(5)
    pts = rng.random((10, 3))
    ref = np.ones(3)
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for p in pts:
        covered |= np.all(samples >= p, axis=1)
    estimate = covered.mean()
    exact = hypervolume(pts, ref.tolist(), ["min"] * 3)
    assert exact == pytest.approx(estimate, abs=4 * np.sqrt(estimate * (1 - estimate) / len(samples)))


def test_points_outside_reference_add_nothing() -> None:
    assert hypervolume([[0.5, 3.0]], [0.0, 2.0], ["max", "min"]) == 0.0
    assert hypervolume([[0.5, 1.0]], [0.0, 2.0], ["max", "min"]) == pytest.approx(0.5)
    assert hypervolume(np.zeros((0, 2)), [0.0, 2.0], ["max", "min"]) == 0.0


def test_hypervolume_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one column per goal"):
        hypervolume([[1.0, 2.0, 3.0]], [0.0, 0.0], ["min", "min"])
    with pytest.raises(ValueError, match="'max' or 'min'"):
        non_dominated([[1.0]], ["maximise"])


def test_crowding_distance_marks_extremes_infinite() -> None:
    pts = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    dist = crowding_distance(pts, ["min", "min"])
    assert np.isinf(dist[0]) and np.isinf(dist[3])
    assert dist[1] == pytest.approx(3 / 4 + 3 / 4)
    assert dist[2] == pytest.approx(3 / 4 + 3 / 4)


def test_reference_point_from_constraints_and_initial_sample() -> None:
    objectives = [
        Objective(metric="accuracy", goal="max"),
        Objective(metric="latency_ms", goal="min", hardware="cpu-fp32"),
        Objective(metric="params", goal="min"),
    ]
    constraints = [
        Constraint(metric="latency_ms", hardware="cpu-fp32", max=4.0),
        Constraint(metric="latency_ms", hardware="cpu-fp32", max=2.0),
    ]
    initial = [
        {"accuracy": 0.8, "latency_ms@cpu-fp32": 1.0, "params": 1000.0},
        {"accuracy": 0.6, "latency_ms@cpu-fp32": 3.0, "params": 3000.0},
    ]
    assert reference_point(objectives, constraints=constraints, initial=initial) == [0.0, 2.0, 6000.0]
    assert reference_point(objectives, initial=initial) == [0.0, 6.0, 6000.0]
    with pytest.raises(ValueError, match="no reference for objective 'params'"):
        reference_point(objectives, constraints=constraints, initial=[])


def test_constraint_validation_and_violation() -> None:
    with pytest.raises(ValueError, match="neither 'max' nor 'min'"):
        Constraint(metric="params")
    with pytest.raises(ValueError, match="exceeds max"):
        Constraint(metric="params", min=5.0, max=1.0)
    c = Constraint(metric="latency_ms", hardware="cpu-fp32", max=2.0)
    assert c.violation({"latency_ms@cpu-fp32": 2.5}) == pytest.approx(0.5)
    assert c.satisfied({"latency_ms@cpu-fp32": 2.0})
    spec = Constraint.from_spec({"metric": "latency_ms", "hardware": "cpu-fp32", "max": 2})
    assert spec == c
    assert Objective.from_spec({"metric": "accuracy", "goal": "max"}).key == "accuracy"
    with pytest.raises(ValueError, match="goal must be"):
        Objective(metric="accuracy", goal="up")  # type: ignore[arg-type]


def test_fronts_per_constraint_set_share_one_pool() -> None:
    objectives = [
        Objective(metric="accuracy", goal="max"),
        Objective(metric="latency_ms", goal="min", hardware="hw"),
    ]
    pool = [
        {"accuracy": 0.70, "latency_ms@hw": 0.5},
        {"accuracy": 0.80, "latency_ms@hw": 1.5},
        {"accuracy": 0.85, "latency_ms@hw": 3.0},
        {"accuracy": 0.75, "latency_ms@hw": 3.5},
    ]
    sets = {f"{b}ms": [Constraint(metric="latency_ms", hardware="hw", max=float(b))] for b in (1, 2, 4)}
    fronts = fronts_per_constraint_set(pool, objectives=objectives, constraint_sets=sets, initial=pool)
    assert fronts["1ms"].indices == (0,)
    assert fronts["2ms"].indices == (1, 0)
    assert fronts["4ms"].indices == (2, 1, 0)
    assert fronts["1ms"].hypervolume == pytest.approx(0.70 * 0.5)
    assert fronts["4ms"].hypervolume == pytest.approx(0.85 * 1.0 + 0.80 * 1.5 + 0.70 * 1.0)
    front = ParetoFront.from_points(pool, objectives=objectives, reference=[0.0, 4.0])
    assert front.hypervolume == pytest.approx(fronts["4ms"].hypervolume)
