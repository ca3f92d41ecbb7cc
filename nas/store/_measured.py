"""Subnets of a job and the latency measurements all jobs share; both written idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.store.models import Measurement, Subnet


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
    extra = {k: v for k, v in stats.items() if k not in MEASUREMENT_STATS and k != "node"}
    if stats.get("node"):  # where it was timed: kept beside the stats, as env.node
        env = {**(env or {}), "node": stats["node"]}
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
    out: dict[str, dict[str, Measurement]] = {}
    for m in s.scalars(latency_query(measurement_keys=measurement_keys, profiles=profiles)):
        out.setdefault(m.arch_hash, {})[m.profile] = m
    return out


def latency_query(*, measurement_keys: Sequence[str], profiles: Sequence[str] | None) -> Select[Measurement]:
    """The measurements of ``latency_by_key``, largest batch first (so the smallest is kept last)."""
    q = select(Measurement).where(Measurement.arch_hash.in_(set(measurement_keys)))
    if profiles is not None:
        q = q.where(Measurement.profile.in_(list(profiles)))
    return q.order_by(Measurement.batch.desc())
