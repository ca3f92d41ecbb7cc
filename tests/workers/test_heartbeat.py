"""A worker waiting for a latency measurement longer than its lease keeps the job's lease alive.

Real parts: the embedded Ray (loopback), the Ray latency task and measurement protocol, a SQLite
database, the lease functions and the reaper thread running beside the wait. The model's forward
pass sleeps, so one measurement (warm-up and timed runs) lasts several leases.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import torch
from torch import nn

from nas.settings import Settings
from nas.store import Database, Job, crud
from workers.ray_scheduler import init_ray
from workers.reaper import Reaper
from workers.tasks import LeaseHeartbeat, ray_latency_measurer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LEASE_S = 2.0


class Sleepy(nn.Module):
    """A model whose forward pass takes 150 ms: a measurement of it (10 warm-up and 30 timed runs at
    least) takes 6 s or more, three leases of 2 s. At 50 ms a calm measurement took 2.1 s, one lease."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.15)
        return x * 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Database]]:
    tmp = tmp_path_factory.mktemp("heartbeat")
    ray_dir = Path(tempfile.mkdtemp(prefix="nasray", dir="/tmp"))  # Ray's socket paths stay short
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'nas.db'}",
        artifact_root=str(tmp / "artifacts"),
        ray_temp_dir=ray_dir,
        ray_num_cpus=1,
        lease_s=LEASE_S,
        reaper_interval_s=0.2,
    )
    db = Database(settings.database_url)
    db.upgrade()
    init_ray(settings)
    reaper = Reaper(db, settings, submit=lambda job_id: None)  # as the API's, beside the wait
    reaper.start()
    try:
        yield settings, db
    finally:
        reaper.stop()
        ray.shutdown()
        db.dispose()
        shutil.rmtree(ray_dir, ignore_errors=True)


def _running_job(db: Database, settings: Settings, owner: str) -> str:
    with db.session() as s:
        user = crud.get_or_create_user(s, name="heartbeat")
        job_id = crud.create_job(s, owner_id=user.id, name="slow measurement", spec={}).id
        lease = crud.claim_job(
            s, job_id=job_id, owner=owner, lease_s=settings.lease_s, max_attempts=settings.max_attempts
        )
    assert lease is not None and lease.attempt == 1
    return job_id


def _job(db: Database, job_id: str) -> Job:
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
    assert job is not None
    return job


def _measure(heartbeat: LeaseHeartbeat | None) -> float:
    start = time.monotonic()
    stats = ray_latency_measurer([(Sleepy().eval(), (1, 4, 4))], "cpu-fp32", heartbeat=heartbeat)[0]
    elapsed = time.monotonic() - start
    # The raw median: ``median_ms`` is scaled by the reference network's slowdown, and a sleep does
    # not slow down with the machine (under load it reads well below the 150 ms the forward takes).
    assert stats.raw_median_ms is not None and stats.raw_median_ms >= 150
    assert elapsed > 2 * LEASE_S  # the wait outlasted the lease (what this test is about)
    return elapsed


def test_the_lease_stays_alive_while_the_worker_waits_for_a_long_measurement(
    cluster: tuple[Settings, Database],
) -> None:
    settings, db = cluster
    job_id = _running_job(db, settings, owner="worker-a")
    heartbeat = LeaseHeartbeat(settings, job_id=job_id, owner="worker-a")
    try:
        _measure(heartbeat)
    finally:
        heartbeat.close()
    job = _job(db, job_id)
    # The reaper ran every 0.2 s during the wait and found the lease live each time.
    assert job.status == crud.JobStatus.running
    assert job.lease_owner == "worker-a" and job.attempt == 1


def test_without_the_heartbeat_the_same_wait_loses_the_job(cluster: tuple[Settings, Database]) -> None:
    settings, db = cluster
    job_id = _running_job(db, settings, owner="worker-b")
    _measure(None)
    job = _job(db, job_id)
    assert job.status == crud.JobStatus.queued and job.lease_owner is None  # requeued by the reaper
    with db.session() as s, pytest.raises(crud.LeaseLostError):
        crud.renew_owned_lease(s, job_id=job_id, owner="worker-b", lease_s=LEASE_S)


def test_a_worker_whose_job_was_taken_over_stops_waiting(cluster: tuple[Settings, Database]) -> None:
    settings, db = cluster
    job_id = _running_job(db, settings, owner="worker-c")
    with db.session() as s:  # another attempt takes the job over (requeued, then claimed elsewhere)
        lease = crud.Lease(job_id=job_id, owner="worker-c", attempt=1)
        assert crud.release_to_queue(s, lease, reason="test: taken over")
        other = crud.claim_job(s, job_id=job_id, owner="worker-d", lease_s=60, max_attempts=3)
        assert other is not None and other.attempt == 2
    heartbeat = LeaseHeartbeat(settings, job_id=job_id, owner="worker-c")
    try:
        with pytest.raises(crud.LeaseLostError, match="worker-c"):
            ray_latency_measurer([(Sleepy().eval(), (1, 4, 4))], "cpu-fp32", heartbeat=heartbeat)
    finally:
        heartbeat.close()
    job = _job(db, job_id)
    assert job.lease_owner == "worker-d" and job.attempt == 2  # the stale worker changed nothing
