from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.data import DatasetError, load_dataset

FMNIST = {"kind": "builtin", "name": "fashion-mnist"}


def test_fashion_mnist_split_is_seeded_and_disjoint(fashion_mnist_dir: Path) -> None:
    a = load_dataset(FMNIST, data_dir=fashion_mnist_dir, seed=3)
    b = load_dataset(FMNIST, data_dir=fashion_mnist_dir, seed=3)
    c = load_dataset(FMNIST, data_dir=fashion_mnist_dir, seed=4)
    assert (len(a.train_x), len(a.val_x), len(a.test_x)) == (54000, 6000, 10000)
    assert a.train_x.shape[1:] == (1, 28, 28) and a.num_classes == 10
    assert float(a.train_x.min()) >= 0.0 and float(a.train_x.max()) <= 1.0
    assert a.sha256 == b.sha256 and a.sha256 != c.sha256
    assert bool((a.val_x[:50] == b.val_x[:50]).all())
    assert not bool((a.val_x[:50] == c.val_x[:50]).all())
    # No validation image is also a training image (compare a sample by exact pixels).
    train_keys = {bytes(x.numpy().tobytes()) for x in a.train_x[:20000]}
    assert not any(bytes(x.numpy().tobytes()) in train_keys for x in a.val_x[:200])


def test_limit_caps_every_split(fashion_mnist_dir: Path) -> None:
    d = load_dataset({**FMNIST, "limit": 120}, data_dir=fashion_mnist_dir, seed=0)
    assert (len(d.train_x), len(d.val_x), len(d.test_x)) == (120, 120, 120)
    assert d.calibration_images(50, seed=1).shape == (50, 1, 28, 28)


def test_npz_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(200, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 4, size=200)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_dataset({"kind": "npz", "uri": str(tmp_path / "d.npz")}, data_dir=tmp_path, seed=0)
    assert d.train_x.shape[1:] == (3, 16, 16)
    assert len(d.train_x) + len(d.val_x) + len(d.test_x) == 200
    assert d.num_classes == 4


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset-fashion-mnist"):
        load_dataset(FMNIST, data_dir=tmp_path, seed=0)
    with pytest.raises(DatasetError, match="unknown built-in"):
        load_dataset({"kind": "builtin", "name": "imagenet"}, data_dir=tmp_path, seed=0)
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match="needs arrays 'x'"):
        load_dataset({"kind": "npz", "uri": str(tmp_path / "bad.npz")}, data_dir=tmp_path, seed=0)
