"""A worker SIGKILLed during training: after the reaper requeues its job, a new worker resumes it once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from nas.pipeline import run_job
from nas.schemas import JobSpec, JobStatus
from nas.settings import Settings
from nas.store import Database, crud
from nas.store.models import utcnow
from predictors import LatencyStats, get_profile, measure_latency
from tests.nas.test_pipeline import SPEC

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import sys
from nas.pipeline import run_job
from nas.settings import Settings
from predictors import get_profile, measure_latency

def measure(items, profile):
    p = get_profile(profile)
    return [measure_latency(m, input_shape=s, profile=p, warmup=2, repeats=5) for m, s in items]

run_job(sys.argv[1], settings=Settings(), measure_latency=measure, owner="killed-worker")
"""


def _measure(items: list[tuple[object, tuple[int, ...]]], profile: str) -> list[LatencyStats]:
    return [
        measure_latency(m, input_shape=s, profile=get_profile(profile), warmup=2, repeats=5)  # type: ignore[arg-type]
        for m, s in items
    ]


@pytest.mark.slow
def test_sigkilled_worker_resumes_from_its_checkpoint_once(tmp_path: Path, fashion_mnist_dir: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'nas.db'}",
        artifact_root=str(tmp_path / "art"),
        data_dir=fashion_mnist_dir,
        scheduler="none",
    )
    db = Database(settings.database_url)
    db.upgrade()
    spec = {**SPEC, "training": {**SPEC["training"], "epochs": 3}}
    with db.session() as s:
        user = crud.create_user(s, name="u")
        job_id = crud.create_job(
            s, owner_id=user.id, name="t", spec=JobSpec.model_validate(spec).model_dump(mode="json")
        ).id
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NAS_DATABASE_URL": settings.database_url,
        "NAS_ARTIFACT_ROOT": settings.artifact_root,
        "NAS_DATA_DIR": str(fashion_mnist_dir),
    }
    proc = subprocess.Popen([sys.executable, "-c", WORKER, job_id], env=env, cwd=ROOT)
    try:
        # Kill it once the first epoch's checkpoint is stored, i.e. during training.
        while proc.poll() is None:
            with db.read() as s:
                if crud.list_artifacts(s, job_id=job_id, kind="checkpoint"):
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the worker ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with db.session() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == JobStatus.running and job.lease_owner == "killed-worker"
        later = utcnow() + timedelta(seconds=settings.lease_s + 1)
        assert crud.reap_expired(s, max_attempts=settings.max_attempts, now=later).requeued == [job_id]
    assert run_job(job_id, settings=settings, measure_latency=_measure, owner="new-worker") == "succeeded"
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.attempt == 2
        checkpoints = crud.list_artifacts(s, job_id=job_id, kind="checkpoint")
        assert sorted(a.meta["epoch"] for a in checkpoints) == [1, 2, 3]  # no epoch trained twice
        statuses = [e.payload["status"] for e in crud.list_events(s, job_id=job_id) if e.kind == "status"]
        assert statuses == ["succeeded"]
