"""API fixtures: the app on a real SQLite file with the queue-only scheduler, and users with tokens."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from nas.settings import Settings
from nas.store import Database, crud
from workers.scheduler import Scheduler

SPEC: dict[str, Any] = {
    "name": "fmnist-tiny",
    "dataset": {"kind": "builtin", "name": "fashion-mnist", "limit": 64},
    "search_space": {
        "family": "ofa-mbv3",
        "kernel_sizes": [3, 5],
        "expand_ratios": [3, 4],
        "depths": [1, 2],
        "width_mults": [1.0],
        "resolutions": [28],
    },
    "training": {"schedule": "sandwich", "epochs": 1, "batch_size": 32, "lr": 0.05},
    "hardware": ["cpu-fp32"],
    "objectives": [
        {"metric": "accuracy", "goal": "max"},
        {"metric": "latency_ms", "hardware": "cpu-fp32", "goal": "min"},
    ],
    "constraints": [{"metric": "latency_ms", "hardware": "cpu-fp32", "max": 5.0}],
    "search": {"algorithm": "nsga2", "measure_budget": 8, "rounds": 1, "population": 8},
    "seed": 0,
}


@pytest.fixture
def spec() -> dict[str, Any]:
    """A small valid job spec (a fresh copy to edit)."""
    return copy.deepcopy(SPEC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        scheduler="none",
        database_url=f"sqlite:///{tmp_path / 'nas.db'}",
        artifact_root=str(tmp_path / "artifacts"),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the app with its lifespan run (migrations, scheduler start and shutdown)."""
    app = create_app(settings)
    app.state.sse_poll_s = 0.05
    with TestClient(app) as c:
        yield c


@pytest.fixture
def db(client: TestClient, settings: Settings) -> Iterator[Database]:
    """The app's database, opened separately, as a worker process would."""
    database = Database(settings.database_url)
    yield database
    database.dispose()


def _token(db: Database, name: str) -> tuple[int, str]:
    with db.session() as s:
        user = crud.get_or_create_user(s, name=name)
        return user.id, crud.create_token(s, user_id=user.id)


@pytest.fixture
def alice(db: Database) -> tuple[int, dict[str, str]]:
    """Alice's user id and auth headers."""
    uid, token = _token(db, "alice")
    return uid, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def bob(db: Database) -> tuple[int, dict[str, str]]:
    uid, token = _token(db, "bob")
    return uid, {"Authorization": f"Bearer {token}"}


class RecordingScheduler(Scheduler):
    """A stand-in for a cluster: remembers what it was asked to run and cancel; can refuse work."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.started = False
        self.stopped = False
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    def start(self) -> None:
        self.started = True

    def submit(self, job_id: str) -> None:
        if self.refuse:
            raise ConnectionError("cluster unreachable")
        self.submitted.append(job_id)

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    def hardware(self) -> list[dict[str, Any]]:
        return [{"profile": "cpu-fp32", "nodes": ["10.0.0.1"]}]

    def shutdown(self) -> None:
        self.stopped = True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's environment: the test database and a private config folder for the token file."""
    monkeypatch.setenv("NAS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NAS_ARTIFACT_ROOT", settings.artifact_root)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("NAS_TOKEN", raising=False)
    return settings


@pytest.fixture
def server(env: Settings) -> Iterator[str]:
    """A real uvicorn server on a free port, in a thread, with the queue-only scheduler."""
    port = _free_port()
    fastapi_app = create_app(env)
    fastapi_app.state.sse_poll_s = 0.05
    srv = uvicorn.Server(uvicorn.Config(fastapi_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
