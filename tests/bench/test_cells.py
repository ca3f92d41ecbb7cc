"""Resumable benchmark cells (bench/cells.py): stored once, reused on resume, keyed by config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench.cells import STOP_FILE, CellStore, Paused, config_hash, run_cells


def square(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell function the worker processes import by name; fails on request."""
    if cell["x"] < 0:
        raise ValueError(f"negative cell {cell['x']}")
    return {"y": cell["x"] ** 2, "pid": os.getpid()}


def cells(*xs: int) -> list[dict[str, Any]]:
    return [{"x": x, "tag": "a"} for x in xs]


def test_results_in_order_and_stored(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {"n": 3})
    seen: list[int] = []
    out = run_cells(store, cells(3, 1, 2), square, on_done=lambda c, r: seen.append(c["x"]))
    assert [r["y"] for r in out] == [9, 1, 4]
    assert seen == [3, 1, 2]
    assert store.done() == 3
    assert store.load({"x": 1, "tag": "a"}) == out[1]
    assert {r["cpu"] for r in store.ran_on()} and all("finished" in r for r in store.ran_on())


def test_resume_computes_only_missing_cells(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {"n": 3})
    first = run_cells(store, cells(1, 2), square)
    computed: list[int] = []
    again = run_cells(
        CellStore(tmp_path, "demo", {"n": 3}),
        cells(1, 2, 5),
        square,
        on_done=lambda c, r: computed.append(c["x"]),
    )
    assert computed == [5]  # 1 and 2 came from the store
    assert again[:2] == first and again[2]["y"] == 25


def test_another_config_reuses_nothing(tmp_path: Path) -> None:
    run_cells(CellStore(tmp_path, "demo", {"n": 3}), cells(1), square)
    other = CellStore(tmp_path, "demo", {"n": 4})
    assert other.dir != CellStore(tmp_path, "demo", {"n": 3}).dir
    assert other.done() == 0
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})


def test_a_failing_cell_keeps_the_finished_ones(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {})
    with pytest.raises(ValueError, match="negative cell -1"):
        run_cells(store, cells(2, -1, 3), square)
    assert store.load({"x": 2, "tag": "a"}) == {"y": 4, "pid": os.getpid()}
    assert store.load({"x": -1, "tag": "a"}) is None


def test_a_cell_file_of_another_cell_is_refused(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {})
    run_cells(store, cells(2), square)
    store.path({"x": 2, "tag": "a"}).rename(store.path({"x": 7, "tag": "a"}))
    with pytest.raises(ValueError, match="holds cell"):
        store.load({"x": 7, "tag": "a"})


def test_worker_processes(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {})
    out = run_cells(store, cells(1, 2, 3, 4), square, jobs=2)
    assert [r["y"] for r in out] == [1, 4, 9, 16]
    pids = {r["pid"] for r in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert store.done() == 4


def test_a_stop_file_pauses_and_a_rerun_resumes(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {})

    def stop_after_first(cell: dict[str, Any], result: dict[str, Any]) -> None:
        (store.dir / STOP_FILE).touch()

    with pytest.raises(Paused, match="1 of 3 cells stored") as paused:
        run_cells(store, cells(1, 2, 3), square, on_done=stop_after_first)
    assert (paused.value.done, paused.value.total) == (1, 3)
    (store.dir / STOP_FILE).unlink()
    computed: list[int] = []
    out = run_cells(store, cells(1, 2, 3), square, on_done=lambda c, r: computed.append(c["x"]))
    assert computed == [2, 3] and [r["y"] for r in out] == [1, 4, 9]
    assert all(r["code"] for r in store.ran_on())


def test_a_stop_file_lets_the_running_cells_finish(tmp_path: Path) -> None:
    store = CellStore(tmp_path, "demo", {})
    (store.dir / STOP_FILE).touch()
    with pytest.raises(Paused, match="0 of 2"):
        run_cells(store, cells(1, 2), square, jobs=2)
    assert store.done() == 0
