"""The predictor-in-the-loop search on a small real space with an exactly measured objective."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nas.pareto import Constraint, Objective, ParetoFront, hypervolume
from nas.search import (
    Candidate,
    ExactCostPredictor,
    RoundResult,
    SearchResult,
    evolve_on_predictors,
    refine_search,
    search_with_optuna,
    select_candidates,
)
from nas.search.refine import Measure
from predictors.accuracy import XGBAccuracyPredictor
from supernets import Arch, make_space
from supernets.space import SearchSpace
from tests.nas.conftest import SMALL_SPACE

OBJECTIVES = [Objective(metric="macs", goal="max"), Objective(metric="params", goal="min")]


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    config = {**SMALL_SPACE, "expand_ratios": [3, 6]}
    return make_space(config, in_channels=1, num_classes=10, image_size=28)


class CountingMeasure:
    """Measures MACs and params exactly by counting, and remembers every architecture it was given."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.calls: list[list[str]] = []

    def __call__(self, archs: list[Arch]) -> list[dict[str, float]]:
        self.calls.append([a.arch_hash for a in archs])
        costs = [self.space.total_cost(a) for a in archs]
        return [{"macs": float(c.macs), "params": float(c.params)} for c in costs]

    @property
    def hashes(self) -> list[str]:
        return [h for call in self.calls for h in call]


def _learned_predictors(space: SearchSpace) -> dict[str, XGBAccuracyPredictor]:
    return {
        key: XGBAccuracyPredictor(space=space, target=key, pretrain=False, n_estimators=40, seed=0)
        for key in ("macs", "params")
    }


def _initial(space: SearchSpace, n: int, seed: int) -> list[tuple[Arch, dict[str, float]]]:
    rng = np.random.default_rng(seed)
    archs = list({a.arch_hash: a for a in (space.sample(rng) for _ in range(n))}.values())
    return list(zip(archs, CountingMeasure(space)(archs), strict=True))


def _run(space: SearchSpace, measure: Measure, **overrides: Any) -> SearchResult:
    kwargs: dict[str, Any] = {
        "space": space,
        "objectives": OBJECTIVES,
        "predictors": _learned_predictors(space),
        "measure": measure,
        "initial": _initial(space, 8, seed=1),
        "measure_budget": 20,
        "rounds": 3,
        "population": 16,
        "generations": 10,
        "seed": 0,
    }
    kwargs.update(overrides)
    return refine_search(**kwargs)


def test_refine_spends_the_budget_and_never_measures_twice(space: SearchSpace) -> None:
    measure = CountingMeasure(space)
    rounds: list[RoundResult] = []
    result = _run(space, measure, on_round=rounds.append)
    initial_hashes = {a.arch_hash for a, _ in _initial(space, 8, seed=1)}
    assert [len(c) for c in measure.calls] == [4, 4, 4]
    assert len(set(measure.hashes)) == len(measure.hashes)
    assert not initial_hashes & set(measure.hashes)
    assert len(result.points) == 20
    assert [r.round for r in rounds] == [1, 2, 3]
    assert [len(r.measured) for r in rounds] == [4, 4, 4]
    rows = result.predicted_vs_measured()
    assert len(rows) == 12 and all(set(r["predicted"]) == {"macs", "params"} for r in rows)


@pytest.mark.parametrize("engine", ["optuna", "vectorised"])
def test_a_resumed_round_measures_its_stored_choice_and_keeps_the_round_numbers(
    space: SearchSpace, engine: str
) -> None:
    chosen: dict[int, list[Candidate]] = {}
    full_measure = CountingMeasure(space)
    full = _run(space, full_measure, engine=engine, on_chosen=lambda r, c: chosen.setdefault(r, list(c)))
    # Each round's choice is handed out before it is measured, and it is what is measured.
    assert full_measure.calls == [[c.arch.arch_hash for c in chosen[r]] for r in (1, 2, 3)]
    # A resume in round 2: round 1's measurements are part of the initial points; round 2 measures
    # the stored choice (no new search), round 3 searches with round 3's seed: the same run.
    before = _initial(space, 8, seed=1) + [(p.arch, p.values) for p in full.points if p.round == 1]
    measure = CountingMeasure(space)
    resumed = _run(
        space,
        measure,
        engine=engine,
        initial=before,
        first_round=2,
        chosen_before=chosen[2],
        reference=full.reference,
    )
    assert measure.calls == full_measure.calls[1:]
    assert [p.arch.arch_hash for p in resumed.points] == [p.arch.arch_hash for p in full.points]
    assert resumed.history[-1] == pytest.approx(full.history[-1])


