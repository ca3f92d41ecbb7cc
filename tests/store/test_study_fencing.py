"""Optuna studies are fenced by attempt: a stale run cannot write to or delete the running attempt's.

Real parts: the service's SQLite database as Optuna's RDB storage, a small real search space, and
exact cost predictors (MACs and params counted, so the search is the real search_with_optuna).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.pareto import Objective
from nas.search import ExactCostPredictor, search_with_optuna
from nas.search.study import TRIALS_RUN_ATTR, attempt_prefix, open_storage
from nas.store import Database
from supernets import make_space
from supernets.space import SearchSpace

OBJECTIVES = [Objective(metric="macs", goal="max"), Objective(metric="params", goal="min")]


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    config = {
        "family": "ofa-mbv3",
        "kernel_sizes": [3, 5],
        "expand_ratios": [3, 6],
        "depths": [1, 2],
        "width_mults": [0.75, 1.0],
        "resolutions": [20, 28],
    }
    return make_space(config, in_channels=1, num_classes=10, image_size=28)


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    Database(url).upgrade()  # the service's own schema beside Optuna's, as in a job
    return url


def _search(space: SearchSpace, storage: optuna.storages.BaseStorage, attempt: int) -> list[str]:
    predictors = {k: ExactCostPredictor(space=space, metric=k) for k in ("macs", "params")}
    elite, _ = search_with_optuna(
        space=space, objectives=OBJECTIVES, constraints=[], predictors=predictors, algorithm="nsga2",
        population=6, generations=2, seed=3, storage=storage,
        study_name=f"{attempt_prefix('job-x', attempt)}-round1",
    )  # fmt: skip
    return [c.arch.arch_hash for c in elite]


def _names(storage: optuna.storages.BaseStorage) -> set[str]:
    return {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}


def test_a_stale_attempt_neither_deletes_nor_writes_the_running_attempts_study(
    space: SearchSpace, storage_url: str
) -> None:
    storage = open_storage(storage_url)
    assert storage is not None
    # Attempt 2 now runs the job and is midway through round 1's search: its study is unfinished.
    running = f"{attempt_prefix('job-x', 2)}-round1"
    study = optuna.create_study(storage=storage, study_name=running, directions=["maximize", "minimize"])
    study.set_user_attr("algorithm", "nsga2")
    # Attempt 1 lost its lease but still runs round 1 (a stale worker): it searches and stores.
    stale = _search(space, storage, attempt=1)
    assert stale
    kept = optuna.load_study(study_name=running, storage=storage)
    assert kept.user_attrs == {"algorithm": "nsga2"} and not kept.trials  # not deleted, not written
    assert _names(storage) == {running, f"{attempt_prefix('job-x', 1)}-round1"}


def test_a_later_attempt_reuses_a_finished_earlier_study_and_deletes_only_its_own(
    space: SearchSpace, storage_url: str
) -> None:
    storage = open_storage(storage_url)
    assert storage is not None
    first = _search(space, storage, attempt=1)  # attempt 1 finished round 1's search, then died
    own = f"{attempt_prefix('job-x', 2)}-round1"
    optuna.create_study(storage=storage, study_name=own)  # attempt 2's own, left unfinished by a crash
    assert _search(space, storage, attempt=2) == first  # reused read-only: the same elite
    assert own not in _names(storage)  # its own unfinished study was dropped
    earlier = optuna.load_study(study_name=f"{attempt_prefix('job-x', 1)}-round1", storage=storage)
    assert TRIALS_RUN_ATTR in earlier.user_attrs and len(earlier.trials) == len(first)
