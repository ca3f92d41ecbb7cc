"""The search benchmark's paired comparison: per-seed differences, wins and spread."""

from __future__ import annotations

import pytest

from bench.search import _paired


def test_paired_compares_seed_by_seed() -> None:
    rows = [
        {"method": "refine", "budget": 25, "seed": s, "hv_test": v}
        for s, v in enumerate([1.0, 2.0, 3.0, 4.0])
    ] + [
        {"method": "random", "budget": 200, "seed": s, "hv_test": v}
        for s, v in enumerate([0.5, 2.5, 2.0, 4.0])
    ]
    p = _paired(rows, ("refine", 25), ("random", 200))
    assert p["seeds"] == 4
    assert p["wins"] == 3  # a tie counts as reaching the other's hypervolume
    assert p["diff_mean"] == pytest.approx((0.5 - 0.5 + 1.0 + 0.0) / 4)
    assert p["diff_std"] > 0
    # Only seeds both methods ran are paired.
    p = _paired(rows[:2] + rows[4:], ("refine", 25), ("random", 200))
    assert p["seeds"] == 2 and p["wins"] == 1


def test_measurements_are_kept_and_a_rerun_measures_only_what_is_missing(tmp_path, monkeypatch) -> None:
    """The full run's oracle stores each measurement as it is taken; a later sitting reuses them (the
    same values, nothing measured again), and a line cut by a kill is dropped and measured again."""
    import json

    import numpy as np

    import bench.predictors
    from bench.predictors import SPACE, load_data, trained_supernet
    from bench.search import MeasurementLog, Oracle
    from supernets import make_space

    monkeypatch.setattr(bench.predictors, "CACHE", tmp_path / "cache")
    supernet_cfg = {
        "images": 64,
        "epochs": 1,
        "schedule": "sandwich",
        "batch_size": 32,
        "lr": 0.05,
        "threads": 1,
    }
    data = load_data(supernet_cfg)
    space = make_space(
        SPACE, in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    supernet, _ = trained_supernet(space, data, supernet_cfg, [])
    cfg = {"calib_images": 16, "warmup": 1, "repeats": 3}
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)]

    def log(case: int = 1, cpu: str = "cpu A") -> MeasurementLog:
        return MeasurementLog(tmp_path / "cells", {"case": case}, cpu=cpu)

    def lines(path) -> list[str]:
        return path.read_text().splitlines()

    first_log = log()
    first = Oracle(supernet=supernet, data=data, cfg=cfg, log=first_log)
    assert first.resumed == 0
    measured = [first.one(a) for a in archs]
    tested = first.test_accuracy(archs[0])
    acc_path, lat_path = first_log.accuracy.path, first_log.latency.path
    assert len(lines(acc_path)) == 4 and len(lines(lat_path)) == 3

    again = Oracle(supernet=supernet, data=data, cfg=cfg, log=log())
    assert again.resumed == 7
    assert [again.one(a) for a in archs] == measured and again.test_accuracy(archs[0]) == tested
    assert len(lines(acc_path)) == 4 and len(lines(lat_path)) == 3  # nothing measured twice

    text = acc_path.read_text()
    acc_path.write_text(text[: -len(text.splitlines()[-1]) // 2 - 1])  # a kill in mid-line
    cut = Oracle(supernet=supernet, data=data, cfg=cfg, log=log())
    assert cut.resumed == 6
    assert cut.test_accuracy(archs[0]) == tested  # deterministic: the same score again
    assert len(lines(acc_path)) == 4 and all(json.loads(line)["arch_hash"] for line in lines(acc_path))

    # Another CPU keeps every accuracy and times only the latencies again, in a store of its own.
    elsewhere_log = log(cpu="cpu B")
    assert elsewhere_log.accuracy.path == acc_path and elsewhere_log.latency.path != lat_path
    elsewhere = Oracle(supernet=supernet, data=data, cfg=cfg, log=elsewhere_log)
    assert elsewhere.resumed == 4
    again_b = [elsewhere.one(a) for a in archs]
    assert [m["accuracy"] for m in again_b] == [m["accuracy"] for m in measured]
    assert len(lines(acc_path)) == 4 and len(lines(elsewhere_log.latency.path)) == 3

    other = log(case=2)  # another configuration reuses nothing
    assert other.accuracy.path != acc_path and other.accuracy.load() == [] and other.latency.load() == []
