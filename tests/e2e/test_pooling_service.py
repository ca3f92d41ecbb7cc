"""A pooling-mixture job through the real server and Ray: submit, train the mixture, read the
assignment, download the chosen network; and its bad options rejected with nothing stored."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from nas.data import load_dataset
from tests.e2e.server import LiveServer, live_server, user_client, wait_for_job

pytestmark = pytest.mark.integration

POOL_SPEC = {
    "name": "tiny-pooling",
    "dataset": {"kind": "builtin", "name": "fashion-mnist", "limit": 300},
    # 4 blocks, 2 pools: C(4, 2) = 6 configurations, all measured
    "search_space": {
        "family": "pooling-mixture-resnet",
        "blocks": 4,
        "pools": 2,
        "pool_op": ["max"],
        "widths": [4, 8],
        "mixture": {"supernets": 2},
    },
    "training": {"epochs": 1, "batch_size": 32, "lr": 0.05, "bn_calibration_images": 100},
    "hardware": ["cpu-fp32"],
    "objectives": [
        {"metric": "accuracy", "goal": "max"},
        {"metric": "latency_ms", "hardware": "cpu-fp32", "goal": "min"},
    ],
    "search": {"algorithm": "nsga2", "measure_budget": 10, "rounds": 1, "population": 8, "generations": 3},
    "seed": 0,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("e2e-pool"), NAS_SCHEDULER="ray", NAS_RAY_NUM_CPUS="2") as srv:
        yield srv


@pytest.fixture(scope="module")
def pool_job(server: LiveServer) -> tuple[str, str]:
    """A finished pooling job: (its id, its owner's token)."""
    token = server.token("pia")
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    r = client.post("/v1/jobs", json=POOL_SPEC)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert r.json()["spec"]["training"]["schedule"] == "balanced-mixture"  # the family's default
    job = wait_for_job(client, job_id, timeout_s=420)
    assert job["status"] == "succeeded", (job, (server.tmp / "server.log").read_text()[-3000:])
    return job_id, token


def test_pooling_job_measures_every_config_and_exports_its_member(
    server: LiveServer, pool_job: tuple[str, str], tmp_path: Path
) -> None:
    job_id, token = pool_job
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    subnets = client.get(f"/v1/jobs/{job_id}/subnets").json()
    assert len(subnets) == 6  # exhaustive: every configuration measured
    assert all(s["latency"]["cpu-fp32"]["median_ms"] > 0 for s in subnets)

    assignment = client.get(f"/v1/jobs/{job_id}/assignment").json()
    assert assignment["members"] == 2 and len(assignment["configs"]) == 6
    assert sorted(assignment["arch_hashes"]) == sorted(s["arch_hash"] for s in subnets)
    for row in assignment["probs"]:
        assert sum(row) == pytest.approx(1.0, abs=1e-4)
    assert all(m in (0, 1) for m in assignment["assignment"])

    points = client.get(f"/v1/jobs/{job_id}/pareto").json()["points"]
    assert points and all(p["accuracy_test"] is not None for p in points)
    best = max(points, key=lambda p: p["accuracy_test"])
    art = client.post(f"/v1/jobs/{job_id}/subnets/{best['id']}/export").json()
    blob = client.get(art["download_url"]).content
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        metrics = json.loads(zf.read("metrics.json"))
        card = zf.read("README.md").decode()
        zf.extract("model.ts", tmp_path)
    i = assignment["arch_hashes"].index(best["arch_hash"])
    assert metrics["mixture"]["member"] == assignment["assignment"][i]
    assert metrics["mixture"]["members"] == 2
    assert f"member {assignment['assignment'][i]} of a mixture of 2" in card

    splits = load_dataset(POOL_SPEC["dataset"], data_dir=Path(server.env["NAS_DATA_DIR"]), seed=0)
    model = torch.jit.load(str(tmp_path / "model.ts"))
    with torch.inference_mode():
        acc = (model(splits.test_x).argmax(1) == splits.test_y).float().mean().item()
    assert acc == pytest.approx(metrics["accuracy_test"], abs=1e-6)


def test_dashboard_shows_the_assignment_heat_map(server: LiveServer, pool_job: tuple[str, str]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    job_id, token = pool_job
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/dashboard#token={token}&job={job_id}")
            page.wait_for_selector("#assignment[data-rows='6']")
            assert page.locator("#assignment td.heat").count() == 6 * 2
            assert page.locator("#assignment td.heat.chosen").count() == 6  # one member per configuration
            assert "6 configurations × 2 supernets" in page.inner_text("#assignment-summary")
            page.locator("#assignment-card").screenshot(path="/tmp/pooling-assignment.png")
            assert not errors, errors
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"search_space": {**POOL_SPEC["search_space"], "pools": 5}}, "search_space.pools"),
        ({"search_space": {**POOL_SPEC["search_space"], "pool_op": ["median"]}}, "search_space.pool_op"),
        (
            {"search_space": {**POOL_SPEC["search_space"], "mixture": {"supernets": 0}}},
            "search_space.mixture.supernets",
        ),
        ({"training": {**POOL_SPEC["training"], "schedule": "sandwich"}}, "training.schedule"),
        (
            {"search_space": {"family": "ofa-mbv3"}, "training": {"schedule": "balanced-mixture"}},
            "training.schedule",
        ),
    ],
)
def test_bad_pooling_options_are_rejected_and_nothing_stored(
    server: LiveServer, change: dict, field: str
) -> None:
    client = user_client(server, "quinn")
    before = client.get("/v1/jobs").json()["count"]
    r = client.post("/v1/jobs", json={**POOL_SPEC, **change})
    assert r.status_code == 422, r.text
    assert field in r.text
    assert client.get("/v1/jobs").json()["count"] == before
