"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

FASHION_MNIST = Path(os.environ.get("NAS_DATA_DIR", "/usr/share/datasets")) / "fashion-mnist"


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    # Two cores on CI: one torch thread per test process keeps runs comparable and avoids oversubscription.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        raise RuntimeError(f"Fashion-MNIST is missing under {FASHION_MNIST}: run `make setup`")
    return FASHION_MNIST.parent
