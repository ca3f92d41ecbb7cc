"""Submitting, listing, reading and cancelling jobs; auth and owner scoping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nas.store import Database, Job, crud

Auth = tuple[int, dict[str, str]]


def _job_rows(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def test_submit_queues_the_job(client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]) -> None:
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["status"] == "queued" and body["name"] == "fmnist-tiny" and body["progress"] == 0.0
    assert body["spec"]["training"]["epochs"] == 1
    assert body["spec"]["training"]["momentum"] == 0.9  # defaults are filled in and stored
    assert _job_rows(db) == 1


def test_malformed_spec_is_422_naming_the_field_and_stores_nothing(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    spec["training"]["epochs"] = 0
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert any(d["loc"][-2:] == ["training", "epochs"] for d in detail), detail
    assert _job_rows(db) == 0


def test_typo_and_cross_field_errors_are_422(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    typo = {**spec, "training": {**spec["training"], "epocs": 3}}
    res = client.post("/v1/jobs", json=typo, headers=alice[1])
    assert res.status_code == 422 and "epocs" in res.text
    spec["objectives"][1]["hardware"] = "cuda-fp16"
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 422 and "objectives[1].hardware" in res.text
    assert _job_rows(db) == 0


def test_unknown_family_is_422(client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]) -> None:
    spec["search_space"]["family"] = "no-such-family"
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"] == ["body", "search_space", "family"]
    assert _job_rows(db) == 0


def test_missing_or_bad_token_is_401(client: TestClient, spec: dict[str, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        res = client.get("/v1/jobs", headers=headers)
        assert res.status_code == 401, headers
        assert res.headers["www-authenticate"] == "Bearer"
        assert "detail" in res.json()
    assert client.post("/v1/jobs", json=spec).status_code == 401


def test_polled_reads_show_a_job_as_the_orm_path_does(
    client: TestClient, alice: Auth, spec: dict[str, Any]
) -> None:
    """GET /v1/jobs and /v1/jobs/{id} read Core rows (``nas.store.polls``); the POST answers from the
    ORM row. Both serialize the same ``JobPublic``, to the same bytes."""
    posted = client.post("/v1/jobs", json=spec, headers=alice[1])
    job_id = posted.json()["id"]
    got = client.get(f"/v1/jobs/{job_id}", headers=alice[1])
    assert got.content == posted.content
    listed = client.get("/v1/jobs", headers=alice[1])
    assert listed.content == b'{"items":[' + posted.content + b'],"count":1}'


def test_a_polled_get_marks_its_token_used_at_most_once_a_minute(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    token = alice[1]["Authorization"].removeprefix("Bearer ")

    def last_used() -> datetime | None:
        with db.read() as s:
            row = crud.live_token(s, token=token)
            assert row is not None
            return row.last_used_at

    assert last_used() is None
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    first = last_used()
    assert first is not None
    assert client.get(f"/v1/jobs/{job_id}/pareto", headers=alice[1]).status_code == 404  # no front yet
    assert last_used() == first  # within the minute: no write
    with db.session() as s:
        row = crud.live_token(s, token=token)
        assert row is not None
        row.last_used_at = first - timedelta(minutes=5)
    assert client.get(f"/v1/jobs/{job_id}/pareto", headers=alice[1]).status_code == 404
    again = last_used()
    assert again is not None and again > first  # marked used, on a 404 too
    with db.session() as s:
        assert crud.revoke_token(s, token=token)
    for path in ("/v1/jobs", f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/events", f"/v1/jobs/{job_id}/pareto"):
        res = client.get(path, headers={**alice[1], "Accept": "application/json"})
        assert res.status_code == 401 and "revoked" in res.json()["detail"], path


def test_healthz_needs_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/v1/healthz").status_code == 200


def test_list_and_get_are_owner_scoped(
    client: TestClient, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> None:
    ids = [
        client.post("/v1/jobs", json={**spec, "name": f"j{i}"}, headers=alice[1]).json()["id"]
        for i in range(3)
    ]
    client.post("/v1/jobs", json=spec, headers=bob[1])
    listed = client.get("/v1/jobs", headers=alice[1]).json()
    assert listed["count"] == 3 and [j["id"] for j in listed["items"]] == ids[::-1]
    page = client.get("/v1/jobs", params={"limit": 1, "offset": 1}, headers=alice[1]).json()
    assert [j["id"] for j in page["items"]] == [ids[1]] and page["count"] == 3
    assert client.get(f"/v1/jobs/{ids[0]}", headers=alice[1]).json()["name"] == "j0"
    res = client.get(f"/v1/jobs/{ids[0]}", headers=bob[1])
    assert res.status_code == 404 and "not found" in res.json()["detail"]
    assert client.post(f"/v1/jobs/{ids[0]}/cancel", headers=bob[1]).status_code == 404
    assert client.get("/v1/jobs/nope", headers=alice[1]).status_code == 404


def test_cancel_ends_a_queued_job(client: TestClient, alice: Auth, spec: dict[str, Any]) -> None:
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    res = client.post(f"/v1/jobs/{job_id}/cancel", headers=alice[1])
    assert res.status_code == 200
    body = res.json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=alice[1])
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    queued = client.get("/v1/jobs", params={"status": "queued"}, headers=alice[1]).json()
    assert queued["count"] == 0


def test_bad_bit_widths_are_422_naming_the_field(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    for bits in ([3, 8], [64], [], "8", [8, 8]):
        spec["search_space"]["bits"] = bits
        res = client.post("/v1/jobs", json=spec, headers=alice[1])
        assert res.status_code == 422, (bits, res.text)
        assert "search_space.bits" in res.text, res.text
    assert _job_rows(db) == 0
    spec["search_space"]["bits"] = [4, 8, 32]
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 201, res.text
    assert res.json()["spec"]["search_space"]["bits"] == [4, 8, 32]


def test_an_out_of_range_schedule_knob_is_422_naming_it_and_stores_nothing(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    for name, value in (("deps_full_fraction", 1.5), ("ps_phase_fractions", [0.7, 0.1, 0.1, 0.3])):
        bad = {**spec, "training": {**spec["training"], name: value}}
        res = client.post("/v1/jobs", json=bad, headers=alice[1])
        assert res.status_code == 422, res.text
        assert name in res.text, res.text
    assert _job_rows(db) == 0
    good = {**spec, "training": {**spec["training"], "deps_ramp_fraction": 0.25, "schedule": "deps"}}
    res = client.post("/v1/jobs", json=good, headers=alice[1])
    assert res.status_code == 201, res.text
    assert res.json()["spec"]["training"]["deps_ramp_fraction"] == 0.25
