"""A worker SIGKILLed during training, measurement or a search round (the first or a later one): after
the reaper requeues its job, a new worker resumes it from storage, once, and its final front equals an
uninterrupted run's.

Latency is timed wall-clock, so two runs only give equal fronts on equal latencies: the interrupted
job runs on a database whose shared latency table holds the reference run's measurements (as any
later job of the same geometry would find them); every accuracy, predictor and search step is its
own, recomputed from the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas.pipeline import run_job
from nas.schemas import JobStatus
from nas.store import Database, crud
from nas.store._measured import MEASUREMENT_STATS
from nas.store.models import Measurement
from supernets import Arch
from tests.nas.conftest import JobDb, final_front, make_job_db, run_worker_until_killed
from tests.nas.test_pipeline import SPEC, LocalMeasurer

pytestmark = pytest.mark.slow

# Every candidate a search round finds fits its share of the budget (population 4 <= 10 - 5).
FAULT_SPEC: dict[str, Any] = {
    **SPEC,
    "search": {**SPEC["search"], "measure_budget": 10, "rounds": 1, "population": 4, "generations": 2},
}
# Two rounds of 3 measurements each from 4 candidates: a round's pick out of its candidates matters,
# and so do the later round's seed and study (a resumed round 2 must not rerun round 1's).
TWO_ROUNDS_SPEC: dict[str, Any] = {
    **SPEC,
    "search": {**SPEC["search"], "measure_budget": 12, "rounds": 2, "population": 4, "generations": 2},
}


def _reference_run(folder: Path, data_dir: Path, spec: dict[str, Any]) -> tuple[Database, str]:
    """An uninterrupted run of ``spec`` in a database of its own."""
    jobs = make_job_db(folder, data_dir)
    job_id = jobs.create_job(spec)
    status = run_job(job_id, settings=jobs.settings, measure_latency=LocalMeasurer(), owner="ref")
    assert status == "succeeded"
    return jobs.db, job_id


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, fashion_mnist_dir: Path) -> tuple[Database, str]:
    return _reference_run(tmp_path_factory.mktemp("reference"), fashion_mnist_dir, FAULT_SPEC)


@pytest.fixture(scope="module")
def reference_two_rounds(
    tmp_path_factory: pytest.TempPathFactory, fashion_mnist_dir: Path
) -> tuple[Database, str]:
    return _reference_run(tmp_path_factory.mktemp("reference2"), fashion_mnist_dir, TWO_ROUNDS_SPEC)


def copy_latencies(source: Database, target: Database) -> int:
    """The shared latency table of ``source``, put into ``target``."""
    with source.read() as s:
        rows = s.query(Measurement).all()
    with target.session() as s:
        for m in rows:
            env = dict(m.env or {})
            stats = {k: getattr(m, k) for k in MEASUREMENT_STATS} | env.pop("stats", {})
            crud.put_measurement(
                s, profile=m.profile, arch_hash=m.arch_hash, resolution=m.resolution, batch=m.batch,
                stats=stats, env=env,
            )  # fmt: skip
    return len(rows)


def _kill_resume_compare(
    reference: tuple[Database, str],
    jobs: JobDb,
    *,
    when: str,
    stage: str,
    spec: dict[str, Any] = FAULT_SPEC,
) -> None:
    ref_db, ref_job = reference
    assert copy_latencies(ref_db, jobs.db) > 0
    job_id = jobs.create_job(spec)
    run_worker_until_killed(jobs, job_id, when=when)
    with jobs.db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == JobStatus.running and job.lease_owner == "killed-worker"
        # The stage the worker died in (job.stage follows progress reports, which lag a kill).
        started = [
            e.payload["stage"]
            for e in crud.list_events(s, job_id=job_id)
            if e.kind == "stage" and e.payload.get("status") == "started"
        ]
        assert started[-1] == stage, f"killed in stage {started[-1]}, not {stage}"
    jobs.expire_and_reap(job_id)
    measurer = LocalMeasurer()
    status = run_job(job_id, settings=jobs.settings, measure_latency=measurer, owner="new-worker")
    assert status == "succeeded"
    assert measurer.count == 0  # every latency was already in the shared table
    assert final_front(jobs.db, job_id) == final_front(ref_db, ref_job)
    with jobs.db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.attempt == 2
        statuses = [e.payload["status"] for e in crud.list_events(s, job_id=job_id) if e.kind == "status"]
        assert statuses == ["succeeded"]
        finals = [f for f in crud.front_history(s, job_id=job_id) if f.final]
        assert len(finals) == 1  # one final front: the job was not run twice
        checkpoints = crud.list_artifacts(s, job_id=job_id, kind="checkpoint")
        assert sorted(a.meta["epoch"] for a in checkpoints) == [1, 2]  # no epoch trained twice


def test_killed_during_training_resumes_from_its_checkpoint(
    reference: tuple[Database, str], job_db: JobDb
) -> None:
    _kill_resume_compare(reference, job_db, when="checkpoint", stage="train")
    with job_db.db.read() as s:
        (job,) = crud.list_jobs(s, owner_id=job_db.owner_id)
        logs = [e.payload.get("message", "") for e in crud.list_events(s, job_id=job.id) if e.kind == "log"]
        assert "resumed training after epoch 1" in logs


def test_killed_during_measurement_resumes(reference: tuple[Database, str], job_db: JobDb) -> None:
    _kill_resume_compare(reference, job_db, when="measured", stage="measure")


def test_killed_during_a_search_round_resumes(reference: tuple[Database, str], job_db: JobDb) -> None:
    _kill_resume_compare(reference, job_db, when="searched", stage="search")


def test_killed_during_the_second_search_round_resumes(
    reference_two_rounds: tuple[Database, str], job_db: JobDb
) -> None:
    _kill_resume_compare(
        reference_two_rounds, job_db, when="second-round", stage="search", spec=TWO_ROUNDS_SPEC
    )
    with job_db.db.read() as s:
        (job,) = crud.list_jobs(s, owner_id=job_db.owner_id)
        chosen = [e.payload for e in crud.list_events(s, job_id=job.id) if e.kind == "candidates"]
        subnets = {x.arch_hash: x for x in crud.list_subnets(s, job_id=job.id)}
    # Round 2's choice was stored once (by the killed worker) and measured as it was after the resume.
    assert [c["round"] for c in chosen] == [1, 2]
    round2 = {Arch.from_dict(c["arch"]).arch_hash for c in chosen[1]["candidates"]}
    assert round2 and all(subnets[h].accuracy_val is not None for h in round2)
