"""The API freezes its start-up heap out of full garbage collections (``api.app``, ``NAS_GC_FREEZE``),
and the live test server can count its full collections (``tests/e2e/serve.py``)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serve import record_full_collections

ROOT = Path(__file__).resolve().parents[2]
# A fresh process (this one may have frozen its heap already): start the app, report what the
# collector still scans and what it froze.
PROBE = """
import gc, json, sys
from fastapi.testclient import TestClient
from api.app import create_app
from nas.settings import Settings
app = create_app(Settings(scheduler="none", database_url=f"sqlite:///{sys.argv[1]}"))
with TestClient(app) as client:
    assert client.get("/v1/healthz").status_code == 200
    print(json.dumps({"frozen": gc.get_freeze_count(), "scanned": len(gc.get_objects()),
                      "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("freeze", ["1", "0"])
def test_the_api_freezes_what_it_loaded_at_start_up(tmp_path: Path, freeze: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env["NAS_GC_FREEZE"] = freeze
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "nas.db")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if freeze == "1":
        # what a first submission imports (torch) is loaded and frozen: full collections scan
        # only what came after, a small fraction of the heap
        assert got["torch"] and got["frozen"] > 10 * got["scanned"]
    else:
        assert got["frozen"] == 0


def test_full_collections_are_counted_with_their_pauses(tmp_path: Path) -> None:
    path = tmp_path / "gc.json"
    callback = record_full_collections(path)
    try:
        assert json.loads(path.read_text())["full_collections"] == 0
        gc.collect()
        gc.collect(1)  # not a full collection: not counted
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    stats = json.loads(path.read_text())
    assert stats["full_collections"] == 2 and len(stats["pauses_ms"]) == 2
    assert stats["pause_ms_total"] == pytest.approx(sum(stats["pauses_ms"]), abs=0.01)
    assert all(p >= 0 for p in stats["pauses_ms"])
