"""Revision 0004_schedule_samplers: a pooling job stored with the old default sampler can still run."""

from __future__ import annotations

from nas.store import Database, crud
from supernets.training import TrainConfig, schedule_samplers
from tests.store.revisions import insert_old_jobs


def _training(schedule: str, sampler: str | None) -> dict[str, object]:
    return {"schedule": schedule, "epochs": 1, "sampler": sampler}


def test_old_mixture_specs_get_the_mixture_sampler_and_others_are_untouched(empty_db: Database) -> None:
    empty_db.upgrade("0003_leases")
    specs = {
        "pool": {"training": _training("balanced-mixture", "uniform"), "seed": 3},
        "pool-new": {"training": _training("balanced-mixture", "balanced-mixture")},
        "ofa": {"training": _training("sandwich", "uniform")},
        "ofa-strat": {"training": _training("deps", "flops-stratified")},
        "bare": {},
    }
    insert_old_jobs(empty_db, specs)
    empty_db.upgrade("0004_schedule_samplers")
    assert empty_db.current_revision() == "0004_schedule_samplers"
    with empty_db.read() as s:
        stored = {job_id: crud.get_job(s, job_id=job_id).spec for job_id in specs}  # type: ignore[union-attr]
    assert stored["pool"] == {"training": _training("balanced-mixture", "balanced-mixture"), "seed": 3}
    for job_id in ("pool-new", "ofa", "ofa-strat", "bare"):
        assert stored[job_id] == specs[job_id]
    # what the migrated spec names is a sampler the schedule draws with
    sampler = stored["pool"]["training"]["sampler"]
    assert sampler in schedule_samplers("balanced-mixture")
    assert TrainConfig(sampler=sampler).sampler == "balanced-mixture"
