"""Table rows turned into the public response schemas (rows never leave the API themselves)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from nas.schemas import (
    ArtifactPublic,
    EventPublic,
    HypervolumePoint,
    JobPublic,
    LatencyPublic,
    ParetoPublic,
    SubnetPublic,
)
from nas.store import Artifact, Job, JobEvent, Measurement, Subnet, crud, polls
from nas.store.polls import PolledRow


def json_response(value: BaseModel | Sequence[BaseModel]) -> Response:
    """``value`` (public models, validated when built) serialized here, in the route's own thread.

    A sync route returning a model has FastAPI validate it against the route's ``response_model``
    once more, in one more threadpool hop, which under load is event-loop time spent on every
    request; a ``Response`` is sent as it is. The route keeps its ``response_model`` for the schema.
    Non-finite floats are written as null, as FastAPI's own encoding does.
    """
    if isinstance(value, BaseModel):
        body = value.model_dump_json().encode()
    else:
        body = b"[" + b",".join(v.model_dump_json().encode() for v in value) + b"]"
    return Response(content=body, media_type="application/json")


def job_public(job: Job | PolledRow) -> JobPublic:
    """The job (a table row object, or a ``nas.store.polls`` row) as the API shows it."""
    return JobPublic.model_validate(job)


def event_public(event: JobEvent | PolledRow) -> EventPublic:
    return EventPublic.model_validate(event)


def artifact_public(artifact: Artifact) -> ArtifactPublic:
    return ArtifactPublic(
        id=artifact.id,
        kind=artifact.kind,
        sha256=artifact.sha256,
        size_bytes=artifact.size_bytes,
        download_url=f"/v1/artifacts/{artifact.id}",
    )


def _latency(measurements: Mapping[str, Measurement | PolledRow]) -> dict[str, LatencyPublic]:
    return {
        profile: LatencyPublic(
            median_ms=m.median_ms, p10_ms=m.p10_ms, p90_ms=m.p90_ms, n=m.n, node=(m.env or {}).get("node")
        )
        for profile, m in sorted(measurements.items())
    }


def subnet_public(
    sub: Subnet | PolledRow,
    *,
    measurements: Mapping[str, Measurement | PolledRow],
    on_front: bool,
    predicted: dict[str, Any] | None = None,
) -> SubnetPublic:
    return SubnetPublic(
        id=sub.id,
        arch_hash=sub.arch_hash,
        arch=sub.arch,
        params=sub.params,
        flops=sub.flops,
        accuracy_val=sub.accuracy_val,
        accuracy_test=sub.accuracy_test,
        latency=_latency(measurements),
        on_front=on_front,
        source=sub.source,
        predicted=predicted if predicted is not None else sub.predicted,
    )


def _profiles(job: Job | PolledRow) -> list[str]:
    hardware = (job.spec or {}).get("hardware")
    return list(hardware) if isinstance(hardware, list) else []


def subnets_public(s: Session, *, job: Job) -> list[SubnetPublic]:
    """All of the job's subnets with their latency on the job's hardware and front membership."""
    subs = crud.list_subnets(s, job_id=job.id)
    front = crud.latest_front(s, job_id=job.id)
    on_front = {sub.id for _, sub in crud.front_points(s, front_id=front.id)} if front is not None else set()
    lat = crud.latency_by_key(
        s, measurement_keys=[x.measurement_key for x in subs], profiles=_profiles(job) or None
    )
    return [
        subnet_public(x, measurements=lat.get(x.measurement_key, {}), on_front=x.id in on_front) for x in subs
    ]


def pareto_public(conn: Connection, *, job: PolledRow, target: str | None = None) -> ParetoPublic | None:
    """The job's (or one target's) latest front (the final one once verified), or None before there is one.

    Read through ``nas.store.polls`` (a dashboard polls it): ``job`` is ``polls.owned_job``'s row.
    """
    front = polls.latest_front(conn, job_id=job.id, target=target)
    if front is None:
        return None
    points = polls.front_points(conn, front_id=front.id)
    lat = polls.latency_by_key(
        conn, measurement_keys=[p.measurement_key for p in points], profiles=_profiles(job) or None
    )
    history = [
        HypervolumePoint(round=f.round, hypervolume=f.hypervolume)
        for f in polls.front_history(conn, job_id=job.id, hardware=front.hardware, target=target)
    ]
    return ParetoPublic(
        job_id=job.id,
        target=target,
        targets=polls.front_targets(conn, job_id=job.id),
        objectives=list(front.objectives),
        reference_point=front.reference_point,
        hypervolume=front.hypervolume,
        history=history,
        points=[
            subnet_public(
                p, measurements=lat.get(p.measurement_key, {}), on_front=True, predicted=p.point_predicted
            )
            for p in points
        ],
    )
