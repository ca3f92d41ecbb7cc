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

    log = MeasurementLog(tmp_path / "cells", {"case": 1})
    first = Oracle(supernet=supernet, data=data, cfg=cfg, log=log)
    assert first.resumed == 0
    measured = [first.one(a) for a in archs]
    tested = first.test_accuracy(archs[0])
    assert len(log.path.read_text().splitlines()) == 4

    again = Oracle(supernet=supernet, data=data, cfg=cfg, log=MeasurementLog(tmp_path / "cells", {"case": 1}))
    assert again.resumed == 4
    assert [again.one(a) for a in archs] == measured and again.test_accuracy(archs[0]) == tested
    assert len(log.path.read_text().splitlines()) == 4  # nothing measured twice

    text = log.path.read_text()
    log.path.write_text(text[: -len(text.splitlines()[-1]) // 2 - 1])  # a kill in mid-line
    cut = Oracle(supernet=supernet, data=data, cfg=cfg, log=MeasurementLog(tmp_path / "cells", {"case": 1}))
    assert cut.resumed == 3
    assert cut.test_accuracy(archs[0]) == tested  # deterministic: the same score again
    lines = log.path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["arch_hash"] for line in lines)

    other = MeasurementLog(tmp_path / "cells", {"case": 2})  # another configuration reuses nothing
    assert other.path != log.path and other.load() == []
