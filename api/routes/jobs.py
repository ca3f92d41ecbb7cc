"""Jobs: submit, list, read, cancel, and follow their events."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.deps import BearerToken, CurrentUser, DatabaseDep, SchedulerDep, SettingsDep, read_as_user
from api.params import MAX_ID, MAX_OFFSET, JobId
from api.public import event_public, job_public, json_response
from api.sse import stream_events
from api.validation import check_family, check_submission
from nas.schemas import EventPublic, JobList, JobPublic, JobSpec, JobStatus
from nas.store import Job, crud, polls
from nas.store.polls import PolledRow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/jobs", tags=["jobs"])


def owned_job(s: Session, job_id: str, user_id: int) -> Job:
    """The user's job or 404 (another owner's job is indistinguishable from a missing one)."""
    job = crud.get_job(s, job_id=job_id, owner_id=user_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id} not found")
    return job


def polled_job(conn: Connection, job_id: str, user_id: int) -> PolledRow:
    """``owned_job`` on the polling read path: the job's public columns, or 404."""
    job = polls.owned_job(conn, job_id=job_id, owner_id=user_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id} not found")
    return job


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic)
def submit_job(
    spec: JobSpec, user: CurrentUser, db: DatabaseDep, scheduler: SchedulerDep, settings: SettingsDep
) -> JobPublic:
    """Queue a search job and hand it to the scheduler (after every check that can be made here)."""
    check_submission(spec, settings)
    check_family(spec)
    with db.session() as s:
        job = crud.create_job(s, owner_id=user.id, name=spec.name, spec=spec.model_dump(mode="json"))
        crud.add_event(s, job_id=job.id, kind="status", payload={"status": JobStatus.queued.value})
    try:
        scheduler.submit(job.id)
    except Exception as exc:
        log.exception("scheduler refused job %s", job.id)
        with db.session() as s:
            crud.finish_job(s, job_id=job.id, status=JobStatus.failed, error=f"could not schedule: {exc}")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the scheduler could not accept the job: {exc}"
        ) from exc
    with db.session() as s:
        return job_public(owned_job(s, job.id, user.id))


# The GETs a dashboard polls are ``async`` and do their authentication, read and serialization in
# one threadpool hop (``read_as_user``), on Core rows (``nas.store.polls``), not ORM objects.


@router.get("", response_model=JobList)
async def list_jobs(
    db: DatabaseDep,
    token: BearerToken,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    def read(conn: Connection, user_id: int) -> Response:
        rows = polls.list_jobs(conn, owner_id=user_id, status=status_, limit=limit, offset=offset)
        count = polls.count_jobs(conn, owner_id=user_id, status=status_)
        return json_response(JobList(items=[job_public(j) for j in rows], count=count))

    return await read_as_user(db, token, read)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: JobId, db: DatabaseDep, token: BearerToken) -> Response:
    def read(conn: Connection, user_id: int) -> Response:
        return json_response(job_public(polled_job(conn, job_id, user_id)))

    return await read_as_user(db, token, read)


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: JobId, user: CurrentUser, db: DatabaseDep, scheduler: SchedulerDep) -> JobPublic:
    """Ask the job to stop; it ends 'cancelled' and keeps what it finished."""
    with db.session() as s:
        job = crud.request_cancel(s, job_id=job_id, owner_id=user.id)
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id} not found")
        final = job.status.is_final
    if not final:
        scheduler.cancel(job_id)
    with db.session() as s:
        return job_public(owned_job(s, job_id, user.id))


@router.get(
    "/{job_id}/events",
    response_model=list[EventPublic],
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream, or JSON on request"}},
)
async def job_events(
    job_id: JobId,
    request: Request,
    db: DatabaseDep,
    token: BearerToken,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="only events with a larger id")] = 0,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
) -> Response:
    """The job's events: a server-sent event stream until the job ends, or a JSON list."""
    as_json = accept is not None and "application/json" in accept and "text/event-stream" not in accept

    def read(conn: Connection, user_id: int) -> Response | None:
        polled_job(conn, job_id, user_id)
        if not as_json:
            return None
        events = polls.list_events(conn, job_id=job_id, after_id=after)
        return json_response([event_public(e) for e in events])

    listed = await read_as_user(db, token, read)
    if listed is not None:
        return listed
    start = max(after, last_event_id or 0)
    poll_s = float(getattr(request.app.state, "sse_poll_s", 0.5))
    return StreamingResponse(
        stream_events(request, db, job_id, after_id=start, poll_s=poll_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
