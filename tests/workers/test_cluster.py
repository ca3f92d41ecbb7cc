"""A real multi-node Ray cluster on this machine, every node its own process on 127.0.0.1 with Ray's
token authentication: a head, a training node (a job slot, no profile) and a measurement node
(cpu-fp32, no job slot), the API server joining with RAY_ADDRESS over PostgreSQL. A tiny job runs
to the end and every latency it measured was timed on the measurement node."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.e2e.server import ROOT, free_port, live_server
from tests.e2e.test_service import TINY_SPEC
from tests.postgres import PG_ENV, postgres_schema_url
from workers.node import head_command, worker_command

# Minutes on a quiet machine; a busy one (Ray start-up is CPU-bound) can take several times that.
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(2400)]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (skipped when no server answers at NAS_TEST_POSTGRES_URL)."""
    base = os.environ.get(PG_ENV)
    if base:
        engine = create_engine(base)
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        except OperationalError as exc:
            pytest.skip(f"no PostgreSQL server answers at {PG_ENV}: {exc.orig}")
        finally:
            engine.dispose()
    with postgres_schema_url() as url:
        yield url


def _ours(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (this test's temp folder or port)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


@dataclass
class Cluster:
    root: Path
    address: str
    env: dict[str, str]
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], *, ready: str, timeout_s: float = 600) -> None:
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.nodes.append(proc)
        deadline = time.monotonic() + timeout_s
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM each node (it drains and stops its Ray processes), then SIGKILL any process left
        that names this cluster's temp folder or head port; no other Ray on the machine is touched."""
        for proc in reversed(self.nodes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.nodes):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for marker in (str(self.root), self.address):
            for pid in _ours(marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # A short folder: Ray's socket paths under it must stay below 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="nascl", dir="/tmp"))
    token = root / "ray_token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NAS_", "RAY_"))}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
        HOME=str(root),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    c = Cluster(root=root, address=f"127.0.0.1:{port}", env=env)
    try:
        yield c
    finally:
        c.stop()
        assert not _ours(str(root)), "processes of the test cluster survived it"
        shutil.rmtree(root, ignore_errors=True)


def _wait_job(client: httpx.Client, job_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(2.0)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s: {job}")


def test_a_job_on_a_token_authenticated_cluster_measures_on_the_measurement_node(
    cluster: Cluster, postgres_url: str, tmp_path: Path
) -> None:
    ready = "Ray runtime started"
    head = head_command(port=int(cluster.address.rsplit(":", 1)[1]), node_ip_address="127.0.0.1")
    try:
        cluster.start("head", [*head, "--temp-dir", str(cluster.root / "ray")], ready=ready)
    except RuntimeError as exc:  # Ray gives a raylet 30 s to register: a starved machine misses it
        if "timed out during startup" not in str(exc):
            raise
        cluster.stop()
        cluster.nodes.clear()
        cluster.start("head", [*head, "--temp-dir", str(cluster.root / "ray2")], ready=ready)
    join = "This command will now block"
    trainer = worker_command(
        cluster.address, job_slots=1, profiles=[], num_cpus=1, node_ip_address="127.0.0.1"
    )
    cluster.start("trainer", trainer, ready=join)
    measurer = worker_command(
        cluster.address, job_slots=0, profiles=["cpu-fp32"], num_cpus=1, node_ip_address="127.0.0.1"
    )
    cluster.start("measurer", measurer, ready=join)
    for name in ("head", "trainer", "measurer"):
        log = re.sub(r"\x1b\[[0-9;]*m", "", (cluster.root / f"{name}.log").read_text())
        assert "Local node IP: 127.0.0.1" in log, f"{name} is not on 127.0.0.1:\n{log[-2000:]}"
        assert "InvalidAuthToken" not in log

    api_env = {k: v for k, v in cluster.env.items() if k.startswith("RAY_AUTH") or k in ("PYTHONPATH",)}
    with live_server(
        tmp_path,
        start_timeout_s=600,
        NAS_DATABASE_URL=postgres_url,
        NAS_SCHEDULER="ray",
        NAS_TRAIN_THREADS="1",
        RAY_ADDRESS=cluster.address,
        **api_env,
    ) as server:
        headers = {"Authorization": f"Bearer {server.token('alice')}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            hardware = {h["profile"]: h for h in client.get("/v1/hardware").json()}
            assert set(hardware) == {"cpu-fp32"}, hardware  # the trainer serves no profile
            fp32 = hardware["cpu-fp32"]
            assert fp32["nodes"] == ["127.0.0.1"] and len(fp32["measurement_nodes"]) == 1
            measurement_node = fp32["measurement_nodes"][0]

            r = client.post("/v1/jobs", json={**TINY_SPEC, "name": "cluster"})
            assert r.status_code == 201, r.text
            job = _wait_job(client, r.json()["id"], timeout_s=900)
            assert job["status"] == "succeeded", job

            subnets = client.get(f"/v1/jobs/{job['id']}/subnets").json()
            assert subnets
            for sub in subnets:
                node = sub["latency"]["cpu-fp32"]["node"]
                assert node["ray_node_id"] == measurement_node, node
                assert node["node_ip"] == "127.0.0.1"
                assert node["hostname"] == socket.gethostname()
                assert node["cpu"] and node["pid"] > 0 and node["pid"] != server.process.pid
