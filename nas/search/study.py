"""Optuna multi-objective search over the predictors, in ask/tell batches, optionally in an RDB storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from nas.pareto import Constraint, Objective
from nas.search.protocols import PredictorLike, SpaceLike, predict_values
from supernets.arch import Arch

ALGORITHMS = ("nsga2", "tpe", "random")
PREDICTED_ATTR = "predicted"


@dataclass(frozen=True)
class Candidate:
    """An architecture the search on predictors found, with the predicted value of every metric."""

    arch: Arch
    predicted: dict[str, float]


def make_sampler(
    algorithm: str, *, population: int, seed: int, constraints: Sequence[Constraint]
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``algorithm``; constraints go to samplers that support them."""
    constraints_func = _constraints_func(constraints) if constraints else None
    if algorithm == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=population, seed=seed, constraints_func=constraints_func
        )
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints_func, multivariate=True)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown search algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def _constraints_func(
    constraints: Sequence[Constraint],
) -> Any:
    def violations(trial: optuna.trial.FrozenTrial) -> list[float]:
        predicted = trial.user_attrs.get(PREDICTED_ATTR, {})
        return [c.violation(predicted) for c in constraints]

    return violations


def open_storage(storage_url: str | None) -> optuna.storages.BaseStorage | None:
    """The service database as Optuna storage (``None`` keeps the study in memory)."""
    if storage_url is None:
        return None
    return optuna.storages.RDBStorage(storage_url)


def search_with_optuna(
    *,
    space: SpaceLike,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    predictors: Mapping[str, PredictorLike],
    algorithm: str,
    population: int,
    generations: int,
    seed: int,
    storage: optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
) -> tuple[list[Candidate], optuna.Study]:
    """Run ``population * generations`` trials on the predictors, asked and told one population at a time.

    A study that already exists under ``study_name`` resumes: only the missing trials run.
    Returns every distinct architecture the study evaluated, with its predictions.
    """
    if population < 2 or generations < 1:
        raise ValueError(f"population must be >= 2 and generations >= 1; got {population} and {generations}")
    sampler = make_sampler(algorithm, population=population, seed=seed, constraints=constraints)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        directions=["maximize" if o.goal == "max" else "minimize" for o in objectives],
        load_if_exists=True,
    )
    dims = space.choices()
    keys = list(dict.fromkeys([o.key for o in objectives] + [c.key for c in constraints]))
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    remaining = population * generations - done
    while remaining > 0:
        batch = [study.ask() for _ in range(min(population, remaining))]
        archs = [
            space.arch_from_choices({k: t.suggest_categorical(k, v) for k, v in dims.items()}) for t in batch
        ]
        predicted = predict_values(predictors, archs, keys)
        for i, trial in enumerate(batch):
            values = {k: float(predicted[k][i]) for k in keys}
            trial.set_user_attr(PREDICTED_ATTR, values)
            trial.set_user_attr("arch_hash", archs[i].arch_hash)
            study.tell(trial, [values[o.key] for o in objectives])
        remaining -= len(batch)
    seen: dict[str, Candidate] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        arch = space.arch_from_choices(t.params)
        seen.setdefault(arch.arch_hash, Candidate(arch=arch, predicted=dict(t.user_attrs[PREDICTED_ATTR])))
    return list(seen.values()), study
