"""A job's events as JSON and as a server-sent event stream."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from nas.schemas import JobStatus
from nas.store import Database, crud

Auth = tuple[int, dict[str, str]]


def _submit(client: TestClient, headers: dict[str, str], spec: dict[str, Any]) -> str:
    job_id: str = client.post("/v1/jobs", json=spec, headers=headers).json()["id"]
    return job_id


def _parse_sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            key, value = line.split(": ", 1)
            fields[key] = value
        if "event" in fields:
            messages.append(fields)
    return messages


def test_events_as_json_page_by_after(
    client: TestClient, db: Database, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> None:
    job_id = _submit(client, alice[1], spec)
    with db.session() as s:
        for i in range(3):
            crud.add_event(s, job_id=job_id, kind="progress", stage="train", payload={"done": i, "total": 3})
    headers = {**alice[1], "Accept": "application/json"}
    events = client.get(f"/v1/jobs/{job_id}/events", headers=headers).json()
    assert [e["kind"] for e in events] == ["status", "progress", "progress", "progress"]
    assert events[1]["payload"] == {"done": 0, "total": 3} and events[1]["stage"] == "train"
    after = client.get(f"/v1/jobs/{job_id}/events", params={"after": events[2]["id"]}, headers=headers).json()
    assert [e["id"] for e in after] == [events[3]["id"]]
    res = client.get(f"/v1/jobs/{job_id}/events", headers={**bob[1], "Accept": "application/json"})
    assert res.status_code == 404


def test_sse_stream_of_a_finished_job_ends(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    job_id = _submit(client, alice[1], spec)
    with db.session() as s:
        crud.add_event(s, job_id=job_id, kind="log", payload={"message": "line\nbreak"})
        crud.finish_job(s, job_id=job_id, status=JobStatus.failed, error="boom")
    res = client.get(f"/v1/jobs/{job_id}/events", headers=alice[1])
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
    messages = _parse_sse(res.text)
    assert [m["event"] for m in messages] == ["status", "log", "status", "end"]
    assert json.loads(messages[1]["data"])["payload"] == {"message": "line\nbreak"}
    assert json.loads(messages[-1]["data"]) == {"status": "failed"}
    ids = [int(m["id"]) for m in messages[:-1]]
    assert ids == sorted(ids)
    resumed = _parse_sse(client.get(f"/v1/jobs/{job_id}/events?after={ids[1]}", headers=alice[1]).text)
    assert [m["event"] for m in resumed] == ["status", "end"]
    last = _parse_sse(
        client.get(f"/v1/jobs/{job_id}/events", headers={**alice[1], "Last-Event-ID": str(ids[2])}).text
    )
    assert [m["event"] for m in last] == ["end"]


def test_sse_streams_events_as_a_worker_writes_them(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    job_id = _submit(client, alice[1], spec)

    def worker() -> None:
        time.sleep(0.2)
        with db.session() as s:
            crud.update_job(s, job_id=job_id, status=JobStatus.running, stage="train")
        for i in range(3):
            with db.session() as s:
                crud.add_event(
                    s, job_id=job_id, kind="progress", stage="train", payload={"done": i + 1, "total": 3}
                )
            time.sleep(0.05)
        with db.session() as s:
            crud.finish_job(s, job_id=job_id, status=JobStatus.succeeded)

    thread = threading.Thread(target=worker)
    thread.start()
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=alice[1]) as res:
        text = "".join(res.iter_text())
    thread.join()
    kinds = [m["event"] for m in _parse_sse(text)]
    assert kinds == ["status", "progress", "progress", "progress", "status", "end"]
