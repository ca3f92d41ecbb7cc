"""The whole service, as a user drives it: real server, real Ray, real training on Fashion-MNIST."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import torch

from nas.data import load_dataset
from tests.e2e.server import TINY_SPEC, LiveServer, live_server

pytestmark = pytest.mark.integration


LOAD_AND_SCORE = """
import sys, json, torch
model = torch.jit.load(sys.argv[1])
data = torch.load(sys.argv[2])
with torch.inference_mode():
    pred = model(data["x"]).argmax(1)
project = ("nas", "supernets", "kernels", "predictors", "api", "workers")
ours = [m for m in sys.modules if m.split(".")[0] in project]
print(json.dumps({"accuracy": (pred == data["y"]).float().mean().item(), "project_modules": ours}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    tmp = tmp_path_factory.mktemp("e2e")
    with live_server(tmp, NAS_SCHEDULER="ray", NAS_RAY_NUM_CPUS="2") as srv:
        yield srv  # type: ignore[misc]


def _wait(client: httpx.Client, job_id: str, *, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s: {job}")


def test_submit_watch_and_download(server: LiveServer, tmp_path: Path) -> None:
    token = server.token("alice")
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    r = client.post("/v1/jobs", json=TINY_SPEC)
    assert r.status_code in (200, 201), r.text
    job_id = r.json()["id"]

    job = _wait(client, job_id, timeout_s=420)
    assert job["status"] == "succeeded", (job, (server.tmp / "server.log").read_text()[-3000:])

    events = client.get(f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"}).json()
    kinds = {e["kind"] for e in events}
    assert {"stage", "epoch", "front"} <= kinds
    stages = [
        e["payload"]["stage"] for e in events if e["kind"] == "stage" and e["payload"]["status"] == "done"
    ]
    assert stages == ["data", "train", "measure", "predict", "search", "verify"]

    pareto = client.get(f"/v1/jobs/{job_id}/pareto").json()
    points = pareto["points"]
    assert points, pareto
    for p in points:
        assert 0.0 <= p["accuracy_val"] <= 1.0
        assert p["accuracy_test"] is not None
        assert p["latency"]["cpu-fp32"]["median_ms"] > 0
    subnets = client.get(f"/v1/jobs/{job_id}/subnets").json()
    assert len(subnets) <= TINY_SPEC["search"]["measure_budget"]  # the budget of real measurements holds

    best = max(points, key=lambda p: p["accuracy_test"])
    art = client.post(f"/v1/jobs/{job_id}/subnets/{best['id']}/export").json()
    blob = client.get(art["download_url"]).content
    assert hashlib.sha256(blob).hexdigest() == art["sha256"]
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
        assert {"arch.json", "state_dict.pt", "model.ts", "metrics.json", "README.md", "SHA256SUMS"} <= names
        for line in zf.read("SHA256SUMS").decode().splitlines():
            digest, name = line.split()
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
        zf.extractall(tmp_path / "bundle")
    metrics = json.loads((tmp_path / "bundle" / "metrics.json").read_text())
    assert metrics["arch_hash"] == best["arch_hash"]

    # The TorchScript model reproduces the stored test accuracy in a process that never imports the project.
    splits = load_dataset(TINY_SPEC["dataset"], data_dir=Path(server.env["NAS_DATA_DIR"]), seed=0)
    torch.save({"x": splits.test_x, "y": splits.test_y}, tmp_path / "test.pt")
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            LOAD_AND_SCORE,
            str(tmp_path / "bundle" / "model.ts"),
            str(tmp_path / "test.pt"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["project_modules"] == []
    assert result["accuracy"] == pytest.approx(metrics["accuracy_test"], abs=1e-6)


def test_rejections_change_nothing(server: LiveServer) -> None:
    token = server.token("bob")
    client = httpx.Client(base_url=server.url, timeout=30)
    auth = {"Authorization": f"Bearer {token}"}
    before = client.get("/v1/jobs", headers=auth).json()["count"]

    bad = {**TINY_SPEC, "training": {**TINY_SPEC["training"], "epochs": 0}}
    r = client.post("/v1/jobs", json=bad, headers=auth)
    assert r.status_code == 422
    assert "epochs" in r.text
    assert client.get("/v1/jobs", headers=auth).json()["count"] == before

    assert client.get("/v1/jobs").status_code == 401
    assert client.post("/v1/jobs", json=TINY_SPEC).status_code == 401

    other = server.token("carol")
    mine = client.post(
        "/v1/jobs",
        json={**TINY_SPEC, "name": "bob-cancel", "training": {**TINY_SPEC["training"], "epochs": 50}},
        headers=auth,
    )
    job_id = mine.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {other}"}).status_code == 404

    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code in (200, 202)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"]
        if status == "cancelled":
            break
        time.sleep(0.5)
    assert status == "cancelled"
