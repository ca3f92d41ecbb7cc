"""Artifact records (checkpoints, weights, bundles, predictors) and fitted predictors' quality."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.store.models import Artifact, Job, Predictor
from nas.store.session import ConstraintError

ARTIFACT_KINDS = ("checkpoint", "bundle", "predictor", "weights", "assignment")
PREDICTOR_KINDS = ("latency", "accuracy")
PREDICTOR_VERSION_TRIES = 5


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


def delete_artifact(s: Session, *, artifact_id: str) -> bool:
    """Forget an artifact's row (its file is the caller's); False if there was none."""
    row = s.get(Artifact, artifact_id)
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True


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
    # Two jobs fitting at once can pick the same next version: the unique constraint refuses the
    # second, which then takes the version after (in a savepoint, so the caller's transaction lives).
    for _ in range(PREDICTOR_VERSION_TRIES):
        last = s.scalar(
            select(func.max(Predictor.version)).where(
                Predictor.kind == kind, Predictor.target == target, Predictor.space_key == space_key
            )
        )
        row = Predictor(
            kind=kind, target=target, space_key=space_key, version=int(last or 0) + 1, n_samples=n_samples,
            metrics=metrics, artifact_id=artifact_id, job_id=job_id,
        )  # fmt: skip
        try:
            with s.begin_nested():
                s.add(row)
            return row
        except IntegrityError:
            continue
    raise ConstraintError(
        f"could not number a new {kind} predictor for {target!r} after {PREDICTOR_VERSION_TRIES} tries "
        "(too many jobs fitting it at once); retry the job"
    )


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
