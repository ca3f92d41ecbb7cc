"""A job's subnets and Pareto front, and exporting one subnet as a downloadable bundle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import Connection

from api.deps import (
    ArtifactStoreDep,
    BearerToken,
    CurrentUser,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    read_as_user,
)
from api.params import JobId, SubnetId
from api.public import artifact_public, json_response, pareto_public, subnets_public
from api.routes.jobs import owned_job, polled_job
from nas.assignment import latest_assignment
from nas.schemas import ArtifactPublic, ParetoPublic, SubnetPublic
from nas.store import crud

router = APIRouter(prefix="/jobs/{job_id}", tags=["subnets"])


@router.get("/subnets", response_model=list[SubnetPublic])
def list_subnets(job_id: JobId, s: SessionDep, user: CurrentUser) -> Response:
    """Every subnet the job measured, with its latency per hardware profile."""
    return json_response(subnets_public(s, job=owned_job(s, job_id, user.id)))


@router.get("/pareto", response_model=ParetoPublic)
async def get_pareto(
    job_id: JobId,
    db: DatabaseDep,
    token: BearerToken,
    target: Annotated[
        str | None,
        Query(max_length=64, description="a target named in the job spec; omitted: the job's own front"),
    ] = None,
) -> Response:
    """The latest Pareto front (the verified one once the job finished) and its hypervolume history."""

    def read(conn: Connection, user_id: int) -> Response:  # polled: one hop, Core rows
        job = polled_job(conn, job_id, user_id)
        if target is not None:
            names = [t.get("name") for t in (job.spec or {}).get("targets", [])]
            if target not in names:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND,
                    detail=f"job {job_id} has no target {target!r}; its targets: {names or 'none'}",
                )
        front = pareto_public(conn, job=job, target=target)
        if front is None:
            what = f"target {target!r} of job {job_id}" if target else f"job {job_id}"
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} has no Pareto front yet")
        return json_response(front)

    return await read_as_user(db, token, read)


@router.get("/assignment")
def get_assignment(
    job_id: str, s: SessionDep, user: CurrentUser, db: DatabaseDep, store: ArtifactStoreDep
) -> dict[str, Any]:
    """A mixture job's assignment after its last epoch: configurations (labels, arch hashes) x members,
    the accuracy estimates W, the balanced p(member | configuration), and each configuration's member."""
    job = owned_job(s, job_id, user.id)
    payload = latest_assignment(db, store, job.id)
    if payload is None:
        family = (job.spec or {}).get("search_space", {}).get("family")
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"job {job_id} has no assignment: family {family!r} trains no mixture, "
            "or no epoch has finished yet",
        )
    return payload


@router.post(
    "/subnets/{subnet_id}/export", response_model=ArtifactPublic, status_code=status.HTTP_201_CREATED
)
def export_subnet(
    job_id: JobId,
    subnet_id: SubnetId,
    user: CurrentUser,
    db: DatabaseDep,
    store: ArtifactStoreDep,
    settings: SettingsDep,
) -> ArtifactPublic:
    """Build (or reuse) the subnet's bundle: TorchScript, ONNX, weights, metrics and a model card."""
    with db.session() as s:
        owned_job(s, job_id, user.id)
        if crud.get_subnet(s, job_id=job_id, subnet_id=subnet_id) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"subnet {subnet_id} of job {job_id} not found"
            )
    from nas.export import ExportError  # imports torch: only when asked
    from nas.export import export_subnet as build_bundle

    try:
        result = build_bundle(db=db, store=store, job_id=job_id, subnet_id=subnet_id, settings=settings)
    except ExportError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"cannot export subnet {subnet_id}: {exc}"
        ) from exc
    return artifact_public(result)
