"""Revision 0005_initial_sample: a job stored before the FLOPs-stratified default keeps its uniform sample."""

from __future__ import annotations

from alembic import command

from nas.schemas import JobSpec
from nas.store import Database, crud
from tests.store.revisions import HEAD_REVISION, insert_old_jobs


def test_old_specs_keep_the_uniform_initial_sample_and_new_ones_are_untouched(empty_db: Database) -> None:
    empty_db.upgrade("0004_schedule_samplers")
    specs = {
        "old": {"search": {"measure_budget": 30, "rounds": 2}, "seed": 3},
        "new-strat": {"search": {"measure_budget": 30, "initial_sample": "flops-stratified"}},
        "new-uniform": {"search": {"initial_sample": "uniform"}},
        "bare": {},
    }
    insert_old_jobs(empty_db, specs)
    empty_db.upgrade()
    assert empty_db.current_revision() == HEAD_REVISION
    with empty_db.read() as s:
        stored = {job_id: crud.get_job(s, job_id=job_id).spec for job_id in specs}  # type: ignore[union-attr]
    assert stored["old"] == {
        "search": {"measure_budget": 30, "rounds": 2, "initial_sample": "uniform"},
        "seed": 3,
    }
    assert stored["bare"] == {"search": {"initial_sample": "uniform"}}
    for job_id in ("new-strat", "new-uniform"):
        assert stored[job_id] == specs[job_id]

    cfg = empty_db.alembic_config()
    with empty_db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004_schedule_samplers")
    with empty_db.read() as s:
        back = {job_id: crud.get_job(s, job_id=job_id).spec for job_id in specs}  # type: ignore[union-attr]
    assert back["old"] == specs["old"]
    assert back["new-strat"] == {"search": {"measure_budget": 30}}


def test_a_spec_stored_today_names_its_initial_sample() -> None:
    """What the migration relies on: every spec stored from now on carries the field."""
    spec = JobSpec.model_validate(
        {
            "name": "x",
            "dataset": {"kind": "builtin", "name": "fashion-mnist"},
            "search_space": {"family": "ofa-mbv3"},
            "objectives": [
                {"metric": "accuracy", "goal": "max"},
                {"metric": "latency_ms", "goal": "min", "hardware": "cpu-fp32"},
            ],
        }
    ).model_dump(mode="json")
    assert spec["search"]["initial_sample"] == "flops-stratified"
    assert spec["dataset"]["val_fraction"] == 0.1
