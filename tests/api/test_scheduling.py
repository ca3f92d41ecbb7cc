"""The API's use of the scheduler: start and shutdown with the app, submit, cancel, refusal."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from nas.schemas import JobStatus
from nas.settings import Settings
from nas.store import Database, crud
from tests.api.conftest import RecordingScheduler


def _user_headers(settings: Settings) -> dict[str, str]:
    db = Database(settings.database_url)
    with db.session() as s:
        uid = crud.create_user(s, name="carol").id
        token = crud.create_token(s, user_id=uid)
    db.dispose()
    return {"Authorization": f"Bearer {token}"}


def test_submit_and_cancel_reach_the_scheduler(settings: Settings, spec: dict[str, Any]) -> None:
    sched = RecordingScheduler()
    with TestClient(create_app(settings, scheduler=sched)) as client:
        assert sched.started
        headers = _user_headers(settings)
        job_id = client.post("/v1/jobs", json=spec, headers=headers).json()["id"]
        assert sched.submitted == [job_id]
        body = client.post(f"/v1/jobs/{job_id}/cancel", headers=headers).json()
        assert sched.cancelled == [job_id]
        # The API sets the flag and answers with the job as the scheduler left it; what the
        # scheduler does with a queued job (both real ones end it at once) is theirs to test.
        db = Database(settings.database_url)
        with db.session() as s:
            job = crud.get_job(s, job_id=job_id)
            assert job is not None and job.cancel_requested
            assert body["status"] == job.status.value
        db.dispose()
        assert client.get("/v1/hardware", headers=headers).json() == [
            {"profile": "cpu-fp32", "nodes": ["10.0.0.1"], "node_ids": [], "measurement_nodes": []}
        ]
    assert sched.stopped


def test_refused_submission_is_503_and_fails_the_job(settings: Settings, spec: dict[str, Any]) -> None:
    with TestClient(create_app(settings, scheduler=RecordingScheduler(refuse=True))) as client:
        headers = _user_headers(settings)
        res = client.post("/v1/jobs", json=spec, headers=headers)
        assert res.status_code == 503 and "cluster unreachable" in res.json()["detail"]
        jobs = client.get("/v1/jobs", headers=headers).json()["items"]
        assert [j["status"] for j in jobs] == [JobStatus.failed.value]
        assert "could not schedule" in jobs[0]["error"]
