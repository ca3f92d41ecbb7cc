"""Request dependencies: the database session, the current user, the scheduler and the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from nas.artifacts import ArtifactStore
from nas.settings import Settings
from nas.store import Database, User, crud
from workers.scheduler import Scheduler

_bearer = HTTPBearer(auto_error=False, description="an API token from `nas token create USER`")

# The app-state lookups are ``async``: FastAPI runs a plain ``def`` dependency in its threadpool,
# and under load every such hop waits for a free thread (40) behind the requests doing real work.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


async def get_artifact_store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.artifacts
    return store


async def get_session(
    request: Request, db: Annotated[Database, Depends(get_database)]
) -> AsyncIterator[Session]:
    """One session per request: read-only for GET and HEAD, otherwise committed before the response.

    ``async``, so a GET takes no threadpool hop to open or close its session: a read session
    touches the database only at its first query (in the route, on a threadpool thread), and its
    close ends a read-only transaction, which waits for no lock. A write session's commit can
    wait for the write lock, so it runs in the threadpool.
    """
    if request.method in ("GET", "HEAD"):
        with db.read() as s:
            yield s
        return
    cm = db.session()
    s = await run_in_threadpool(cm.__enter__)
    try:
        yield s
    except BaseException as exc:
        await run_in_threadpool(cm.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(cm.__exit__, None, None, None)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]
ArtifactStoreDep = Annotated[ArtifactStore, Depends(get_artifact_store)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_current_user(
    db: DatabaseDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The user the bearer token belongs to; 401 when it is missing, unknown or revoked."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' (see `nas token create`)"
        )
    with db.read() as s:
        row = crud.live_token(s, token=credentials.credentials)
        user = s.get(User, row.user_id) if row is not None else None
        touch = row is not None and crud.token_touch_due(row)
    if user is None:
        raise _unauthorized("invalid or revoked token")
    if touch:  # the one write of authentication, at most once a minute per token
        with db.session() as s:
            crud.user_for_token(s, token=credentials.credentials)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
