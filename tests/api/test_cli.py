"""The ``nas`` CLI: token creation on the database, and submit/status/pareto against a live server."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app, token_file, verify_bundle
from nas.schemas import JobStatus
from nas.settings import Settings
from nas.store import Database, crud

runner = CliRunner()


def test_token_create_prints_and_saves_a_working_token(env: Settings) -> None:
    result = runner.invoke(app, ["token", "create", "dana"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("nas_") and token_file().read_text().strip() == token
    assert token_file().stat().st_mode & 0o077 == 0
    db = Database(env.database_url)
    with db.session() as s:
        user = crud.user_for_token(s, token=token)
        assert user is not None and user.name == "dana"
    db.dispose()


def _write_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_submit_status_and_bad_spec(server: str, tmp_path: Path, spec: dict[str, Any]) -> None:
    assert runner.invoke(app, ["token", "create", "erin"]).exit_code == 0
    result = runner.invoke(app, ["--url", server, "submit", str(_write_spec(tmp_path, spec))])
    assert result.exit_code == 0, result.output
    job_id = result.output.strip().splitlines()[-1]
    status = runner.invoke(app, ["--url", server, "status", job_id])
    assert status.exit_code == 0 and "queued" in status.output and job_id in status.output
    spec["training"]["epochs"] = 0
    bad = runner.invoke(app, ["--url", server, "submit", str(_write_spec(tmp_path, spec))])
    assert bad.exit_code == 1 and "training.epochs" in bad.output
    unauth = runner.invoke(app, ["--url", server, "--token", "wrong", "status", job_id])
    assert unauth.exit_code == 1 and "401" in unauth.output


def _play_worker(db: Database, job_id_holder: list[str]) -> None:
    """What a worker writes while running a job: stage and progress events, a front, the final status."""
    while not job_id_holder:
        time.sleep(0.02)
    job_id = job_id_holder[0]
    with db.session() as s:
        crud.update_job(s, job_id=job_id, status=JobStatus.running, stage="train")
        crud.add_event(
            s, job_id=job_id, kind="stage", stage="train", payload={"stage": "train", "status": "started"}
        )
    for i in range(3):
        with db.session() as s:
            crud.add_event(
                s, job_id=job_id, kind="progress", stage="train", payload={"done": i + 1, "total": 3}
            )
    with db.session() as s:
        sub = crud.upsert_subnet(
            s, job_id=job_id, arch_hash="feedbeef", arch={"resolution": 28}, params=12345, flops=2_000_000,
            source="verify", accuracy_val=0.81, accuracy_test=0.8,
        )  # fmt: skip
        crud.put_measurement(
            s,
            profile="cpu-fp32",
            arch_hash="feedbeef",
            resolution=28,
            batch=1,
            stats={"median_ms": 0.75, "n": 9},
        )
        crud.save_front(
            s, job_id=job_id, hardware="cpu-fp32", round=2, objectives=[], reference_point=None,
            hypervolume=0.5, points=[(sub.id, {"accuracy": 0.81}, None)], final=True,
        )  # fmt: skip
        crud.finish_job(s, job_id=job_id, status=JobStatus.succeeded)


def test_submit_wait_follows_events_and_prints_the_front(
    server: str, env: Settings, tmp_path: Path, spec: dict[str, Any]
) -> None:
    assert runner.invoke(app, ["token", "create", "fay"]).exit_code == 0
    db = Database(env.database_url)
    holder: list[str] = []

    def find_job() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not holder:
            with db.session() as s:
                ids = crud.unfinished_job_ids(s)
            if ids:
                holder.append(ids[0])
            time.sleep(0.02)

    finder = threading.Thread(target=find_job)
    worker = threading.Thread(target=_play_worker, args=(db, holder))
    finder.start()
    worker.start()
    result = runner.invoke(app, ["--url", server, "submit", str(_write_spec(tmp_path, spec)), "--wait"])
    finder.join()
    worker.join()
    db.dispose()
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.output and "feedbeef" in result.output and "0.8100" in result.output
    assert "0.750" in result.output
    table = runner.invoke(app, ["--url", server, "pareto", holder[0]])
    assert table.exit_code == 0 and "feedbeef" in table.output


def test_verify_bundle_checks_every_listed_file(tmp_path: Path) -> None:
    files = {"arch.json": b"{}", "model.onnx": b"\x00\x01"}
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items())
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in {**files, "SHA256SUMS": sums.encode()}.items():
            zf.writestr(name, data)
        zf.extractall(tmp_path / "ok")
    assert verify_bundle(tmp_path / "ok") == ["arch.json", "model.onnx"]
    (tmp_path / "ok" / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ValueError, match=r"model\.onnx"):
        verify_bundle(tmp_path / "ok")


def test_bench_names_a_missing_benchmark(env: Settings) -> None:
    result = runner.invoke(app, ["bench", "no-such-bench"])
    assert result.exit_code == 2 and "bench.no_such_bench" in result.output


def test_a_benchmark_using_the_test_harness_imports_from_any_directory(tmp_path: Path) -> None:
    # `nas bench api-load` imports tests/e2e/server.py, which is not an installed package
    code = "from api.cli import import_benchmark; print(import_benchmark('api-load').__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "bench.api_load"
