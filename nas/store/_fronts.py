"""Pareto fronts: one row per search round (and the verified final one), with their points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from nas.store.models import ParetoFront, ParetoPoint, Subnet


def save_front(
    s: Session,
    *,
    job_id: str,
    hardware: str | None,
    round: int,
    objectives: list[Any],
    reference_point: list[float] | None,
    hypervolume: float | None,
    points: Sequence[tuple[int, dict[str, Any], dict[str, Any] | None]],
    final: bool = False,
    target: str | None = None,
) -> ParetoFront:
    """Record one front: ``points`` are ``(subnet_id, measured, predicted)``; ``target`` names its target."""
    front = ParetoFront(
        job_id=job_id, hardware=hardware, round=round, objectives=objectives,
        reference_point=reference_point, hypervolume=hypervolume, final=final, target=target,
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


def _of_target(target: str | None) -> ColumnElement[bool]:
    return ParetoFront.target.is_(None) if target is None else ParetoFront.target == target


def latest_front(
    s: Session,
    *,
    job_id: str,
    final_only: bool = False,
    hardware: str | None = None,
    target: str | None = None,
) -> ParetoFront | None:
    """The final front if there is one, else the latest round's (unless ``final_only``).

    ``target`` picks the front of one of the spec's named targets; None is the job's own front.
    """
    return s.scalar(
        latest_front_query(job_id=job_id, final_only=final_only, hardware=hardware, target=target)
    )


def latest_front_query(
    *, job_id: str, final_only: bool = False, hardware: str | None = None, target: str | None = None
) -> Select[ParetoFront]:
    """The SELECT of ``latest_front`` (also run without a session by ``nas.store.polls``)."""
    q = select(ParetoFront).where(ParetoFront.job_id == job_id, _of_target(target))
    if hardware is not None:
        q = q.where(ParetoFront.hardware == hardware)
    if final_only:
        q = q.where(ParetoFront.final.is_(True))
    return q.order_by(ParetoFront.final.desc(), ParetoFront.round.desc(), ParetoFront.id.desc()).limit(1)


def front_points(s: Session, *, front_id: int) -> list[tuple[ParetoPoint, Subnet]]:
    q = (
        select(ParetoPoint, Subnet)
        .join(Subnet, Subnet.id == ParetoPoint.subnet_id)
        .where(ParetoPoint.front_id == front_id)
        .order_by(ParetoPoint.id)
    )
    return [(p, sub) for p, sub in s.execute(q)]


def front_history(
    s: Session, *, job_id: str, hardware: str | None = None, target: str | None = None
) -> list[ParetoFront]:
    """All fronts of the job (or of one target) in round order (the dashboard plots their hypervolume)."""
    return list(s.scalars(front_history_query(job_id=job_id, hardware=hardware, target=target)))


def front_history_query(
    *, job_id: str, hardware: str | None = None, target: str | None = None
) -> Select[ParetoFront]:
    q = select(ParetoFront).where(ParetoFront.job_id == job_id, _of_target(target))
    if hardware is not None:
        q = q.where(ParetoFront.hardware == hardware)
    return q.order_by(ParetoFront.round, ParetoFront.id)


def front_targets(s: Session, *, job_id: str) -> list[str]:
    """Names of the targets the job has stored fronts for, in the order they were first stored."""
    return [t for t in s.scalars(front_targets_query(job_id=job_id)) if t is not None]


def front_targets_query(*, job_id: str) -> Select[str | None]:
    return (
        select(ParetoFront.target)
        .where(ParetoFront.job_id == job_id, ParetoFront.target.is_not(None))
        .group_by(ParetoFront.target)
        .order_by(func.min(ParetoFront.id))
    )
