"""Request dependencies: the database session, the current user, the scheduler and the settings."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar, cast

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from nas.artifacts import ArtifactStore
from nas.settings import Settings
from nas.store import Database, User, crud, polls
from nas.store.session import POOL_SIZE
from workers.scheduler import Scheduler

T = TypeVar("T")

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


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The request's bearer token, or 401 when there is none; ``async``: it reads only the header."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' (see `nas token create`)"
        )
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_token)]


def get_current_user(db: DatabaseDep, token: BearerToken) -> User:
    """The user the bearer token belongs to; 401 when it is missing, unknown or revoked."""
    with db.read() as s:
        row = crud.live_token(s, token=token)
        user = s.get(User, row.user_id) if row is not None else None
        touch = row is not None and crud.token_touch_due(row.last_used_at)
    if user is None:
        raise _unauthorized("invalid or revoked token")
    if touch:  # the one write of authentication, at most once a minute per token
        with db.session() as s:
            crud.user_for_token(s, token=token)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

# Polls that run at once (each on a threadpool thread, holding a pooled connection): no more than
# the connections the pool keeps open (``nas.store.session.POOL_SIZE``), so a burst of polls never
# makes the pool open (and then close) a connection of its own, and fewer threads contend for the
# GIL. A poll waiting here waits for a connection, as it would in a bounded pool, but holds nothing.
POLL_CONCURRENCY = POOL_SIZE
_poll_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _poll_limiter() -> CapacityLimiter:
    """The event loop's limiter for polls (one per loop: a limiter belongs to the loop it waits on)."""
    loop = asyncio.get_running_loop()
    limiter = _poll_limiters.get(loop)
    if limiter is None:
        limiter = _poll_limiters[loop] = CapacityLimiter(POLL_CONCURRENCY)
    return limiter


async def read_as_user(db: Database, token: str, read: Callable[[Connection, int], T]) -> T:
    """``read(connection, user_id)`` for the token's user, authentication included, in ONE threadpool hop.

    For the routes a dashboard polls: the token lookup and the read share one read-only Core
    connection (``Database.poll``, ``nas.store.polls``), and ``read`` builds the response
    there too; 401 when the token is unknown or revoked. ``CurrentUser`` plus a sync route costs two
    hops, each a wait for a free thread under load.
    """
    return await anyio.to_thread.run_sync(_read_as_user, db, token, read, limiter=_poll_limiter())


def _read_as_user(db: Database, token: str, read: Callable[[Connection, int], T]) -> T:
    def first(conn: Connection) -> tuple[int, bool, T | None]:
        owner = polls.token_owner(conn, token=token)
        if owner is None:
            raise _unauthorized("invalid or revoked token")
        if crud.token_touch_due(owner.last_used_at):
            return owner.user_id, True, None
        return owner.user_id, False, read(conn, owner.user_id)

    user_id, touch, result = db.poll(first)
    if not touch:
        return cast(T, result)
    # At most once a minute per token: mark it used (the one write of authentication), then read.
    with db.session() as s:
        if crud.user_for_token(s, token=token) is None:
            raise _unauthorized("invalid or revoked token")
    return db.poll(lambda conn: read(conn, user_id))
