"""The reads a dashboard polls (token, job list, one job, its events, its front) as Core selects.

They run on ``Database.read_connection()`` and return plain rows (attribute access by column name),
so a poll builds no ORM objects. The SELECTs are the CRUD functions' own (``jobs_query``,
``events_query``, ``latest_front_query``, ...), so both paths filter and order alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import Connection, Row, select

from nas.schemas import JobPublic, JobStatus
from nas.store._accounts import hash_token
from nas.store._fronts import front_history_query, front_targets_query, latest_front_query
from nas.store._jobs import count_jobs_query, events_query, jobs_query
from nas.store._measured import latency_query
from nas.store.models import ApiToken, Job, ParetoPoint, Subnet, User

PolledRow: TypeAlias = Row[*tuple[Any, ...]]
"""A row of any columns, read by column name (``row.id``)."""

# The job columns a response shows (``JobPublic``'s fields; not the lease).
JOB_COLUMNS = tuple(Job.__table__.c[name] for name in JobPublic.model_fields)


def token_owner(conn: Connection, *, token: str) -> PolledRow | None:
    """``(user_id, last_used_at)`` of a live (not revoked) token whose user exists, or None."""
    q = (
        select(ApiToken.user_id, ApiToken.last_used_at)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )
    return conn.execute(q).first()


def owned_job(conn: Connection, *, job_id: str, owner_id: int) -> PolledRow | None:
    """The job's public columns if ``owner_id`` owns it, else None."""
    q = select(*JOB_COLUMNS).where(Job.id == job_id, Job.owner_id == owner_id)
    return conn.execute(q).first()


def job_status(conn: Connection, *, job_id: str) -> JobStatus | None:
    """The job's status, or None if there is no such job."""
    status: JobStatus | None = conn.scalar(select(Job.status).where(Job.id == job_id))
    return status


def list_jobs(
    conn: Connection, *, owner_id: int, status: JobStatus | None = None, limit: int = 100, offset: int = 0
) -> Sequence[PolledRow]:
    """The owner's jobs, newest first (as ``crud.list_jobs``), their public columns."""
    q = jobs_query(owner_id=owner_id, status=status, limit=limit, offset=offset)
    return conn.execute(q.with_only_columns(*JOB_COLUMNS)).all()


def count_jobs(conn: Connection, *, owner_id: int, status: JobStatus | None = None) -> int:
    return int(conn.scalar(count_jobs_query(owner_id=owner_id, status=status)) or 0)


def list_events(
    conn: Connection, *, job_id: str, after_id: int = 0, limit: int = 1000
) -> Sequence[PolledRow]:
    """Events of the job with ``id > after_id``, oldest first (as ``crud.list_events``)."""
    return conn.execute(events_query(job_id=job_id, after_id=after_id, limit=limit)).all()


def latest_front(conn: Connection, *, job_id: str, target: str | None = None) -> PolledRow | None:
    """The job's (or target's) final front, else its latest round's (as ``crud.latest_front``)."""
    return conn.execute(latest_front_query(job_id=job_id, target=target)).first()


def front_points(conn: Connection, *, front_id: int) -> Sequence[PolledRow]:
    """The front's subnets in point order: the subnet's columns plus the point's ``point_predicted``."""
    q = (
        select(*Subnet.__table__.c, ParetoPoint.predicted.label("point_predicted"))
        .join_from(ParetoPoint, Subnet, Subnet.id == ParetoPoint.subnet_id)
        .where(ParetoPoint.front_id == front_id)
        .order_by(ParetoPoint.id)
    )
    return conn.execute(q).all()


def front_history(
    conn: Connection, *, job_id: str, hardware: str | None = None, target: str | None = None
) -> Sequence[PolledRow]:
    return conn.execute(front_history_query(job_id=job_id, hardware=hardware, target=target)).all()


def front_targets(conn: Connection, *, job_id: str) -> list[str]:
    return [t for t in conn.scalars(front_targets_query(job_id=job_id)) if t is not None]


def latency_by_key(
    conn: Connection, *, measurement_keys: Sequence[str], profiles: Sequence[str] | None = None
) -> dict[str, dict[str, PolledRow]]:
    """``{measurement_key: {profile: row}}``; the smallest batch wins (as ``crud.latency_by_key``)."""
    if not measurement_keys:
        return {}
    out: dict[str, dict[str, PolledRow]] = {}
    for m in conn.execute(latency_query(measurement_keys=measurement_keys, profiles=profiles)):
        out.setdefault(m.arch_hash, {})[m.profile] = m
    return out
