"""Small keyword-only operations on the tables; each takes the caller's session and never commits."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.schemas import JobStatus  # also reached as crud.JobStatus by the workers
from nas.store.models import (
    ApiToken,
    Artifact,
    Job,
    JobEvent,
    Measurement,
    ParetoFront,
    ParetoPoint,
    Predictor,
    Subnet,
    User,
    utcnow,
)

ARTIFACT_KINDS = ("checkpoint", "bundle", "predictor")
PREDICTOR_KINDS = ("latency", "accuracy")


# --- users and tokens -------------------------------------------------------------------------


def create_user(s: Session, *, name: str) -> User:
    if not name or len(name) > 100:
        raise ValueError(f"user name must be 1-100 characters, got {name!r}")
    user = User(name=name)
    s.add(user)
    s.flush()
    return user


def get_user(s: Session, *, name: str) -> User | None:
    return s.scalar(select(User).where(User.name == name))


def get_or_create_user(s: Session, *, name: str) -> User:
    return get_user(s, name=name) or create_user(s, name=name)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(s: Session, *, user_id: int) -> str:
    """A new API token for ``user_id``; the plaintext is returned once, only its hash is stored."""
    token = "nas_" + secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user_id, token_hash=hash_token(token)))
    s.flush()
    return token


def user_for_token(s: Session, *, token: str) -> User | None:
    """The user a live token belongs to (and marks the token used), or None."""
    row = s.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )
    if row is None:
        return None
    row.last_used_at = utcnow()
    return s.get(User, row.user_id)


def revoke_token(s: Session, *, token: str) -> bool:
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return False
    row.revoked = True
    return True


# --- jobs and events --------------------------------------------------------------------------


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
    q = select(Job).where(Job.owner_id == owner_id)
    if status is not None:
        q = q.where(Job.status == status)
    q = q.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    return list(s.scalars(q))


def count_jobs(s: Session, *, owner_id: int, status: JobStatus | None = None) -> int:
    q = select(func.count()).select_from(Job).where(Job.owner_id == owner_id)
    if status is not None:
        q = q.where(Job.status == status)
    return int(s.scalar(q) or 0)


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
        job.status = status
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
    job = update_job(s, job_id=job_id, status=status, error=error)
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
    q = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return list(s.scalars(q))


# --- subnets and measurements -----------------------------------------------------------------


def upsert_subnet(
    s: Session,
    *,
    job_id: str,
    arch_hash: str,
    arch: dict[str, Any],
    params: int,
    flops: int,
    source: str,
    accuracy_val: float | None = None,
    accuracy_test: float | None = None,
    predicted: dict[str, Any] | None = None,
    measurement_key: str | None = None,
) -> Subnet:
    """The job's subnet with ``arch_hash``, created or updated with the values given (None keeps)."""
    row = get_subnet_by_hash(s, job_id=job_id, arch_hash=arch_hash)
    if row is None:
        # A savepoint, so a concurrent insert of the same arch only rolls back this statement.
        try:
            with s.begin_nested():
                row = Subnet(
                    job_id=job_id, arch_hash=arch_hash, arch=arch, params=int(params), flops=int(flops),
                    source=source, accuracy_val=accuracy_val, accuracy_test=accuracy_test,
                    predicted=predicted, measurement_key=measurement_key or arch_hash,
                )  # fmt: skip
                s.add(row)
            return row
        except IntegrityError:
            row = get_subnet_by_hash(s, job_id=job_id, arch_hash=arch_hash)
            if row is None:
                raise
    for field, value in (
        ("accuracy_val", accuracy_val),
        ("accuracy_test", accuracy_test),
        ("predicted", predicted),
        ("measurement_key", measurement_key),
    ):
        if value is not None:
            setattr(row, field, value)
    s.flush()
    return row


def get_subnet(s: Session, *, job_id: str, subnet_id: int) -> Subnet | None:
    row = s.get(Subnet, subnet_id)
    return row if row is not None and row.job_id == job_id else None


def get_subnet_by_hash(s: Session, *, job_id: str, arch_hash: str) -> Subnet | None:
    return s.scalar(select(Subnet).where(Subnet.job_id == job_id, Subnet.arch_hash == arch_hash))


