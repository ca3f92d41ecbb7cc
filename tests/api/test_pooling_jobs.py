"""Submitting pooling-mixture jobs: options and schedule checked at submission, the family's default
schedule filled in, and the assignment endpoint (no database migration: an artifact of its own kind)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nas.artifacts import ArtifactStore
from nas.assignment import save_assignment
from nas.settings import Settings
from nas.store import Database, Job

Auth = tuple[int, dict[str, str]]
POOL = {"family": "pooling-mixture-resnet", "pools": 2, "pool_op": ["max"], "widths": [4, 8], "blocks": 4}


def _job_rows(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def _pool_spec(spec: dict[str, Any], **search_space: Any) -> dict[str, Any]:
    training = {k: v for k, v in spec["training"].items() if k != "schedule"}
    return {**spec, "search_space": {**POOL, **search_space}, "training": training}


def test_family_default_schedule_is_filled_in(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    res = client.post("/v1/jobs", json=_pool_spec(spec, mixture={"supernets": 3}), headers=alice[1])
    assert res.status_code == 201, res.text
    assert res.json()["spec"]["training"]["schedule"] == "balanced-mixture"
    assert res.json()["spec"]["training"]["sampler"] == "balanced-mixture"  # the schedule's default
    assert res.json()["spec"]["search_space"]["mixture"] == {"supernets": 3}
    assert _job_rows(db) == 1
    other = client.post("/v1/jobs", json={**spec, "training": {"epochs": 1}}, headers=alice[1])
    assert other.json()["spec"]["training"]["schedule"] == "sandwich"  # ofa-mbv3's default
    assert other.json()["spec"]["training"]["sampler"] == "uniform"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"pools": 5}, "search_space.pools"),
        ({"pool_op": ["max", "median"]}, "search_space.pool_op"),
        ({"mixture": {"supernets": 0}}, "search_space.mixture.supernets"),
        ({"widths": [4, 8, 8, 8, 8]}, "search_space.widths"),
        ({"kernel_sizes": [3]}, "unknown fields"),
    ],
)
def test_bad_options_are_422_naming_the_field(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    res = client.post("/v1/jobs", json=_pool_spec(spec, **options), headers=alice[1])
    assert res.status_code == 422, res.text
    assert field in res.text
    assert res.json()["detail"][0]["loc"][:2] == ["body", "search_space"]
    assert _job_rows(db) == 0


def test_a_schedule_that_cannot_train_the_family_is_422(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    pool = _pool_spec(spec)
    pool["training"]["schedule"] = "sandwich"
    res = client.post("/v1/jobs", json=pool, headers=alice[1])
    assert res.status_code == 422 and "balanced-mixture" in res.text
    assert res.json()["detail"][0]["loc"] == ["body", "training", "schedule"]
    spec["training"]["schedule"] = "balanced-mixture"
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 422 and "ofa-mbv3" in res.text
    assert _job_rows(db) == 0


@pytest.mark.parametrize("sampler", ["uniform", "flops-stratified"])
def test_a_sampler_the_mixture_cannot_use_is_422(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any], sampler: str
) -> None:
    pool = _pool_spec(spec)
    pool["training"]["sampler"] = sampler
    res = client.post("/v1/jobs", json=pool, headers=alice[1])
    assert res.status_code == 422, res.text
    assert res.json()["detail"][0]["loc"] == ["body", "training", "sampler"]
    assert f"training.sampler {sampler!r} cannot be used by schedule 'balanced-mixture'" in res.text
    pool["training"]["sampler"] = "balanced-mixture"
    assert client.post("/v1/jobs", json=pool, headers=alice[1]).status_code == 201
    assert _job_rows(db) == 1


@pytest.mark.parametrize("schedule", ["sandwich", "deps", "progressive-shrinking", "standalone"])
def test_the_mixture_sampler_for_another_schedule_is_422(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any], schedule: str
) -> None:
    spec["training"] = {**spec["training"], "schedule": schedule, "sampler": "balanced-mixture"}
    res = client.post("/v1/jobs", json=spec, headers=alice[1])
    assert res.status_code == 422, res.text
    assert res.json()["detail"][0]["loc"] == ["body", "training", "sampler"]
    assert "use one of ['uniform', 'flops-stratified']" in res.text
    assert _job_rows(db) == 0


def test_assignment_endpoint(
    client: TestClient, db: Database, settings: Settings, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> None:
    job_id = client.post("/v1/jobs", json=_pool_spec(spec), headers=alice[1]).json()["id"]
    res = client.get(f"/v1/jobs/{job_id}/assignment", headers=alice[1])
    assert res.status_code == 404 and "no epoch has finished" in res.text
    store = ArtifactStore(settings.artifact_root)
    for epoch, member in ((1, 0), (2, 1)):
        payload = {"members": 2, "configs": ["1-1-2 max,max"], "assignment": [member], "probs": [[0.5, 0.5]]}
        save_assignment(db, store, job_id, payload, epoch=epoch)
    body = client.get(f"/v1/jobs/{job_id}/assignment", headers=alice[1]).json()
    assert body["epoch"] == 2 and body["assignment"] == [1]  # the latest epoch's
    assert client.get(f"/v1/jobs/{job_id}/assignment", headers=bob[1]).status_code == 404


def test_search_spaces_say_which_schedules_train_each_family(client: TestClient, alice: Auth) -> None:
    families = {f["family"]: f for f in client.get("/v1/search-spaces", headers=alice[1]).json()}
    pool = families["pooling-mixture-resnet"]
    assert pool["schedules"] == ["balanced-mixture"]
    assert pool["default_size"] == 36  # 9 blocks, 2 pools, one pool op
    assert families["ofa-mbv3"]["schedules"][0] == "sandwich"
    assert "balanced-mixture" not in families["ofa-mbv3"]["schedules"]
