"""Server-sent events: a job's event log streamed as it grows, until the job ends."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from nas.store import Database, polls

POLL_S = 0.5
HEARTBEAT_S = 15.0


def format_event(*, event_id: int | None, kind: str, data: object) -> str:
    """One SSE message: ``id:``, ``event:`` and a single-line JSON ``data:``."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines += [f"event: {kind}", f"data: {json.dumps(data, default=str, separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


def _read(db: Database, job_id: str, after_id: int) -> tuple[list[str], int, str | None]:
    """New messages after ``after_id``, the last id seen, and the job's status if it is final."""
    return db.poll(lambda conn: _messages(conn, job_id, after_id))


def _messages(conn: Connection, job_id: str, after_id: int) -> tuple[list[str], int, str | None]:
    events = polls.list_events(conn, job_id=job_id, after_id=after_id, limit=500)
    status = polls.job_status(conn, job_id=job_id)
    final = status.value if status is not None and status.is_final else None
    if status is None:
        final = "deleted"
    messages = []
    for ev in events:
        payload = {
            "id": ev.id,
            "ts": ev.ts.isoformat(),
            "kind": ev.kind,
            "stage": ev.stage,
            "payload": ev.payload,
        }
        messages.append(format_event(event_id=ev.id, kind=ev.kind, data=payload))
        after_id = ev.id
    more = len(events) == 500
    return messages, after_id, None if more else final


async def stream_events(
    request: Request, db: Database, job_id: str, *, after_id: int, poll_s: float = POLL_S
) -> AsyncIterator[str]:
    """Yield the job's events from ``after_id`` on; ends with an ``end`` event once the job is final."""
    last_sent = time.monotonic()
    yield f"retry: {int(poll_s * 2000)}\n\n"
    while True:
        messages, after_id, final = await run_in_threadpool(_read, db, job_id, after_id)
        for message in messages:
            yield message
        if messages:
            last_sent = time.monotonic()
        if final is not None:
            yield format_event(event_id=None, kind="end", data={"status": final})
            return
        if await request.is_disconnected():
            return
        if time.monotonic() - last_sent >= HEARTBEAT_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await anyio.sleep(poll_s)
