"""The predictors benchmark's evidence helpers: the noise ceiling, recall, tolerance and held-out extremes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bench.predictors
from bench.predictors import (
    SPACE,
    _save,
    _supernet_path,
    correct_per_image,
    extreme_archs,
    load_data,
    noise_ceiling,
    split_half_tau,
    top_recall,
    trained_supernet,
    within,
)
from predictors import evaluate_predictions
from supernets import deployed_subnet, make_space, score_subnet
from supernets.training import make_trainer


def test_noise_ceiling_follows_spearman_brown_and_matches_the_issue_figure() -> None:
    # The issue's reading of the old report: a 2,000-vs-2,000 tau of 0.37 is a ceiling of about 0.64.
    assert noise_ceiling(0.37)["ceiling_tau"] == pytest.approx(0.64, abs=0.01)
    assert noise_ceiling(1.0)["ceiling_tau"] == pytest.approx(1.0)
    assert noise_ceiling(0.0)["ceiling_tau"] == 0.0
    values = [noise_ceiling(t)["ceiling_tau"] for t in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert values == sorted(values)
    # The corrected full-length agreement lies between the half-length one and the ceiling.
    c = noise_ceiling(0.4)
    assert 0.4 < c["full_length_retest_tau"] < c["ceiling_tau"]


def test_the_split_half_ceiling_predicts_how_well_the_true_accuracies_rank_the_measured_ones() -> None:
    """Simulated subnets with known accuracies, scored image by image: the ceiling estimated from the
    measurements alone is the tau the (perfect) true accuracies reach against those measurements."""
    rng = np.random.default_rng(0)
    n_subnets, n_images = 300, 2000
    true_acc = rng.uniform(0.84, 0.87, n_subnets)
    correct = rng.random((n_subnets, n_images)) < true_acc[:, None]
    observed = correct.mean(axis=1)
    achieved = evaluate_predictions(observed, true_acc).kendall_tau
    ceiling = noise_ceiling(split_half_tau(correct, halves=10))["ceiling_tau"]
    assert ceiling == pytest.approx(achieved, abs=0.05)
    # The uncorrected split-half figure understates it by far (the old report's mistake).
    assert split_half_tau(correct, halves=10) < achieved - 0.1


def test_top_recall_and_within() -> None:
    y = np.arange(20, dtype=float)
    assert top_recall(y, y) == 1.0
    assert top_recall(y, -y) == 0.0
    assert top_recall(y, -y, best="min") == 0.0
    assert top_recall(y, y, share=0.25) == 1.0
    truth, pred = np.array([100.0, 100.0, 100.0]), np.array([104.0, 95.0, 106.0])
    assert within(truth, pred, 0.05) == pytest.approx(2 / 3)


def test_extremes_are_distinct_valid_and_hold_the_largest_and_smallest() -> None:
    space = make_space(SPACE, in_channels=1, num_classes=10, image_size=28)
    archs = extreme_archs(space)
    hashes = [a.arch_hash for a in archs]
    assert len(set(hashes)) == len(hashes)
    assert space.largest().arch_hash in hashes and space.smallest().arch_hash in hashes
    for a in archs:
        space.validate(a)
    # Per dimension group one all-high-but-this and one all-low-but-this: kernel size alone at 7.
    macs = sorted(space.total_cost(a).macs for a in archs)
    assert macs[0] == space.total_cost(space.smallest()).macs
    assert macs[-1] == space.total_cost(space.largest()).macs
    assert len(archs) >= 8


def test_per_image_correctness_averages_to_score_subnet() -> None:
    space = make_space(SPACE, in_channels=1, num_classes=10, image_size=20)
    torch.manual_seed(0)
    supernet = space.build_supernet(mean=(0.5,), std=(0.25,)).eval()
    x = torch.rand(64, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(2))
    arch = space.sample(np.random.default_rng(0))
    mask = correct_per_image(deployed_subnet(supernet, arch, x[:32]), x, y, batch_size=16)
    assert mask.shape == (64,)
    assert float(mask.mean()) == pytest.approx(score_subnet(supernet, arch, x[:32], x, y))


def test_supernet_training_resumes_from_its_last_epoch(tmp_path, monkeypatch) -> None:
    """An interrupted training (the full run's takes hours) resumes after its last finished epoch and
    ends with the weights of an uninterrupted one; a finished one is not trained again."""
    monkeypatch.setattr(bench.predictors, "CACHE", tmp_path)
    cfg = {"images": 64, "epochs": 2, "schedule": "sandwich", "batch_size": 32, "lr": 0.05, "threads": 1}
    data = load_data(cfg)
    space = make_space(
        SPACE, in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    log: list[str] = []
    whole, path = trained_supernet(space, data, cfg, log)
    resume = tmp_path / path.name.replace(".pt", "-training.pt")
    assert resume.exists() and not any("resumed" in line for line in log)

    # the state an interruption after the first epoch leaves
    _, train_cfg = _supernet_path(space, data, cfg)
    torch.manual_seed(0)
    net = space.build_supernet(mean=data.mean, std=data.std)
    trainer = make_trainer("sandwich", supernet=net, space=space, config=train_cfg, seed=0)
    trainer.train_epoch(data.train_x, data.train_y)
    _save(trainer.state_dict(), resume)
    path.unlink()
    log = []
    resumed, _ = trained_supernet(space, data, cfg, log)
    assert any("resumed" in line and "after epoch 1" in line for line in log)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name

    path.unlink()  # the final weights lost, the last epoch's state kept: nothing is retrained
    log = []
    again, _ = trained_supernet(space, data, cfg, log)
    assert any("after epoch 2" in line for line in log) and not any(line.startswith("epoch") for line in log)
    assert all(
        torch.equal(a, b)
        for a, b in zip(whole.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_scores_are_kept_and_a_rerun_scores_only_what_is_missing(tmp_path) -> None:
    """The accuracy study's scores are stored as they are taken: a later sitting gets the same
    per-image results and accuracies back without scoring again; a line cut by a kill is scored anew."""
    from bench.cells import RecordLog
    from bench.predictors import Scores
    from nas.data import DatasetSplits

    space = make_space(SPACE, in_channels=1, num_classes=10, image_size=20)
    torch.manual_seed(0)
    supernet = space.build_supernet(mean=(0.5,), std=(0.25,)).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(48, 1, 20, 20, generator=g), torch.randint(0, 10, (48,), generator=g)
    data = DatasetSplits(
        name="random", train_x=x[:16], train_y=y[:16], val_x=x[16:32], val_y=y[16:32],
        test_x=x[32:], test_y=y[32:], num_classes=10, class_names=tuple("abcdefghij"), sha256="0",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)]
    calib = x[:16]

    first = Scores(RecordLog(tmp_path))
    tested = [first.test(supernet, a, calib, data) for a in archs]
    vals = [first.val(supernet, a, calib, data) for a in archs]
    assert first.resumed == 0 and len((tmp_path / "measurements.jsonl").read_text().splitlines()) == 6
    assert [float(t.mean()) for t in tested] == pytest.approx(
        [score_subnet(supernet, a, calib, data.test_x, data.test_y) for a in archs]
    )

    again = Scores(RecordLog(tmp_path))
    assert again.resumed == 6
    assert all(
        np.array_equal(again.test(supernet, a, calib, data), t) for a, t in zip(archs, tested, strict=True)
    )
    assert [again.val(supernet, a, calib, data) for a in archs] == vals
    assert len((tmp_path / "measurements.jsonl").read_text().splitlines()) == 6  # nothing scored twice

    path = tmp_path / "measurements.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    cut = Scores(RecordLog(tmp_path))
    assert cut.resumed == 5 and cut.val(supernet, archs[-1], calib, data) == vals[-1]
    assert len(path.read_text().splitlines()) == 6
