"""Fixtures for supernet tests: a slice of real Fashion-MNIST and small ofa-mbv3 spaces."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from supernets import OfaMbv3Space, make_space

FMNIST = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = (0.286,), (0.353,)


def _read_idx(path: Path, count: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        magic = int.from_bytes(f.read(4), "big")
        ndim = magic & 0xFF
        dims = [int.from_bytes(f.read(4), "big") for _ in range(ndim)]
        per_item = int(np.prod(dims[1:])) if ndim > 1 else 1
        data = np.frombuffer(f.read(per_item * count), dtype=np.uint8)
    return data.reshape(count, *dims[1:])


@pytest.fixture(scope="session")
def fmnist() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x, train_y, test_x, test_y): 1024 train and 512 test images, float [0, 1], N x 1 x 28 x 28."""
    if not FMNIST.exists():
        pytest.fail(
            "Fashion-MNIST is not installed: run `make setup` (apt-get install dataset-fashion-mnist)"
        )
    n_train, n_test = 1024, 512
    tx = torch.from_numpy(_read_idx(FMNIST / "train-images-idx3-ubyte.gz", n_train).copy()).float() / 255
    ty = torch.from_numpy(_read_idx(FMNIST / "train-labels-idx1-ubyte.gz", n_train).astype(np.int64))
    vx = torch.from_numpy(_read_idx(FMNIST / "t10k-images-idx3-ubyte.gz", n_test).copy()).float() / 255
    vy = torch.from_numpy(_read_idx(FMNIST / "t10k-labels-idx1-ubyte.gz", n_test).astype(np.int64))
    return tx.unsqueeze(1), ty, vx.unsqueeze(1), vy


SPEC_SPACE = {
    "family": "ofa-mbv3",
    "kernel_sizes": [3, 5, 7],
    "expand_ratios": [3, 4, 6],
    "depths": [2, 3, 4],
    "width_mults": [0.75, 1.0],
    "resolutions": [20, 24, 28],
    "bits": None,
}

TINY_SPACE = {
    "family": "ofa-mbv3",
    "kernel_sizes": [3, 5],
    "expand_ratios": [2, 4],
    "depths": [1, 2],
    "width_mults": [0.5, 1.0],
    "resolutions": [16, 28],
    "stem_channels": 8,
    "head_channels": 32,
    "stages": [
        {"channels": 8, "stride": 1, "se": False, "act": "relu"},
        {"channels": 16, "stride": 2, "se": True, "act": "hswish"},
    ],
}


@pytest.fixture
def spec_space() -> OfaMbv3Space:
    space = make_space(SPEC_SPACE, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(space, OfaMbv3Space)
    return space


@pytest.fixture
def tiny_space() -> OfaMbv3Space:
    space = make_space(TINY_SPACE, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(space, OfaMbv3Space)
    return space
