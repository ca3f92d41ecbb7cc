"""The polling GETs' read path (``api.deps.read_as_user``) under a burst: no more polls at once than
the connections the pool keeps, so a burst never makes the pool open connections of its own."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import HTTPException
from sqlalchemy import event
from sqlalchemy.engine import Connection

from api.deps import POLL_CONCURRENCY, read_as_user
from nas.store import Database, crud, polls
from nas.store.session import POOL_SIZE
from tests.postgres import postgres_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'nas.db'}")
        db.upgrade()
        yield db
        db.dispose()
        return
    with postgres_schema_url() as url:
        db = Database(url)
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()


def test_a_burst_of_polls_runs_at_most_the_pools_size_at_once(database: Database) -> None:
    assert POLL_CONCURRENCY <= POOL_SIZE
    with database.session() as s:
        uid = crud.create_user(s, name="alice").id
        token = crud.create_token(s, user_id=uid)
        crud.create_job(s, owner_id=uid, name="j", spec={})
        crud.user_for_token(s, token=token)  # used just now: the polls below write nothing
    database.poll(lambda conn: polls.count_jobs(conn, owner_id=uid))  # the pools exist
    connects: list[int] = []
    poll_engine = database._poll_engine  # the pool the polls use (on SQLite, the main engine's)
    event.listen(poll_engine.pool, "connect", lambda *_: connects.append(1))
    lock = threading.Lock()
    running = 0
    most = 0

    def read(conn: Connection, user_id: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.02)  # long enough for the burst to overlap
            return polls.count_jobs(conn, owner_id=user_id)
        finally:
            with lock:
                running -= 1

    async def burst() -> list[int]:
        results: list[int] = []

        async def one() -> None:
            results.append(await read_as_user(database, token, read))

        async with anyio.create_task_group() as tg:
            for _ in range(3 * POOL_SIZE):
                tg.start_soon(one)
        return results

    results = anyio.run(burst)
    assert results == [1] * (3 * POOL_SIZE)
    assert 1 < most <= POLL_CONCURRENCY
    # every poll found a pooled connection: the pool opened no more than it keeps
    assert len(connects) <= POOL_SIZE


def test_a_poll_with_an_unknown_token_is_a_401(database: Database) -> None:
    async def call() -> None:
        await read_as_user(database, "nope", lambda conn, uid: uid)

    with pytest.raises(HTTPException) as info:
        anyio.run(call)
    assert info.value.status_code == 401
