"""Predictor-in-the-loop search (as in DyNAS-T's LINAS): search on predictors, measure the best, refit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna

from nas.pareto import Constraint, Objective, ParetoFront, reference_point
from nas.search.candidate import Candidate
from nas.search.evolve import evolve_on_predictors
from nas.search.protocols import PredictorLike, SpaceLike
from nas.search.select import select_candidates
from nas.search.study import ALGORITHMS, open_storage, search_with_optuna
from supernets.arch import Arch

Measure = Callable[[list[Arch]], list[dict[str, float]]]
ENGINES = ("optuna", "vectorised")


@dataclass(frozen=True)
class MeasuredPoint:
    """A really measured architecture; ``predicted`` is what the predictors said before (None if initial)."""

    arch: Arch
    values: dict[str, float]
    round: int
    predicted: dict[str, float] | None = None


@dataclass(frozen=True)
class RoundResult:
    """What one round did: the points it measured and the front of everything measured so far."""

    round: int
    measured: tuple[MeasuredPoint, ...]
    front: ParetoFront
    hypervolume: float
    evaluations: int
    study_name: str | None
    wall_s: float


@dataclass
class SearchResult:
    """All measured points, the final front, and the hypervolume after the initial sample and each round."""

    points: list[MeasuredPoint]
    front: ParetoFront
    reference: list[float]
    history: list[float]
    rounds: list[RoundResult] = field(default_factory=list)

    def predicted_vs_measured(self) -> list[dict[str, object]]:
        """One row per point chosen by the predictors: arch hash, round, predicted and measured values."""
        return [
            {"arch_hash": p.arch.arch_hash, "round": p.round, "predicted": p.predicted, "measured": p.values}
            for p in self.points
            if p.predicted is not None
        ]


def _check_values(values: list[dict[str, float]], archs: list[Arch], keys: Sequence[str]) -> None:
    if len(values) != len(archs):
        raise ValueError(f"measure returned {len(values)} results for {len(archs)} architectures")
    for v in values:
        missing = [k for k in keys if k not in v]
        if missing:
            raise ValueError(
                f"measure returned no value for {missing}; it must return every objective and constraint"
            )


def refine_search(
    *,
    space: SpaceLike,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    predictors: Mapping[str, PredictorLike],
    measure: Measure,
    initial: Sequence[tuple[Arch, Mapping[str, float]]],
    measure_budget: int,
    rounds: int,
    population: int,
    generations: int,
    algorithm: str = "nsga2",
    engine: str = "optuna",
    seed: int = 0,
    storage_url: str | None = None,
    study_prefix: str = "search",
    reference: Sequence[float] | None = None,
    fitted: bool = False,
    refit: Callable[[list[MeasuredPoint]], None] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    first_round: int = 1,
    chosen_before: Sequence[Candidate] | None = None,
    on_chosen: Callable[[int, list[Candidate]], None] | None = None,
) -> SearchResult:
    """Search on the predictors, measure the chosen candidates, refit, for ``rounds`` rounds.

    ``measure_budget`` counts every real measurement, the ``initial`` sample included;
    each round gets an equal share of the rest (at most ``population`` candidates are
    offered per round; what a round cannot spend carries over). No architecture is
    measured twice.
    The reference point, unless given, comes from ``reference_point`` on the initial sample.

    The predictors learn the measured points before a round only when there are points they
    have not seen: ``fitted`` says they were fitted on ``initial`` already (the first round
    uses them as they are). ``refit(points)`` replaces the default refit (each predictor's
    ``fit`` on every measured point so far), e.g. to learn from shared measurements too.

    A resumed search runs rounds ``first_round..rounds`` with the uninterrupted run's round
    numbers (seeds, study names, budget shares); ``initial`` is then what was measured before
    ``first_round``. ``on_chosen(round, candidates)`` is called with each round's choice before
    it is measured, so that a caller can store it; ``chosen_before`` is such a stored choice of
    ``first_round``, measured as it is instead of searching again (a round resumed after a crash
    measures the candidates the crashed one chose, not a new pick).
    """
    keys = list(dict.fromkeys([o.key for o in objectives] + [c.key for c in constraints]))
    if not objectives:
        raise ValueError("give at least one objective")
    missing = [k for k in keys if k not in predictors]
    if missing:
        raise ValueError(f"no predictor for {missing}; pass one per objective and constraint key")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown search algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown search engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "vectorised" and algorithm != "nsga2":
        raise ValueError("the vectorised engine runs NSGA-II only; use engine='optuna' for tpe or random")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not 1 <= first_round <= rounds:
        raise ValueError(f"first_round must be in 1..{rounds}, got {first_round}")
    if len(initial) < 2:
        raise ValueError("give at least 2 initially measured architectures to fit the predictors on")
    if measure_budget < len(initial):
        raise ValueError(
            f"measure_budget {measure_budget} is smaller than the initial sample of {len(initial)}; "
            "raise the budget"
        )
    points: list[MeasuredPoint] = []
    for arch, values in initial:
        if arch.arch_hash not in {p.arch.arch_hash for p in points}:
            points.append(MeasuredPoint(arch=arch, values={k: float(values[k]) for k in keys}, round=0))
    ref = (
        list(reference)
        if reference is not None
        else reference_point(objectives, constraints=constraints, initial=[p.values for p in points])
    )

    def front_now() -> ParetoFront:
        return ParetoFront.from_points(
            [p.values for p in points], objectives=objectives, reference=ref, constraints=constraints
        )

    history = [front_now().hypervolume]
    result_rounds: list[RoundResult] = []

    def fit_each(measured: list[MeasuredPoint]) -> None:
        archs = [p.arch for p in measured]
        for key in keys:
            predictors[key].fit(archs, np.array([p.values[key] for p in measured]))

    learn = refit or fit_each
    seen = len(points) if fitted else -1  # how many points the predictors learned from
    storage = open_storage(storage_url)
    for r in range(first_round, rounds + 1):
        started = time.perf_counter()
        # The rest of the budget split over the rounds left: what a round could not spend carries over.
        budget = -(-(measure_budget - len(points)) // (rounds - r + 1))
        archs = [p.arch for p in points]
        if seen != len(points):
            learn(list(points))
            seen = len(points)
        study_name: str | None = None
        evaluations = 0
        if r == first_round and chosen_before is not None:
            chosen = list(chosen_before)  # an interrupted attempt's choice: measured, not searched again
        else:
            if engine == "optuna":
                study_name = f"{study_prefix}-round{r}"
                candidates, evaluations = search_with_optuna(
                    space=space, objectives=objectives, constraints=constraints, predictors=predictors,
                    algorithm=algorithm, population=population, generations=generations, seed=seed + r,
                    exclude={p.arch.arch_hash for p in points}, storage=storage, study_name=study_name,
                )  # fmt: skip
            else:
                candidates, evaluations = evolve_on_predictors(
                    space=space, objectives=objectives, constraints=constraints, predictors=predictors,
                    population=population, generations=generations, seeds=archs,
                    rng=np.random.default_rng([seed, r]),  # per round: a resumed round draws the same
                )  # fmt: skip
            measured_hashes = {p.arch.arch_hash for p in points}
            fresh = [c for c in candidates if c.arch.arch_hash not in measured_hashes]
            chosen = select_candidates(fresh, objectives=objectives, constraints=constraints, k=budget)
            if on_chosen is not None:
                on_chosen(r, chosen)
        new_points: list[MeasuredPoint] = []
        if chosen:
            chosen_archs = [c.arch for c in chosen]
            measured = measure(chosen_archs)
            _check_values(measured, chosen_archs, keys)
            new_points = [
                MeasuredPoint(
                    arch=c.arch, values={k: float(v[k]) for k in keys}, round=r, predicted=c.predicted
                )
                for c, v in zip(chosen, measured, strict=True)
            ]
            points.extend(new_points)
        front = front_now()
        history.append(front.hypervolume)
        result = RoundResult(
            round=r, measured=tuple(new_points), front=front, hypervolume=front.hypervolume,
            evaluations=evaluations, study_name=study_name, wall_s=time.perf_counter() - started,
        )  # fmt: skip
        result_rounds.append(result)
        if storage is not None:
            record_measured(
                space, points, objectives=objectives, storage=storage, study_name=f"{study_prefix}-measured"
            )
        if on_round is not None:
            on_round(result)
    return SearchResult(
        points=points, front=front_now(), reference=ref, history=history, rounds=result_rounds
    )


def record_measured(
    space: SpaceLike,
    points: Sequence[MeasuredPoint],
    *,
    objectives: Sequence[Objective],
    storage: optuna.storages.BaseStorage,
    study_name: str,
) -> optuna.Study:
    """Store the real measurements as an Optuna study, so Optuna's tools show the measured front."""
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=["maximize" if o.goal == "max" else "minimize" for o in objectives],
        load_if_exists=True,
    )
    dims = space.choices()
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        k: optuna.distributions.CategoricalDistribution(v) for k, v in dims.items()
    }
    recorded = {t.user_attrs.get("arch_hash") for t in study.get_trials(deepcopy=False)}
    for p in points:
        if p.arch.arch_hash in recorded:
            continue
        study.add_trial(
            optuna.trial.create_trial(
                params=space.choices_of(p.arch),
                distributions=distributions,
                values=[p.values[o.key] for o in objectives],
                user_attrs={"arch_hash": p.arch.arch_hash, "round": p.round, "measured": p.values},
            )
        )
    return study
