"""Optuna multi-objective search over the predictors, in ask/tell batches, kept in an RDB storage.

The study runs in memory; its elite population (the best ``population`` distinct,
not yet measured architectures in NSGA-II order) is then stored under the round's
study name. Storing every trial would cost more than the search: Optuna's RDB
storage writes each parameter of each trial as its own row.

Fencing: a job's studies are named per attempt (``attempt_prefix``: ``job-ID@attempt2-round3``), so
a stale run, whose lease another attempt took over, writes and deletes only its own attempt's
studies, never those of the attempt that now runs the job. A finished study of an earlier attempt
of the same round is reused read-only (a resumed job searches that round as the killed one did).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import optuna

from nas.pareto import Constraint, Objective
from nas.search.candidate import Candidate
from nas.search.protocols import PredictorLike, SpaceLike, predict_values
from nas.search.select import select_candidates

ALGORITHMS = ("nsga2", "tpe", "random")
PREDICTED_ATTR = "predicted"
TRIALS_RUN_ATTR = "trials_run"
SQLITE_BUSY_TIMEOUT_S = 30.0
ATTEMPT_MARK = "@attempt"


def attempt_prefix(prefix: str, attempt: int) -> str:
    """The study-name prefix of one attempt of a job: its studies are its own (see the module doc)."""
    return f"{prefix}{ATTEMPT_MARK}{attempt}"


def _same_round_earlier(name: str, names: Collection[str]) -> list[str]:
    """Studies of the same round under earlier attempts of ``name``'s (newest first), or []."""
    base, mark, tail = name.partition(ATTEMPT_MARK)
    attempt, dash, rest = tail.partition("-")
    if not mark or not attempt.isdigit() or not dash:
        return []
    earlier = (f"{base}{ATTEMPT_MARK}{k}-{rest}" for k in range(int(attempt) - 1, 0, -1))
    return [n for n in earlier if n in names]


def make_sampler(algorithm: str, *, population: int, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``algorithm``; NSGA-II and TPE honour the trials' constraints."""
    if algorithm == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown search algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def constraint_name(constraint: Constraint) -> str:
    """How a constraint is named on Optuna trials, e.g. ``latency_ms@cpu-fp32<=2``."""
    bounds = [f"<={constraint.max:g}"] if constraint.max is not None else []
    bounds += [f">={constraint.min:g}"] if constraint.min is not None else []
    return constraint.key + ",".join(bounds)


def open_storage(storage_url: str | None) -> optuna.storages.BaseStorage | None:
    """The service database as Optuna storage (``None`` keeps studies in memory only)."""
    if storage_url is None:
        return None
    if storage_url.startswith("sqlite"):
        # The API and the workers write the same file: wait for its lock instead of failing at once.
        engine_kwargs: dict[str, object] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    else:
        # A restarted PostgreSQL leaves dead pooled connections: test each before use.
        engine_kwargs = {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(storage_url, engine_kwargs=engine_kwargs)


def _completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _stored_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study | None:
    """The stored study of a finished search: ``name``'s own, else an earlier attempt's of the same
    round (read only). A study of ``name`` left unfinished by a crash is deleted; another attempt's
    never is."""
    names = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        if TRIALS_RUN_ATTR in study.user_attrs:
            return study
        optuna.delete_study(study_name=name, storage=storage)
    for other in _same_round_earlier(name, names):
        study = optuna.load_study(study_name=other, storage=storage)
        if TRIALS_RUN_ATTR in study.user_attrs:
            return study
    return None


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
    exclude: Collection[str] = (),
    storage: optuna.storages.BaseStorage | None = None,
    study_name: str = "search",
) -> tuple[list[Candidate], int]:
    """Run ``population * generations`` trials on the predictors, asked and told one population at a time.

    Returns the elite: up to ``population`` distinct architectures whose hash is not in
    ``exclude``, best first, and the number of trials run. With a ``storage`` the elite is
    stored as the study ``study_name``; a finished study there is reused instead of rerun.
    """
    if population < 2 or generations < 1:
        raise ValueError(f"population must be >= 2 and generations >= 1; got {population} and {generations}")
    stored = None if storage is None else _stored_study(storage, study_name)
    if stored is not None:
        return [_candidate(space, t) for t in _completed(stored)], int(stored.user_attrs[TRIALS_RUN_ATTR])
    n_trials = population * generations
    memory = optuna.create_study(
        study_name=study_name,
        sampler=make_sampler(algorithm, population=population, seed=seed),
        directions=["maximize" if o.goal == "max" else "minimize" for o in objectives],
    )
    _run_trials(memory, space, objectives, constraints, predictors, population, n_trials)
    trial_of: dict[str, optuna.trial.FrozenTrial] = {}
    for t in _completed(memory):
        if t.user_attrs["arch_hash"] not in exclude:
            trial_of.setdefault(t.user_attrs["arch_hash"], t)
    everything = [_candidate(space, t) for t in trial_of.values()]
    elite = select_candidates(everything, objectives=objectives, constraints=constraints, k=population)
    if storage is not None:
        study = optuna.create_study(
            storage=storage, study_name=study_name, directions=memory.directions, load_if_exists=True
        )
        study.add_trials([trial_of[c.arch.arch_hash] for c in elite])
        study.set_user_attr("algorithm", algorithm)
        study.set_user_attr("seed", seed)
        study.set_user_attr(TRIALS_RUN_ATTR, n_trials)  # written last: marks the study finished
    return elite, n_trials


def _candidate(space: SpaceLike, trial: optuna.trial.FrozenTrial) -> Candidate:
    return Candidate(
        arch=space.arch_from_choices(trial.params), predicted=dict(trial.user_attrs[PREDICTED_ATTR])
    )


def _run_trials(
    study: optuna.Study,
    space: SpaceLike,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    predictors: Mapping[str, PredictorLike],
    population: int,
    n_trials: int,
) -> None:
    dims = space.choices()
    keys = list(dict.fromkeys([o.key for o in objectives] + [c.key for c in constraints]))
    names = [constraint_name(c) for c in constraints]
    remaining = n_trials
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
            for name, c in zip(names, constraints, strict=True):
                trial.set_constraint(name, c.violation(values))
            study.tell(trial, [values[o.key] for o in objectives])
        remaining -= len(batch)
