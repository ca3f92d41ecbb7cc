"""What only PostgreSQL used to refuse: NaN in JSON, and two jobs numbering one predictor at once."""

from __future__ import annotations

import math
import threading

import pytest

from nas.search.study import open_storage
from nas.store import Database, crud


def test_nan_and_infinity_in_json_are_stored_as_null(db: Database, job_id: str) -> None:
    with db.session() as s:
        crud.add_event(
            s,
            job_id=job_id,
            kind="log",
            payload={"loss": math.nan, "nested": [1.0, math.inf, {"x": -math.inf}]},
        )
        front = crud.save_front(
            s, job_id=job_id, hardware="cpu-fp32", round=1, objectives=[], reference_point=[math.nan, 1.0],
            hypervolume=None, points=[], final=False,
        )  # fmt: skip
        front_id = front.id
    with db.read() as s:
        (event,) = crud.list_events(s, job_id=job_id)
        assert event.payload == {"loss": None, "nested": [1.0, None, {"x": None}]}
        front = next(f for f in crud.front_history(s, job_id=job_id) if f.id == front_id)
        assert front.reference_point == [None, 1.0]


def test_concurrent_predictor_versions_are_distinct(db: Database) -> None:
    n = 4
    barrier = threading.Barrier(n)
    versions: list[int] = []
    errors: list[BaseException] = []

    def fit() -> None:
        try:
            barrier.wait()
            with db.session() as s:
                row = crud.add_predictor(
                    s, kind="latency", target="latency_ms@cpu-fp32", space_key="k", n_samples=1, metrics={}
                )
                versions.append(row.version)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=fit) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(versions) == [1, 2, 3, 4]


def test_optuna_storage_pings_pooled_postgres_connections(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("pool pre-ping is for PostgreSQL; SQLite gets a busy timeout instead")
    storage = open_storage(db.url)
    assert storage is not None
    engine = storage.engine  # type: ignore[attr-defined]
    assert engine.pool._pre_ping  # a connection killed by a PostgreSQL restart is replaced
    engine.dispose()