def test_refine_improves_hypervolume_deterministically(space: SearchSpace) -> None:
    first = _run(space, CountingMeasure(space))
    second = _run(space, CountingMeasure(space))
    history = first.history
    assert len(history) == 4
    assert all(b >= a for a, b in itertools.pairwise(history))
    assert history[-1] > history[0]
    assert [p.arch.arch_hash for p in first.points] == [p.arch.arch_hash for p in second.points]
    front: ParetoFront = first.front
    assert front.hypervolume == pytest.approx(history[-1])


def test_refine_beats_random_sampling_at_equal_budget(space: SearchSpace) -> None:
    result = _run(space, CountingMeasure(space))
    random_pool = [v for _, v in _initial(space, 20, seed=2)][:20]
    reference = result.reference
    goals = [o.goal for o in OBJECTIVES]
    random_hv = hypervolume([[v["macs"], v["params"]] for v in random_pool], reference, goals)
    assert result.history[-1] > random_hv


def test_constraints_bound_the_front(space: SearchSpace) -> None:
    initial = _initial(space, 8, seed=1)
    cap = float(np.median([v["params"] for _, v in initial]))
    constraint = Constraint(metric="params", max=cap)
    result = _run(space, CountingMeasure(space), constraints=[constraint], initial=initial)
    front = result.front
    assert front.indices
    assert all(result.points[i].values["params"] <= cap for i in front.indices)
    assert result.reference[1] == cap