def list_subnets(s: Session, *, job_id: str, source: str | None = None) -> list[Subnet]:
    q = select(Subnet).where(Subnet.job_id == job_id)
    if source is not None:
        q = q.where(Subnet.source == source)
    return list(s.scalars(q.order_by(Subnet.id)))


MEASUREMENT_STATS = ("median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "n")


def get_measurement(
    s: Session, *, profile: str, arch_hash: str, resolution: int, batch: int
) -> Measurement | None:
    return s.scalar(
        select(Measurement).where(
            Measurement.profile == profile,
            Measurement.arch_hash == arch_hash,
            Measurement.resolution == resolution,
            Measurement.batch == batch,
        )
    )


def put_measurement(
    s: Session,
    *,
    profile: str,
    arch_hash: str,
    resolution: int,
    batch: int,
    stats: dict[str, Any],
    env: dict[str, Any] | None = None,
) -> Measurement:
    """Store a latency measurement unless one exists for the key; returns the stored row (first wins)."""
    if stats.get("median_ms") is None or stats.get("n") is None:
        raise ValueError(f"stats need at least 'median_ms' and 'n', got keys {sorted(stats)}")
    row = get_measurement(s, profile=profile, arch_hash=arch_hash, resolution=resolution, batch=batch)
    if row is not None:
        return row
    values = {k: stats.get(k) for k in MEASUREMENT_STATS}
    extra = {k: v for k, v in stats.items() if k not in MEASUREMENT_STATS}
    try:
        with s.begin_nested():
            row = Measurement(
                profile=profile, arch_hash=arch_hash, resolution=resolution, batch=batch,
                env={**(env or {}), **({"stats": extra} if extra else {})}, **values,
            )  # fmt: skip
            s.add(row)
        return row
    except IntegrityError:
        row = get_measurement(s, profile=profile, arch_hash=arch_hash, resolution=resolution, batch=batch)
        if row is None:
            raise
        return row


def latency_by_key(
    s: Session, *, measurement_keys: Sequence[str], profiles: Sequence[str] | None = None
) -> dict[str, dict[str, Measurement]]:
    """``{measurement_key: {profile: Measurement}}``; the smallest batch wins where several exist."""
    if not measurement_keys:
        return {}
    q = select(Measurement).where(Measurement.arch_hash.in_(set(measurement_keys)))
    if profiles is not None:
        q = q.where(Measurement.profile.in_(list(profiles)))
    out: dict[str, dict[str, Measurement]] = {}
    for m in s.scalars(q.order_by(Measurement.batch.desc())):
        out.setdefault(m.arch_hash, {})[m.profile] = m
    return out


# --- Pareto fronts ----------------------------------------------------------------------------


def save_front(
    s: Session,
    *,
    job_id: str,
    hardware: str | None,
    round: int,
    objectives: list[Any],
    reference_point: list[float] | dict[str, float] | None,
    hypervolume: float | None,
    points: Sequence[tuple[int, dict[str, Any], dict[str, Any] | None]],
    final: bool = False,
) -> ParetoFront:
    """Record one front: ``points`` are ``(subnet_id, measured, predicted)``."""
    front = ParetoFront(
        job_id=job_id, hardware=hardware, round=round, objectives=objectives,
        reference_point=reference_point, hypervolume=hypervolume, final=final,
    )  # fmt: skip
    s.add(front)
    s.flush()
    for subnet_id, measured, predicted in points:
        sub = s.get(Subnet, subnet_id)
        if sub is None or sub.job_id != job_id:
            raise ValueError(f"subnet {subnet_id} is not a subnet of job {job_id}; upsert_subnet it first")
        s.add(ParetoPoint(front_id=front.id, subnet_id=subnet_id, measured=measured, predicted=predicted))
    s.flush()
    return front


def latest_front(
    s: Session, *, job_id: str, final_only: bool = False, hardware: str | None = None
) -> ParetoFront | None:
    """The final front if there is one, else the latest round's (unless ``final_only``)."""
    q = select(ParetoFront).where(ParetoFront.job_id == job_id)
    if hardware is not None:
        q = q.where(ParetoFront.hardware == hardware)
    if final_only:
        q = q.where(ParetoFront.final.is_(True))
    q = q.order_by(ParetoFront.final.desc(), ParetoFront.round.desc(), ParetoFront.id.desc()).limit(1)
    return s.scalar(q)


def front_points(s: Session, *, front_id: int) -> list[tuple[ParetoPoint, Subnet]]:
    q = (
        select(ParetoPoint, Subnet)
        .join(Subnet, Subnet.id == ParetoPoint.subnet_id)
        .where(ParetoPoint.front_id == front_id)
        .order_by(ParetoPoint.id)
    )
    return [(p, sub) for p, sub in s.execute(q)]


def front_history(s: Session, *, job_id: str, hardware: str | None = None) -> list[ParetoFront]:
    """All fronts of the job in round order (the dashboard plots their hypervolume)."""
    q = select(ParetoFront).where(ParetoFront.job_id == job_id)
    if hardware is not None:
        q = q.where(ParetoFront.hardware == hardware)
    return list(s.scalars(q.order_by(ParetoFront.round, ParetoFront.id)))


# --- artifacts and predictors -----------------------------------------------------------------


def add_artifact(
    s: Session,
    *,
    kind: str,
    uri: str,
    sha256: str,
    size_bytes: int,
    job_id: str | None = None,
    owner_id: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Artifact:
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"artifact kind {kind!r} is unknown; use one of {list(ARTIFACT_KINDS)}")
    row = Artifact(
        kind=kind,
        uri=uri,
        sha256=sha256,
        size_bytes=size_bytes,
        job_id=job_id,
        owner_id=owner_id,
        meta=meta or {},
    )
    s.add(row)
    s.flush()
    return row


def get_artifact(s: Session, *, artifact_id: str, owner_id: int | None = None) -> Artifact | None:
    """The artifact; with ``owner_id`` only if that user owns it or the job it belongs to."""
    row = s.get(Artifact, artifact_id)
    if row is None or owner_id is None:
        return row
    if row.owner_id == owner_id:
        return row
    if row.job_id is not None:
        job = s.get(Job, row.job_id)
        if job is not None and job.owner_id == owner_id:
            return row
    return None


def list_artifacts(s: Session, *, job_id: str | None = None, kind: str | None = None) -> list[Artifact]:
    q = select(Artifact)
    if job_id is not None:
        q = q.where(Artifact.job_id == job_id)
    if kind is not None:
        q = q.where(Artifact.kind == kind)
    return list(s.scalars(q.order_by(Artifact.created_at, Artifact.id)))


def add_predictor(
    s: Session,
    *,
    kind: str,
    target: str,
    space_key: str,
    n_samples: int,
    metrics: dict[str, Any],
    artifact_id: str | None = None,
    job_id: str | None = None,
) -> Predictor:
    """Record a fitted predictor; its version is one above the last for (kind, target, space_key)."""
    if kind not in PREDICTOR_KINDS:
        raise ValueError(f"predictor kind {kind!r} is unknown; use one of {list(PREDICTOR_KINDS)}")
    last = s.scalar(
        select(func.max(Predictor.version)).where(
            Predictor.kind == kind, Predictor.target == target, Predictor.space_key == space_key
        )
    )
    row = Predictor(
        kind=kind, target=target, space_key=space_key, version=int(last or 0) + 1, n_samples=n_samples,
        metrics=metrics, artifact_id=artifact_id, job_id=job_id,
    )  # fmt: skip
    s.add(row)
    s.flush()
    return row


def list_predictors(
    s: Session,
    *,
    kind: str | None = None,
    target: str | None = None,
    space_key: str | None = None,
    job_id: str | None = None,
    owner_id: int | None = None,
) -> list[Predictor]:
    """Predictors, newest first; ``owner_id`` keeps those of the owner's jobs and shared ones."""
    q = select(Predictor)
    for col, value in (
        (Predictor.kind, kind),
        (Predictor.target, target),
        (Predictor.space_key, space_key),
        (Predictor.job_id, job_id),
    ):
        if value is not None:
            q = q.where(col == value)
    if owner_id is not None:
        owned = select(Job.id).where(Job.owner_id == owner_id)
        q = q.where(or_(Predictor.job_id.is_(None), Predictor.job_id.in_(owned)))
    return list(s.scalars(q.order_by(Predictor.created_at.desc(), Predictor.id.desc())))
