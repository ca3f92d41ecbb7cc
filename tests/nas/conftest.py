"""Fixtures of the pipeline's fault tests: job databases, a worker process to SIGKILL, front summaries."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nas.schemas import JobSpec
from nas.settings import Settings
from nas.store import Database, crud
from nas.store.models import utcnow

ROOT = Path(__file__).resolve().parents[2]

# The small OFA-MobileNetV3 space the pipeline and export tests search and build (64 x 2 subnets).
SMALL_SPACE: dict[str, Any] = {
    "family": "ofa-mbv3",
    "kernel_sizes": [3, 5],
    "expand_ratios": [3, 4],
    "depths": [1, 2],
    "width_mults": [0.75, 1.0],
    "resolutions": [20, 28],
}

# A worker process running one job with the real pipeline and the real measurement protocol. With a
# kill condition it SIGKILLs itself the moment the condition holds in the database (a thread polls
# it every 20 ms: precise timing of a real SIGKILL, without touching the pipeline's code).
WORKER = """
import os, signal, sys, threading, time
import torch
from nas.pipeline import run_job
from nas.settings import Settings
from nas.store import Database, crud
from predictors import get_profile, measure_latency

torch.set_num_threads(1)  # as the test process: equal runs give bit-equal weights
job_id, owner, when = sys.argv[1], sys.argv[2], sys.argv[3]

def due(db):
    with db.read() as s:
        if when == "checkpoint":
            return bool(crud.list_artifacts(s, job_id=job_id, kind="checkpoint"))
        subs = [x for x in crud.list_subnets(s, job_id=job_id) if x.accuracy_val is not None]
        if when == "measured":
            return len(subs) >= 2
        if when == "searched":
            return any(x.source == "search" for x in subs)
        if when == "second-round":  # a subnet of round 2 measured, after round 1's front was stored
            first = [f for f in crud.front_history(s, job_id=job_id) if f.round == 1]
            return bool(first) and any(
                x.source == "search" and x.created_at > first[0].created_at for x in subs
            )
    raise SystemExit(f"unknown kill condition {when!r}")

def killer():
    db = Database(Settings().database_url)
    while not due(db):
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)

if when != "never":
    threading.Thread(target=killer, daemon=True).start()

def measure(items, profile):
    p = get_profile(profile)
    return [measure_latency(m, input_shape=s, profile=p, warmup=2, repeats=5) for m, s in items]

print(run_job(job_id, settings=Settings(), measure_latency=measure, owner=owner))
"""


@dataclass
class JobDb:
    """A fresh service database and artifact root holding one user; makes jobs from specs."""

    settings: Settings
    db: Database
    owner_id: int

    def create_job(self, spec: dict[str, Any], name: str = "t") -> str:
        with self.db.session() as s:
            data = JobSpec.model_validate(spec).model_dump(mode="json")
            return crud.create_job(s, owner_id=self.owner_id, name=name, spec=data).id

    def expire_and_reap(self, job_id: str) -> None:
        """What the reaper does once the dead worker's lease has run out: the job goes back to the queue."""
        with self.db.session() as s:
            later = utcnow() + timedelta(seconds=self.settings.lease_s + 1)
            reaped = crud.reap_expired(s, max_attempts=self.settings.max_attempts, now=later)
            assert reaped.requeued == [job_id]


def make_job_db(folder: Path, data_dir: Path) -> JobDb:
    """A service database (SQLite, migrated) and artifact root under ``folder``, with one user."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database_url=f"sqlite:///{folder / 'nas.db'}",
        artifact_root=str(folder / "art"),
        data_dir=data_dir,
        scheduler="none",
    )
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        owner_id = crud.create_user(s, name="u").id
    return JobDb(settings=settings, db=db, owner_id=owner_id)


@pytest.fixture()
def job_db_factory(tmp_path: Path, fashion_mnist_dir: Path) -> Callable[[str], JobDb]:
    made: list[Database] = []

    def make(name: str) -> JobDb:
        jobs = make_job_db(tmp_path / name, fashion_mnist_dir)
        made.append(jobs.db)
        return jobs

    yield make  # type: ignore[misc]
    for db in made:
        db.dispose()


@pytest.fixture()
def job_db(job_db_factory: Callable[[str], JobDb]) -> JobDb:
    return job_db_factory("main")


def run_worker_until_killed(jobs: JobDb, job_id: str, *, when: str, owner: str = "killed-worker") -> None:
    """Run ``job_id`` in a worker process that SIGKILLs itself once ``when`` holds; wait for it to die."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NAS_DATABASE_URL": jobs.settings.database_url,
        "NAS_ARTIFACT_ROOT": jobs.settings.artifact_root,
        "NAS_DATA_DIR": str(jobs.settings.data_dir),
    }
    log_path = Path(jobs.settings.artifact_root).parent / f"worker-{owner}.log"
    # Output to a file, not a pipe: a helper process the worker started (a compile pool) would hold
    # a pipe open after the worker's death. Its own session, so that such leftovers die with it.
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, job_id, owner, when],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            returncode = proc.wait(timeout=900)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert returncode == -signal.SIGKILL, (
        f"the worker was to be killed ({when}) but exited {returncode}:\n{log_path.read_text()[-3000:]}"
    )


def final_front(db: Database, job_id: str) -> dict[str, Any]:
    """The job's final front, comparable across databases: its points by arch hash, and hypervolume."""
    with db.read() as s:
        front = crud.latest_front(s, job_id=job_id, final_only=True)
        assert front is not None, f"job {job_id} has no final front"
        points = {
            sub.arch_hash: (sub.accuracy_val, sub.accuracy_test, sub.measurement_key)
            for _, sub in crud.front_points(s, front_id=front.id)
        }
        return {"points": points, "hypervolume": front.hypervolume}
