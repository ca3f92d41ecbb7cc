"""Job leases on SQLite and PostgreSQL: one claimer wins, stale attempts write nothing, finals stay."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from nas.schemas import JobStatus
from nas.store import Database, crud
from nas.store.models import utcnow

LEASE_S = 60.0


def _claim(db: Database, job_id: str, owner: str, **kw: object) -> crud.Lease | None:
    with db.session() as s:
        return crud.claim_job(s, job_id=job_id, owner=owner, lease_s=LEASE_S, max_attempts=3, **kw)  # type: ignore[arg-type]


def test_two_concurrent_claimers_one_wins(db: Database, job_id: str) -> None:
    barrier = threading.Barrier(2)
    results: dict[str, crud.Lease | None] = {}
    errors: list[BaseException] = []

    def claimer(owner: str) -> None:
        try:
            barrier.wait()
            results[owner] = _claim(db, job_id, owner)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    winners = [lease for lease in results.values() if lease is not None]
    assert len(winners) == 1 and winners[0].attempt == 1
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == JobStatus.running and job.lease_owner == winners[0].owner
        assert job.started_at is not None


def test_live_lease_is_not_claimable_but_an_expired_one_is(db: Database, job_id: str) -> None:
    first = _claim(db, job_id, "w1")
    assert first is not None
    assert _claim(db, job_id, "w2") is None
    later = utcnow() + timedelta(seconds=LEASE_S + 1)
    second = _claim(db, job_id, "w2", now=later)
    assert second is not None and second.attempt == 2


def test_a_stale_attempts_writes_are_refused(db: Database, job_id: str) -> None:
    stale = _claim(db, job_id, "w1")
    assert stale is not None
    assert _claim(db, job_id, "w2", now=utcnow() + timedelta(seconds=LEASE_S + 1)) is not None
    fenced = db.fenced(lambda s: crud.renew_lease(s, stale, lease_s=LEASE_S))
    with pytest.raises(crud.LeaseLostError, match="lost its lease"), fenced.session() as s:
        crud.add_event(s, job_id=job_id, kind="log", payload={"message": "from the stale worker"})
        crud.update_job(s, job_id=job_id, stage="train", progress=0.5)
    with db.read() as s:
        assert crud.list_events(s, job_id=job_id) == []
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.stage is None and job.lease_owner == "w2"


def test_the_current_attempt_writes_and_renews(db: Database, job_id: str) -> None:
    lease = _claim(db, job_id, "w1")
    assert lease is not None
    with db.read() as s:
        before = crud.get_job(s, job_id=job_id).lease_expires_at  # type: ignore[union-attr]
    with db.fenced(lambda s: crud.renew_lease(s, lease, lease_s=2 * LEASE_S)).session() as s:
        crud.update_job(s, job_id=job_id, stage="train")
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.stage == "train"
        assert before is not None and job.lease_expires_at is not None and job.lease_expires_at > before


@pytest.mark.parametrize("final", [JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled])
def test_final_states_never_change(db: Database, job_id: str, final: JobStatus) -> None:
    with db.session() as s:
        crud.finish_job(s, job_id=job_id, status=final, error="first")
    with db.session() as s:
        job = crud.finish_job(s, job_id=job_id, status=JobStatus.failed, error="second")
        assert job.status == final and job.error == "first"
    with pytest.raises(crud.FinalStateError, match="already ended"), db.session() as s:
        crud.update_job(s, job_id=job_id, status=JobStatus.running)
    assert _claim(db, job_id, "w1") is None
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == final
        assert [e.payload["status"] for e in crud.list_events(s, job_id=job_id)] == [final.value]


def test_reaper_requeues_an_expired_lease_then_fails_when_attempts_run_out(db: Database, job_id: str) -> None:
    now = utcnow()
    for attempt in (1, 2):
        lease = _claim(db, job_id, f"w{attempt}", now=now)
        assert lease is not None and lease.attempt == attempt
        with db.session() as s:
            assert crud.reap_expired(s, max_attempts=2, now=now).requeued == []  # still live
        now += timedelta(seconds=LEASE_S + 1)
        with db.session() as s:
            result = crud.reap_expired(s, max_attempts=2, now=now)
        with db.read() as s:
            job = crud.get_job(s, job_id=job_id)
            assert job is not None
            if attempt == 1:
                assert result.requeued == [job_id] and result.failed == []
                assert job.status == JobStatus.queued and job.lease_owner is None
                assert crud.runnable_job_ids(s) == [job_id]
            else:
                assert result.failed == [job_id] and result.requeued == []
                assert job.status == JobStatus.failed and job.error is not None
                assert "no attempts left" in job.error
                assert crud.runnable_job_ids(s) == []


def test_a_job_out_of_attempts_cannot_be_claimed(db: Database, job_id: str) -> None:
    now = utcnow()
    with db.session() as s:
        assert crud.claim_job(s, job_id=job_id, owner="w", lease_s=1, max_attempts=1, now=now) is not None
    with db.session() as s:
        later = now + timedelta(seconds=5)
        assert crud.claim_job(s, job_id=job_id, owner="v", lease_s=1, max_attempts=1, now=later) is None
