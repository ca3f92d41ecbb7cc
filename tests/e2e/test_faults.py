"""Faults of the whole service, on real servers and a real embedded Ray: an API SIGKILLed mid-job and
restarted, two API processes on one PostgreSQL database, and PostgreSQL restarting mid-job.

In every case each job runs to its end exactly once: one final front, one final status, no epoch
trained twice, and attempts counted as the lease protocol says.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nas.store import Database, crud
from tests.e2e.server import TINY_SPEC, free_port, kill_group, live_server, wait_for_job
from tests.postgres import postgres_schema_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TWO_EPOCHS: dict[str, Any] = {**TINY_SPEC, "training": {**TINY_SPEC["training"], "epochs": 2}}
# Short leases so that a dead worker's job is requeued within seconds (still far above the ~1 s renewal).
FAST_LEASES = {
    "NAS_SCHEDULER": "ray",
    "NAS_RAY_NUM_CPUS": "2",
    "NAS_LEASE_S": "20",
    "NAS_REAPER_INTERVAL_S": "1",
    "NAS_RETRY_BACKOFF_S": "1",
}


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _wait_for_epoch(client: httpx.Client, job_id: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = client.get(f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"}).json()
        if any(e["kind"] == "epoch" for e in events):
            return
        if client.get(f"/v1/jobs/{job_id}").json()["status"] not in ("queued", "running"):
            raise AssertionError(f"job {job_id} ended before its first epoch")
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} trained no epoch in {timeout_s} s")


FINAL_STATUSES = {"succeeded", "failed", "cancelled"}


def assert_ran_once(db: Database, job_id: str, *, epochs: int) -> int:
    """The job succeeded once: one final front and status, each epoch trained once; returns its attempts."""
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == crud.JobStatus.succeeded, job and (job.status, job.error)
        events = crud.list_events(s, job_id=job_id)
        statuses = [e.payload["status"] for e in events if e.kind == "status"]
        assert [st for st in statuses if st in FINAL_STATUSES] == ["succeeded"], statuses  # one end only
        assert len([f for f in crud.front_history(s, job_id=job_id) if f.final]) == 1
        checkpoints = crud.list_artifacts(s, job_id=job_id, kind="checkpoint")
        assert sorted(a.meta["epoch"] for a in checkpoints) == list(range(1, epochs + 1))
        return int(job.attempt)


def test_api_sigkilled_mid_job_and_restarted_finishes_the_job_once(tmp_path: Path) -> None:
    with live_server(tmp_path, log_name="first.log", **FAST_LEASES) as first:
        token = first.token("alice")
        client = _client(first.url, token)
        job_id = client.post("/v1/jobs", json=TWO_EPOCHS).json()["id"]
        _wait_for_epoch(client, job_id, timeout_s=400)
        os.kill(first.process.pid, signal.SIGKILL)  # the API, its embedded Ray's driver, dies mid-training
        first.process.wait()
        kill_group(first.process)  # and what Ray ran for it, as on a crashed host
        env = first.env
    with live_server(tmp_path, log_name="second.log", **FAST_LEASES) as second:
        client = _client(second.url, token)
        job = wait_for_job(client, job_id, timeout_s=600)
        assert job["status"] == "succeeded", (job, (tmp_path / "second.log").read_text()[-3000:])
    db = Database(env["NAS_DATABASE_URL"])
    try:
        # Attempt 1 was killed with the API; the restarted one's reaper requeued it as attempt 2.
        assert assert_ran_once(db, job_id, epochs=2) == 2
        with db.read() as s:
            logs = [e.payload.get("message") for e in crud.list_events(s, job_id=job_id) if e.kind == "log"]
        assert "resumed training after epoch 1" in logs
    finally:
        db.dispose()


def test_two_api_processes_on_one_postgres_run_each_job_once(tmp_path: Path) -> None:
    with postgres_schema_url() as url:
        env = {**FAST_LEASES, "NAS_DATABASE_URL": url, "NAS_ARTIFACT_ROOT": str(tmp_path / "artifacts")}
        with live_server(tmp_path, log_name="a.log", **env) as a:
            token = a.token("alice")
            client = _client(a.url, token)
            specs = [{**TINY_SPEC, "name": f"j{i}"} for i in range(2)]
            jobs = [client.post("/v1/jobs", json=spec).json()["id"] for spec in specs]
            # The second API starts while they are queued: at start-up it submits them to its own Ray too.
            with live_server(tmp_path, log_name="b.log", **env) as b:
                other = _client(b.url, token)
                for job_id in jobs:
                    job = wait_for_job(other, job_id, timeout_s=900)
                    assert job["status"] == "succeeded", (job, (tmp_path / "b.log").read_text()[-3000:])
        db = Database(url)
        try:
            for job_id in jobs:
                assert assert_ran_once(db, job_id, epochs=1) == 1  # claimed once, by one of the two
        finally:
            db.dispose()


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of this test's own (never the shared one), which the test may restart."""

    url: str
    data: Path
    run: list[str]
    bin: Path

    def ctl(self, *args: str) -> None:
        log = ["-l", str(self.data.parent / "server.log")] if "start" in args else []
        subprocess.run([*self.run, str(self.bin / "pg_ctl"), "-D", str(self.data), *log, *args], check=True)


def _postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))  # Debian's layout
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture()
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    run: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as the postgres user, if there is one
        no_user = subprocess.run(["id", "postgres"], capture_output=True).returncode != 0
        if shutil.which("runuser") is None or no_user:
            pytest.skip("running as root without a 'postgres' user to run a private PostgreSQL server")
        run = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="nas-pg-"))  # not under root's private pytest folder
    folder.chmod(0o755)
    if run:
        shutil.chown(folder, user="postgres")
    port = free_port()
    data = folder / "data"
    subprocess.run(
        [*run, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    pg = PrivatePostgres(
        url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", data=data, run=run, bin=bindir
    )
    # In its configuration, so that every start (the restart too) keeps to this port and folder.
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{folder}'\n")
    pg.ctl("-w", "start")
    try:
        yield pg
    finally:
        stop = [*run, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(stop, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_restarting_mid_job_is_survived(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    env = {
        **FAST_LEASES,
        "NAS_DATABASE_URL": private_postgres.url,
        "NAS_MAX_ATTEMPTS": "5",  # each outage a stage runs into costs an attempt
    }
    with live_server(tmp_path, **env) as srv:
        token = srv.token("alice")
        client = _client(srv.url, token)
        job_id = client.post("/v1/jobs", json=TWO_EPOCHS).json()["id"]
        _wait_for_epoch(client, job_id, timeout_s=400)
        private_postgres.ctl("-m", "fast", "-w", "stop")  # every connection is cut
        # Long enough that the worker touches the database during it whatever it is doing: a 3 s
        # outage on a loaded machine fell inside the end-of-epoch evaluation once, and no attempt was cut.
        time.sleep(8)
        private_postgres.ctl("-w", "start")
        job = wait_for_job(client, job_id, timeout_s=600)
        assert job["status"] == "succeeded", (job, (tmp_path / "server.log").read_text()[-3000:])
        assert client.get("/v1/healthz").status_code == 200
    db = Database(private_postgres.url)
    try:
        # The outage cut a write of training: that attempt ended, the next resumed from the checkpoint.
        assert assert_ran_once(db, job_id, epochs=2) >= 2
    finally:
        db.dispose()
