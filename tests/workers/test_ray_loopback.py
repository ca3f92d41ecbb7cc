"""The embedded Ray: a Ray of its own, bound to 127.0.0.1, whatever an earlier Ray left behind."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import torch
from fastapi.testclient import TestClient
from torch import nn

from api.app import create_app
from nas.settings import Settings
from nas.store import Database, crud
from workers.tasks import HardwareUnavailableError, measurement_resources, ray_latency_measurer


@pytest.fixture
def ray_dir() -> Iterator[Path]:
    """A short temp folder (Ray's socket paths must stay under 108 bytes) holding a stale cluster record."""
    folder = Path(tempfile.mkdtemp(prefix="nasray", dir="/tmp"))
    # What a killed `ray start --head` leaves: the address of a head that no longer answers.
    (folder / "ray_current_cluster").write_text("127.0.0.1:1\n")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@ray.remote
def _node_ip() -> str:
    return str(ray.util.get_node_ip_address())


def test_the_service_starts_its_own_ray_on_loopback_despite_a_stale_head(
    ray_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    settings = Settings(
        scheduler="ray",
        database_url=f"sqlite:///{tmp_path / 'nas.db'}",
        artifact_root=str(tmp_path / "artifacts"),
        ray_temp_dir=ray_dir,
        ray_num_cpus=1,
    )
    with TestClient(create_app(settings)) as client:
        assert ray.is_initialized()
        ips = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
        assert ips == {"127.0.0.1"}
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        assert ray.get(_node_ip.remote(), timeout=120) == "127.0.0.1"
        db = Database(settings.database_url)
        with db.session() as s:
            token = crud.create_token(s, user_id=crud.get_or_create_user(s, name="ops").id)
        db.dispose()
        r = client.get("/v1/hardware", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert all(h["nodes"] == ["127.0.0.1"] for h in r.json()) and r.json()
        # The one node trains too, so it is no measurement node: latency waits for its hw: unit.
        assert all(h["measurement_nodes"] == [] for h in r.json())
        assert measurement_resources("cpu-fp32") == {"hw:cpu-fp32": 1}
        if not torch.cuda.is_available():  # no node serves cuda-fp16: a clear error naming it
            with pytest.raises(HardwareUnavailableError, match="cuda-fp16"):
                measurement_resources("cuda-fp16")
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
        stats = ray_latency_measurer([(model, (1, 8, 8))], "cpu-fp32")[0]
        assert stats.median_ms > 0 and stats.node is not None
        assert stats.node["ray_node_id"] == ray.get_runtime_context().get_node_id()
        assert stats.node["node_ip"] == "127.0.0.1" and stats.node["pid"] != os.getpid()
        assert stats.node["hostname"] == socket.gethostname() and stats.node["cpu"]
    assert not ray.is_initialized()
