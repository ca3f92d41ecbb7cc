"""A real server for end-to-end tests: uvicorn in a subprocess over a temporary SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]

# A small ofa-mbv3 job on Fashion-MNIST timed on cpu-fp32: the end-to-end tests' and `nas bench
# api-load`'s (which trains it longer) job.
TINY_SPEC: dict[str, Any] = {
    "name": "tiny-e2e",
    "dataset": {"kind": "builtin", "name": "fashion-mnist", "limit": 300},
    "search_space": {
        "family": "ofa-mbv3",
        "kernel_sizes": [3, 5],
        "expand_ratios": [3, 4],
        "depths": [1, 2],
        "width_mults": [0.75, 1.0],
        "resolutions": [20, 28],
    },
    "training": {
        "schedule": "sandwich",
        "epochs": 1,
        "batch_size": 64,
        "lr": 0.05,
        "bn_calibration_images": 200,
    },
    "hardware": ["cpu-fp32"],
    "objectives": [
        {"metric": "accuracy", "goal": "max"},
        {"metric": "latency_ms", "hardware": "cpu-fp32", "goal": "min"},
    ],
    "search": {"algorithm": "nsga2", "measure_budget": 10, "rounds": 1, "population": 8, "generations": 3},
    "seed": 0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    tmp: Path
    process: subprocess.Popen[bytes]

    def token(self, user: str) -> str:
        """A token made by the real CLI (`nas token create USER`)."""
        out = subprocess.run(
            [sys.executable, "-m", "api.cli", "token", "create", user],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip().splitlines()[-1].strip()


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_") and k != "RAY_ADDRESS"}
    env.update(
        NAS_DATABASE_URL=f"sqlite:///{tmp / 'nas.db'}",
        NAS_ARTIFACT_ROOT=str(tmp / "artifacts"),
        NAS_DATA_DIR=os.environ.get("NAS_DATA_DIR", "/usr/share/datasets"),
        HOME=str(tmp),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def live_server(
    tmp: Path, log_name: str = "server.log", *, start_timeout_s: float = 600, **extra_env: str
) -> Iterator[LiveServer]:
    """The API under uvicorn in its own process group (its embedded Ray included), ended as a whole.

    The server binds a port of the kernel's choosing and reports it in a file (``tests/e2e/serve.py``):
    a port picked here in advance could be taken by the embedded Ray before uvicorn bound it.
    """
    env = server_env(tmp, **extra_env)
    log_path = tmp / log_name
    port_file = tmp / f"{log_name}.port"
    port_file.unlink(missing_ok=True)
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.serve", str(port_file)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = ""
    try:
        deadline = time.monotonic() + start_timeout_s  # Ray's start-up on a busy 2-core machine
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text()[-4000:]}")
            if not url and port_file.is_file():
                url = f"http://127.0.0.1:{int(port_file.read_text())}"
            try:
                if url and httpx.get(f"{url}/v1/healthz", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"server did not come up:\n{log_path.read_text()[-4000:]}")
        yield LiveServer(url=url, env=env, tmp=tmp, process=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        kill_group(proc)
        log.close()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the server's process group (Ray processes it started)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def user_client(server: LiveServer, user: str) -> httpx.Client:
    """An HTTP client of ``server`` carrying a fresh token of ``user``."""
    token = server.token(user)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def wait_for_job(client: httpx.Client, job_id: str, *, timeout_s: float) -> dict[str, Any]:
    """Poll the job until it reaches a final status; returns it."""
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s: {job}")
