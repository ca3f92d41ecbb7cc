"""docker-compose.yml describes the cluster form; no Docker engine runs here, so it is checked by parsing."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_the_cluster_services() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgres", "ray-head", "ray-worker", "api"} <= set(services)
    api = services["api"]
    assert api["environment"]["NAS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api["environment"]["RAY_ADDRESS"] == "ray-head:6379"
    assert "nas serve" in api["command"]
    assert "nas worker" in services["ray-worker"]["command"]
    # The workers and the API share the artifact volume and the database.
    for name in ("ray-worker", "api", "ray-head"):
        assert "artifacts:/artifacts" in services[name]["volumes"]
        assert services[name]["environment"]["NAS_ARTIFACT_ROOT"] == "/artifacts"


def test_worker_node_advertises_its_hardware() -> None:
    import json

    from workers.node import worker_command

    cmd = worker_command("head:6379", job_slots=2)
    resources = json.loads(cmd[cmd.index("--resources") + 1])
    assert resources["hw:cpu-fp32"] == 1.0
    assert resources["nas_job_slot"] == 2.0
    assert cmd[cmd.index("--address") + 1] == "head:6379"
