"""Start-up resubmission and the reaper on a real SQLite file: only queued or expired jobs run again."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from nas.pipeline.retry import is_transient
from nas.schemas import JobStatus
from nas.settings import Settings
from nas.store import Database, StoreError, crud
from nas.store.models import utcnow
from workers.reaper import Reaper, reap_once, resubmit_on_start


@pytest.fixture()
def env(tmp_path: Path) -> tuple[Settings, Database, list[str]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'nas.db'}", scheduler="none", max_attempts=2)
    db = Database(settings.database_url)
    db.upgrade()
    ids = []
    with db.session() as s:
        user = crud.create_user(s, name="u")
        for name in ("queued", "live", "expired", "done"):
            ids.append(crud.create_job(s, owner_id=user.id, name=name, spec={}).id)
    return settings, db, ids


def test_start_up_resubmits_queued_and_expired_jobs_only(env: tuple[Settings, Database, list[str]]) -> None:
    settings, db, (queued, live, expired, done) = env
    long_ago = utcnow() - timedelta(seconds=2 * settings.lease_s)
    with db.session() as s:
        assert crud.claim_job(s, job_id=live, owner="a", lease_s=settings.lease_s, max_attempts=2)
        assert crud.claim_job(
            s, job_id=expired, owner="b", lease_s=settings.lease_s, max_attempts=2, now=long_ago
        )
        crud.finish_job(s, job_id=done, status=JobStatus.succeeded)
    submitted: list[str] = []
    resubmit_on_start(db, settings, submitted.append)
    assert sorted(submitted) == sorted([queued, expired])
    with db.read() as s:
        assert crud.get_job(s, job_id=live).lease_owner == "a"  # type: ignore[union-attr]


def test_a_job_whose_worker_keeps_dying_ends_failed_with_a_reason(
    env: tuple[Settings, Database, list[str]],
) -> None:
    settings, db, (job_id, *_) = env
    long_ago = utcnow() - timedelta(seconds=2 * settings.lease_s)
    for attempt in range(1, settings.max_attempts + 1):
        with db.session() as s:
            lease = crud.claim_job(
                s, job_id=job_id, owner=f"w{attempt}", lease_s=settings.lease_s, max_attempts=2, now=long_ago
            )
            assert lease is not None and lease.attempt == attempt
        result = reap_once(db, settings)
        expected = ([job_id], []) if attempt < settings.max_attempts else ([], [job_id])
        assert (result.requeued, result.failed) == expected
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == JobStatus.failed
        assert job.error is not None and "stopped renewing its lease" in job.error
        (event,) = [e for e in crud.list_events(s, job_id=job_id) if e.kind == "status"]
        assert event.payload == {"status": "failed", "error": job.error}


def test_the_reaper_thread_submits_what_it_requeues(env: tuple[Settings, Database, list[str]]) -> None:
    settings, db, (job_id, *_) = env
    settings = settings.model_copy(update={"reaper_interval_s": 0.05})
    with db.session() as s:
        long_ago = utcnow() - timedelta(seconds=2 * settings.lease_s)
        crud.claim_job(s, job_id=job_id, owner="w", lease_s=settings.lease_s, max_attempts=2, now=long_ago)
    seen = threading.Event()
    submitted: list[str] = []

    def submit(jid: str) -> None:
        submitted.append(jid)
        seen.set()

    reaper = Reaper(db, settings, submit)
    reaper.start()
    try:
        assert seen.wait(timeout=30)
    finally:
        reaper.stop()
    assert submitted == [job_id]


def test_database_outages_are_transient_and_spec_errors_permanent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    (tmp_path / "missing" / "dir").rmdir()
    with pytest.raises(StoreError) as info, db.session() as s:
        crud.get_job(s, job_id="x")
    assert is_transient(info.value)  # sqlite3 "unable to open database file" is an OperationalError
    assert not is_transient(ValueError("search_space.family 'nope' is unknown"))
    assert is_transient(ConnectionError("server closed the connection"))
