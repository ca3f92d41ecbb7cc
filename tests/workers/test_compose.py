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
    assert "--job-slots 0" in services["ray-measure"]["command"]  # a measurement-only node
    # Ray's token authentication on every node and the API, as Ray's documentation sets it up.
    for name in ("ray-head", "ray-worker", "ray-measure", "api"):
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token"
        assert "RAY_AUTH_TOKEN" in services[name]["environment"]
    # The workers and the API share the artifact volume and the database.
    for name in ("ray-worker", "ray-measure", "api", "ray-head"):
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


def test_training_and_measurement_nodes_advertise_what_they_do() -> None:
    import pytest

    from workers.node import worker_command
    from workers.resources import node_resources

    assert node_resources(job_slots=1, profiles=[]) == {"nas_job_slot": 1.0}
    assert node_resources(job_slots=0, profiles=["cpu-fp32"]) == {"hw:cpu-fp32": 1.0, "nas_measure": 1.0}
    # A node that trains and serves a profile is not a measurement node.
    assert node_resources(job_slots=2, profiles=["cpu-fp32"]) == {"hw:cpu-fp32": 1.0, "nas_job_slot": 2.0}
    with pytest.raises(ValueError, match="known profiles"):
        node_resources(job_slots=1, profiles=["tpu-fp8"])
    with pytest.raises(ValueError, match="job_slots"):
        node_resources(job_slots=-1)
    cmd = worker_command("127.0.0.1:6379", job_slots=0, profiles=["cpu-fp32"], node_ip_address="127.0.0.1")
    assert cmd[cmd.index("--node-ip-address") + 1] == "127.0.0.1"


def test_worker_refuses_a_profile_it_cannot_serve() -> None:
    from typer.testing import CliRunner

    from api.cli import app

    result = CliRunner().invoke(app, ["worker", "--address", "head:6379", "--profiles", "cpu-fp32,nope"])
    assert result.exit_code == 2
    assert "nope" in result.output and "known profiles" in result.output
