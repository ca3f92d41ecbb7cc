"""Job leases: a job runs under one attempt at a time, claimed and renewed by conditional UPDATEs.

A worker claims a job (queued, or running under an expired lease), renews the lease while it runs,
and every write it makes is fenced by its attempt: once another worker has claimed the job, or the
reaper has requeued it, the stale worker's writes are refused. Final states never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from nas.schemas import JobStatus
from nas.store.models import Job, utcnow
from nas.store.session import StoreError


class LeaseLostError(StoreError):
    """This worker no longer holds the job's lease (another attempt took over): stop, write nothing."""


@dataclass(frozen=True)
class Lease:
    job_id: str
    owner: str
    attempt: int


def _rows(s: Session, stmt: object) -> int:
    result = s.execute(stmt)  # type: ignore[call-overload]
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _expired(now: datetime) -> ColumnElement[bool]:
    return or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)


def claim_job(
    s: Session, *, job_id: str, owner: str, lease_s: float, max_attempts: int, now: datetime | None = None
) -> Lease | None:
    """Take the job's lease as a new attempt, or None if it is not ours to run.

    It is ours if it is queued, running under an expired lease (its worker died), or running under
    this ``owner``'s own lease (a retry in the same worker); never once final or out of attempts.
    """
    now = now or utcnow()
    claimable = or_(
        Job.status == JobStatus.queued,
        and_(Job.status == JobStatus.running, or_(_expired(now), Job.lease_owner == owner)),
    )
    stmt = (
        update(Job)
        .where(Job.id == job_id, claimable, Job.attempt < max_attempts, Job.cancel_requested.is_(False))
        .values(
            status=JobStatus.running,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempt=Job.attempt + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if _rows(s, stmt) != 1:
        return None
    attempt = s.scalar(select(Job.attempt).where(Job.id == job_id))
    s.execute(
        update(Job)
        .where(Job.id == job_id, Job.started_at.is_(None))
        .values(started_at=now)
        .execution_options(synchronize_session=False)
    )
    s.expire_all()
    return Lease(job_id=job_id, owner=owner, attempt=int(attempt or 0))


def renew_lease(s: Session, lease: Lease, *, lease_s: float, now: datetime | None = None) -> None:
    """Extend the lease (the heartbeat, and the fence of every write); raises ``LeaseLostError``."""
    now = now or utcnow()
    stmt = (
        update(Job)
        .where(
            Job.id == lease.job_id,
            Job.attempt == lease.attempt,
            Job.lease_owner == lease.owner,
        )
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    if _rows(s, stmt) != 1:
        raise LeaseLostError(
            f"job {lease.job_id}: attempt {lease.attempt} lost its lease (requeued or taken over); "
            "this worker stops and writes nothing more"
        )


def renew_owned_lease(
    s: Session, *, job_id: str, owner: str, lease_s: float, now: datetime | None = None
) -> None:
    """Extend the lease of the running attempt that ``owner`` holds; raises ``LeaseLostError``.

    The heartbeat of a worker waiting outside the pipeline's own polls (a latency measurement on
    another node). An owner name is unique to one worker's run (``worker_identity``), so the owner
    names the attempt: once the job is requeued or claimed by another worker, nothing matches.
    """
    now = now or utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.running)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    if _rows(s, stmt) != 1:
        raise LeaseLostError(
            f"job {job_id}: worker {owner} lost its lease (requeued or taken over); "
            "this worker stops and writes nothing more"
        )


def release_to_queue(s: Session, lease: Lease, *, reason: str) -> bool:
    """Give the job back (queued, no lease) for a later attempt; False if the lease was already lost."""
    stmt = (
        update(Job)
        .where(Job.id == lease.job_id, Job.attempt == lease.attempt, Job.status == JobStatus.running)
        .values(status=JobStatus.queued, lease_owner=None, lease_expires_at=None, error=reason)
        .execution_options(synchronize_session=False)
    )
    return _rows(s, stmt) == 1


@dataclass
class ReapResult:
    requeued: list[str]
    failed: list[str]


def reap_expired(s: Session, *, max_attempts: int, now: datetime | None = None) -> ReapResult:
    """Requeue running jobs whose lease expired; fail those that used up their attempts."""
    now = now or utcnow()
    rows = s.execute(select(Job.id, Job.attempt).where(Job.status == JobStatus.running, _expired(now))).all()
    out = ReapResult(requeued=[], failed=[])
    for job_id, attempt in rows:
        # Conditional on the attempt seen and the lease still expired: a worker that renewed or
        # claimed it meanwhile keeps it.
        cond = (Job.id == job_id, Job.attempt == attempt, Job.status == JobStatus.running, _expired(now))
        if attempt >= max_attempts:
            error = (
                f"the worker running attempt {attempt} of {max_attempts} stopped renewing its lease "
                "(crashed, killed, or lost its node); no attempts left. Resubmit the job to try again."
            )
            stmt = (
                update(Job)
                .where(*cond)
                .values(
                    status=JobStatus.failed,
                    error=error,
                    finished_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            if _rows(s, stmt.execution_options(synchronize_session=False)) == 1:
                out.failed.append(job_id)
        else:
            stmt = (
                update(Job)
                .where(*cond)
                .values(status=JobStatus.queued, lease_owner=None, lease_expires_at=None)
            )
            if _rows(s, stmt.execution_options(synchronize_session=False)) == 1:
                out.requeued.append(job_id)
    s.expire_all()
    return out


def runnable_job_ids(s: Session, *, now: datetime | None = None) -> list[str]:
    """Jobs a scheduler should (re)submit: queued ones, oldest first (a live lease is never queued)."""
    q = select(Job.id).where(Job.status == JobStatus.queued, Job.cancel_requested.is_(False))
    return list(s.scalars(q.order_by(Job.created_at)))
