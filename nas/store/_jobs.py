"""Jobs: creation, owner-scoped reads, status changes, cancellation, and their event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, Select, func, select, update
from sqlalchemy.orm import Session

from nas.schemas import JobStatus
from nas.store.models import Job, JobEvent, utcnow
from nas.store.session import StoreError

FINAL_STATUSES = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class FinalStateError(StoreError):
    """The job already ended (succeeded, failed or cancelled); its status never changes again."""


def create_job(s: Session, *, owner_id: int, name: str, spec: dict[str, Any]) -> Job:
    job = Job(owner_id=owner_id, name=name, spec=spec, status=JobStatus.queued, progress=0.0)
    s.add(job)
    s.flush()
    return job


def get_job(s: Session, *, job_id: str, owner_id: int | None = None) -> Job | None:
    """The job, or None; with ``owner_id`` only if that user owns it."""
    job = s.get(Job, job_id)
    if job is None or (owner_id is not None and job.owner_id != owner_id):
        return None
    return job


def _require_job(s: Session, job_id: str) -> Job:
    job = s.get(Job, job_id)
    if job is None:
        raise LookupError(f"job {job_id} does not exist")
    return job


def list_jobs(
    s: Session, *, owner_id: int, status: JobStatus | None = None, limit: int = 100, offset: int = 0
) -> list[Job]:
    """The owner's jobs, newest first."""
    return list(s.scalars(jobs_query(owner_id=owner_id, status=status, limit=limit, offset=offset)))


def jobs_query(*, owner_id: int, status: JobStatus | None, limit: int, offset: int) -> Select[Job]:
    """The SELECT of ``list_jobs`` (also run without a session by ``nas.store.polls``)."""
    q = select(Job).where(Job.owner_id == owner_id)
    if status is not None:
        q = q.where(Job.status == status)
    return q.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)


def count_jobs(s: Session, *, owner_id: int, status: JobStatus | None = None) -> int:
    return int(s.scalar(count_jobs_query(owner_id=owner_id, status=status)) or 0)


def count_jobs_query(*, owner_id: int, status: JobStatus | None) -> Select[int]:
    q = select(func.count()).select_from(Job).where(Job.owner_id == owner_id)
    if status is not None:
        q = q.where(Job.status == status)
    return q


def update_job(
    s: Session,
    *,
    job_id: str,
    status: JobStatus | None = None,
    stage: str | None = None,
    progress: float | None = None,
    error: str | None = None,
    dataset_hash: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> Job:
    """Set the given fields; moving to 'running' stamps ``started_at``, a final status ``finished_at``."""
    job = _require_job(s, job_id)
    if progress is not None and not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be within [0, 1], got {progress}")
    if status is not None:
        s.flush()
        # Conditional in the database, not only on the loaded row: a concurrent finish wins once.
        result = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.not_in(FINAL_STATUSES))
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            s.refresh(job)
            raise FinalStateError(
                f"job {job_id} already ended {job.status.value!r}; it cannot become {status.value!r}"
            )
        s.refresh(job)
        if status == JobStatus.running and job.started_at is None and started_at is None:
            started_at = utcnow()
        if status.is_final and finished_at is None and job.finished_at is None:
            finished_at = utcnow()
    for field, value in (
        ("stage", stage),
        ("progress", progress),
        ("error", error),
        ("dataset_hash", dataset_hash),
        ("started_at", started_at),
        ("finished_at", finished_at),
    ):
        if value is not None:
            setattr(job, field, value)
    s.flush()
    return job


def finish_job(s: Session, *, job_id: str, status: JobStatus, error: str | None = None) -> Job:
    """End the job with a final status and record a 'status' event."""
    if not status.is_final:
        raise ValueError(
            f"finish_job needs a final status (succeeded, failed, cancelled), got {status.value!r}"
        )
    try:
        job = update_job(s, job_id=job_id, status=status, error=error)
    except FinalStateError:
        return _require_job(s, job_id)  # the first final status stands; no second event
    if status == JobStatus.succeeded:
        job.progress = 1.0
    add_event(
        s, job_id=job_id, kind="status", stage=job.stage, payload={"status": status.value, "error": error}
    )
    return job


def request_cancel(s: Session, *, job_id: str, owner_id: int | None = None) -> Job | None:
    """Flag the job for cancellation (a no-op on a finished job); None if it is not found."""
    job = get_job(s, job_id=job_id, owner_id=owner_id)
    if job is None:
        return None
    if not job.status.is_final and not job.cancel_requested:
        job.cancel_requested = True
        add_event(s, job_id=job_id, kind="cancel", stage=job.stage, payload={"requested": True})
    s.flush()
    return job


def unfinished_job_ids(s: Session) -> list[str]:
    """Jobs queued or running, oldest first (a restarted scheduler resubmits them)."""
    q = select(Job.id).where(Job.status.in_([JobStatus.queued, JobStatus.running])).order_by(Job.created_at)
    return list(s.scalars(q))


def add_event(
    s: Session, *, job_id: str, kind: str, payload: dict[str, Any] | None = None, stage: str | None = None
) -> JobEvent:
    ev = JobEvent(job_id=job_id, kind=kind, stage=stage, payload=payload or {})
    s.add(ev)
    s.flush()
    return ev


def list_events(s: Session, *, job_id: str, after_id: int = 0, limit: int = 1000) -> list[JobEvent]:
    """Events of the job with ``id > after_id``, oldest first."""
    return list(s.scalars(events_query(job_id=job_id, after_id=after_id, limit=limit)))


def events_query(*, job_id: str, after_id: int, limit: int) -> Select[JobEvent]:
    return (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
        .order_by(JobEvent.id)
        .limit(limit)
    )
