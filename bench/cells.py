"""Resumable benchmark runs: each independent unit of work (a *cell*) is saved when it finishes.

A full benchmark can take longer than one sitting on a small machine. Its cells (one training
run of one schedule, budget and seed, say) are independent, so each is written to a store as soon
as it is done, and a later run of the same configuration does only the cells still missing. The
store is keyed by a hash of the configuration: change any setting and no old cell is reused.

Cells run in ``jobs`` worker processes (one torch thread each), so a 2-core machine trains two
cells at once. A killed run loses only the cells in flight. Each cell records the machine it ran
on, its load average and when it finished, because cells of one report may come from several
sittings.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch


def config_hash(config: dict[str, Any]) -> str:
    """The first 12 hex digits of the sha256 of ``config`` as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class CellStore:
    """``root/<name>/<config hash>/<cell key>.json``, one file per finished cell, written atomically."""

    def __init__(self, root: Path, name: str, config: dict[str, Any]) -> None:
        self.dir = root / name / config_hash(config)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write(self.dir / "config.json", config)

    @staticmethod
    def key(cell: dict[str, Any]) -> str:
        """A file name from a cell's identifying fields, e.g. ``seed=0,schedule=deps,budget=0.5``."""
        return ",".join(f"{k}={cell[k]}" for k in cell)

    def path(self, cell: dict[str, Any]) -> Path:
        return self.dir / f"{self.key(cell)}.json"

    def load(self, cell: dict[str, Any]) -> dict[str, Any] | None:
        path = self.path(cell)
        if not path.is_file():
            return None
        doc = json.loads(path.read_text())
        if doc.get("cell") != cell:
            raise ValueError(f"{path} holds cell {doc.get('cell')}, expected {cell}")
        result: dict[str, Any] = doc["result"]
        return result

    def save(self, cell: dict[str, Any], result: dict[str, Any], ran_on: dict[str, Any]) -> None:
        self._write(
            self.path(cell),
            {
                "cell": cell,
                "result": result,
                "ran_on": ran_on,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def _cells(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("*.json") if p.name != "config.json")

    def done(self) -> int:
        """How many cells are stored."""
        return len(self._cells())

    def ran_on(self) -> list[dict[str, Any]]:
        """Where and when each stored cell ran (its ``ran_on`` plus ``finished``)."""
        docs = [json.loads(p.read_text()) for p in self._cells()]
        return [d["ran_on"] | {"finished": d["finished"]} for d in docs]

    @staticmethod
    def _write(path: Path, doc: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(doc, indent=1, default=str))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


class RecordLog:
    """``dir/name``: one JSON line per finished measurement, appended and fsynced as each is taken.

    For work made of many small deterministic measurements (a subnet scored, a latency taken),
    where a cell per measurement would be thousands of files: a run killed or paused loses none,
    and a rerun takes only what is missing. A last line cut by a kill mid-write is dropped (and
    its measurement taken again). Each line records when, at what load and by which code it was
    taken, because one report's measurements may come from several sittings.
    """

    def __init__(self, dir: Path, name: str = "measurements.jsonl") -> None:
        self.path = dir / name
        self.code = checkout_version()

    def load(self) -> list[dict[str, Any]]:
        """The stored records; a cut last line is removed from the file."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()
        if lines and not _whole_json(lines[-1]):
            lines = lines[:-1]
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text("".join(f"{line}\n" for line in lines))
            os.replace(tmp, self.path)
        return [json.loads(line) for line in lines if line]

    def append(self, record: dict[str, Any]) -> None:
        doc = {
            **record,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_1min": round(os.getloadavg()[0], 2),
            "code": self.code,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(doc) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _whole_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def checkout_version() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes), or ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _one_thread() -> None:
    torch.set_num_threads(1)


def _timed(fn: Callable[[dict[str, Any]], dict[str, Any]], cell: dict[str, Any]) -> dict[str, Any]:
    from bench.common import machine_info

    load_before = os.getloadavg()
    result = fn(cell)
    # the machine as every report records it (its load average taken now, after the cell)
    ran_on = machine_info() | {"pid": os.getpid(), "load_average_before": [round(v, 2) for v in load_before]}
    return {"result": result, "ran_on": ran_on}


class Paused(Exception):
    """A run stopped by its ``STOP`` file before every cell was done; running it again resumes."""

    def __init__(self, store: CellStore, total: int) -> None:
        self.done, self.total = store.done(), total
        super().__init__(
            f"paused by {store.dir / STOP_FILE}: {self.done} of {total} cells stored; "
            "remove the file and run again to resume"
        )


STOP_FILE = "STOP"


def run_cells(
    store: CellStore,
    cells: list[dict[str, Any]],
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    jobs: int = 1,
    on_done: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every cell's result, in ``cells`` order: stored ones loaded, missing ones computed by ``fn``.

    ``fn`` must be a module-level function (it is sent to worker processes by name) and deterministic
    given its cell. With ``jobs`` = 1 the cells run in this process, one after the other. The code
    recorded with each cell is the checkout's when the run started (the workers' modules are
    imported then). A file ``STOP`` in the store's folder ends the run gracefully: no new cell
    starts, the ones running finish and are stored, and :class:`Paused` is raised.
    """
    code = checkout_version()
    results: dict[str, dict[str, Any]] = {}
    missing = []
    for cell in cells:
        stored = store.load(cell)
        if stored is None:
            missing.append(cell)
        else:
            results[store.key(cell)] = stored

    def finish(cell: dict[str, Any], out: dict[str, Any]) -> None:
        store.save(cell, out["result"], out["ran_on"] | {"code": code})
        results[store.key(cell)] = out["result"]
        if on_done is not None:
            on_done(cell, out["result"])

    def stopped() -> bool:
        return (store.dir / STOP_FILE).exists()

    if jobs <= 1:
        for cell in missing:
            if stopped():
                break
            finish(cell, _timed(fn, cell))
    else:
        for cell, out in _in_pool(missing, fn, jobs, stopped):
            finish(cell, out)
    if len(results) < len(cells):
        raise Paused(store, len(cells))
    return [results[store.key(c)] for c in cells]


def _in_pool(
    cells: list[dict[str, Any]],
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    jobs: int,
    stopped: Callable[[], bool],
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(cell, output) as each finishes; at most ``jobs`` in flight, started in ``cells`` order."""
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_one_thread) as pool:
        pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
        queue = list(cells)
        while queue or pending:
            while queue and len(pending) < jobs and not stopped():
                cell = queue.pop(0)
                pending[pool.submit(_timed, fn, cell)] = cell
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()
