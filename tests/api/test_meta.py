"""Search spaces, hardware, predictors and the dashboard pages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from nas.store import Database, crud

Auth = tuple[int, dict[str, str]]


def test_search_spaces_list_families_with_schema_and_size(client: TestClient, alice: Auth) -> None:
    families = client.get("/v1/search-spaces", headers=alice[1]).json()
    by_name = {f["family"]: f for f in families}
    assert "ofa-mbv3" in by_name
    mbv3 = by_name["ofa-mbv3"]
    assert mbv3["config_schema"]["type"] == "object"
    assert mbv3["default_size"] > 1000 and mbv3["default_config"]["family"] == "ofa-mbv3"


def test_hardware_from_the_queue_only_scheduler_is_empty(client: TestClient, alice: Auth) -> None:
    assert client.get("/v1/hardware", headers=alice[1]).json() == []
    assert client.get("/v1/hardware").status_code == 401


def test_predictors_of_own_jobs_and_shared_ones(
    client: TestClient, db: Database, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> None:
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    with db.session() as s:
        crud.add_predictor(
            s, kind="latency", target="cpu-fp32", space_key="k", n_samples=40, metrics={"kendall_tau": 0.9},
            job_id=job_id,
        )  # fmt: skip
        crud.add_predictor(s, kind="accuracy", target="accuracy", space_key="k", n_samples=40, metrics={})
    mine = client.get("/v1/predictors", headers=alice[1]).json()
    assert {(p["kind"], p["version"]) for p in mine} == {("latency", 1), ("accuracy", 1)}
    latency = client.get("/v1/predictors", params={"kind": "latency"}, headers=alice[1]).json()
    assert latency[0]["metrics"] == {"kendall_tau": 0.9} and latency[0]["job_id"] == job_id
    assert [p["kind"] for p in client.get("/v1/predictors", headers=bob[1]).json()] == ["accuracy"]


def test_dashboard_is_served_without_a_token(client: TestClient) -> None:
    for path in ("/", "/dashboard"):
        res = client.get(path)
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
        assert "<html" in res.text.lower()
    assert client.get("/dashboard/app.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/v1/jobs"]


def test_meta_reports_each_fact_from_its_one_source(client: TestClient, alice: Auth) -> None:
    from api.render import STAGES as SHOWN
    from nas.pipeline import STAGES
    from predictors.hardware import PROFILES
    from supernets.training import SCHEDULES, TrainConfig, anchor_policies, samplers

    assert client.get("/v1/meta").status_code == 401
    meta = client.get("/v1/meta", headers=alice[1]).json()
    assert meta["stages"] == [name for name, _ in STAGES] == list(SHOWN)
    assert [p["name"] for p in meta["hardware_profiles"]] == list(PROFILES)
    assert meta["hardware_profiles"][0] == PROFILES["cpu-fp32"].to_dict()
    assert meta["schedules"] == list(SCHEDULES)
    assert meta["training_defaults"]["deps_full_fraction"] == TrainConfig().deps_full_fraction
    assert meta["anchor_policies"] == list(anchor_policies()) and meta["anchor_policies"][0] == "sandwich"
    assert meta["samplers"] == list(samplers())
    assert {"uniform", "flops-stratified", "balanced-mixture"} <= set(meta["samplers"])
    assert set(meta["schedule_samplers"]) == set(SCHEDULES)
    assert meta["schedule_samplers"]["sandwich"] == ["uniform", "flops-stratified"]
    assert meta["schedule_samplers"]["balanced-mixture"] == ["balanced-mixture"]
    assert meta["training_defaults"]["sampler"] is None  # the schedule's default, listed first above
    assert "size_bytes" in meta["metrics"] and meta["hardware_metrics"] == ["latency_ms"]