def test_study_lives_in_rdb_storage_and_opens_with_optuna(space: SearchSpace, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    result = _run(space, CountingMeasure(space), storage_url=url, study_prefix="job7-cpu", rounds=2)
    study = optuna.load_study(study_name="job7-cpu-round2", storage=url)
    assert study.user_attrs["trials_run"] == 16 * 10
    assert 4 <= len(study.trials) <= 16  # the round's elite population
    assert all("predicted" in t.user_attrs for t in study.trials)
    assert result.rounds[1].study_name == "job7-cpu-round2"
    measured = optuna.load_study(study_name="job7-cpu-measured", storage=url)
    assert len(measured.trials) == len(result.points)
    assert {t.user_attrs["arch_hash"] for t in measured.trials} == {p.arch.arch_hash for p in result.points}
    assert len(measured.best_trials) >= 1


def test_stored_study_is_reused_when_finished_and_redone_when_not(space: SearchSpace, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    storage = optuna.storages.RDBStorage(url)
    predictors = {k: ExactCostPredictor(space=space, metric=k) for k in ("macs", "params")}
    kwargs: dict[str, Any] = {
        "space": space,
        "objectives": OBJECTIVES,
        "constraints": [Constraint(metric="params", max=1e5)],
        "predictors": predictors,
        "algorithm": "nsga2",
        "population": 8,
        "generations": 3,
        "seed": 0,
        "storage": storage,
        "study_name": "resume",
    }
    # A study left behind by a crash (no trials_run mark) is deleted and the search rerun.
    optuna.create_study(storage=storage, study_name="resume", directions=["maximize", "minimize"])
    first, trials_run = search_with_optuna(**kwargs)
    assert trials_run == 24 and 0 < len(first) <= 8
    assert len({c.arch.arch_hash for c in first}) == len(first)
    study = optuna.load_study(study_name="resume", storage=url)
    assert all(t.constraints for t in study.trials)
    started = [t.datetime_start for t in study.trials]
    again, trials_run = search_with_optuna(**kwargs)
    study = optuna.load_study(study_name="resume", storage=url)
    assert [t.datetime_start for t in study.trials] == started
    assert [c.arch.arch_hash for c in again] == [c.arch.arch_hash for c in first]
    assert again[0].predicted == first[0].predicted


@pytest.mark.parametrize("algorithm", ["tpe", "random"])
def test_other_algorithms_run(space: SearchSpace, algorithm: str) -> None:
    measure = CountingMeasure(space)
    result = _run(space, measure, algorithm=algorithm, rounds=2, generations=2)
    assert len(result.points) == 20
    assert len(set(measure.hashes)) == 12


def test_vectorised_engine_in_refine(space: SearchSpace) -> None:
    measure = CountingMeasure(space)
    result = _run(space, measure, engine="vectorised", population=32, generations=5)
    assert len(result.points) == 20
    assert len(set(measure.hashes)) == 12
    assert all(r.study_name is None and r.evaluations == 32 * 5 for r in result.rounds)


def test_vectorised_evolution_beats_random_sampling(space: SearchSpace) -> None:
    predictors = {k: ExactCostPredictor(space=space, metric=k) for k in ("macs", "params")}
    candidates, evaluations = evolve_on_predictors(
        space=space,
        objectives=OBJECTIVES,
        constraints=[],
        predictors=predictors,
        population=24,
        generations=8,
        rng=np.random.default_rng(0),
    )
    assert evaluations == 24 * 8
    reference = [0.0, float(space.total_cost(space.largest()).params) * 1.01]
    goals = [o.goal for o in OBJECTIVES]
    evolved = hypervolume(
        [[c.predicted["macs"], c.predicted["params"]] for c in candidates], reference, goals
    )
    rng = np.random.default_rng(0)
    sampled = [space.sample(rng) for _ in range(evaluations)]
    values = [[predictors["macs"].value(a), predictors["params"].value(a)] for a in sampled]
    assert evolved > hypervolume(values, reference, goals)


def test_select_candidates_prefers_feasible_front(space: SearchSpace) -> None:
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(5)]
    predicted = [
        {"macs": 10.0, "params": 5.0},  # front
        {"macs": 5.0, "params": 1.0},  # front
        {"macs": 4.0, "params": 2.0},  # dominated by the second
        {"macs": 20.0, "params": 50.0},  # best macs but infeasible
        {"macs": 7.0, "params": 3.0},  # front
    ]
    candidates = [Candidate(arch=a, predicted=p) for a, p in zip(archs, predicted, strict=True)]
    cons = [Constraint(metric="params", max=10.0)]
    picked = select_candidates(candidates, objectives=OBJECTIVES, constraints=cons, k=3)
    assert {c.predicted["macs"] for c in picked} == {10.0, 5.0, 7.0}
    picked = select_candidates(candidates, objectives=OBJECTIVES, constraints=cons, k=5)
    assert picked[-1].predicted["macs"] == 20.0
    picked = select_candidates(candidates, objectives=OBJECTIVES, constraints=cons, k=2)
    assert {c.predicted["macs"] for c in picked} == {10.0, 5.0}  # the extremes have infinite crowding


def test_refine_rejects_bad_arguments(space: SearchSpace) -> None:
    measure = CountingMeasure(space)
    with pytest.raises(ValueError, match="smaller than the initial sample"):
        _run(space, measure, measure_budget=5)
    with pytest.raises(ValueError, match="no predictor for"):
        _run(space, measure, predictors={"macs": ExactCostPredictor(space=space, metric="macs")})
    with pytest.raises(ValueError, match="unknown search algorithm"):
        _run(space, measure, algorithm="cmaes")
    with pytest.raises(ValueError, match="NSGA-II only"):
        _run(space, measure, engine="vectorised", algorithm="tpe")
    with pytest.raises(ValueError, match="ExactCostPredictor counts"):
        ExactCostPredictor(space=space, metric="latency_ms")
    assert measure.calls == []


def test_refine_rejects_a_measure_that_drops_metrics(space: SearchSpace) -> None:
    def partial(archs: list[Arch]) -> list[dict[str, float]]:
        return [{"macs": 1.0} for _ in archs]

    with pytest.raises(ValueError, match="no value for"):
        _run(space, partial)


def test_vectorised_evolution_keeps_feasible_candidates_under_a_constraint(space: SearchSpace) -> None:
    predictors = {k: ExactCostPredictor(space=space, metric=k) for k in ("macs", "params")}
    rng = np.random.default_rng(4)
    cap = float(np.median([space.total_cost(space.sample(rng)).params for _ in range(50)]))
    candidates, _ = evolve_on_predictors(
        space=space,
        objectives=OBJECTIVES,
        constraints=[Constraint(metric="params", max=cap)],
        predictors=predictors,
        population=16,
        generations=4,
        rng=np.random.default_rng(1),
    )
    assert candidates
    assert all(c.predicted["params"] <= cap for c in candidates)
    assert all(c.predicted["params"] == predictors["params"].value(c.arch) for c in candidates)
