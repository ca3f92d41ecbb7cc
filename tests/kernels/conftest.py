"""Fixtures for the kernel tests: seeded generators, BatchNorm statistics, a Fashion-MNIST slice."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def randomize_bn(gen: torch.Generator) -> Callable[[nn.Module], None]:
    """Give every BatchNorm non-trivial statistics and affine weights, so folding them is tested."""

    @torch.no_grad()
    def apply(module: nn.Module) -> None:
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))

    return apply


@pytest.fixture(scope="session")
def fmnist_images() -> torch.Tensor:
    """The first 32 Fashion-MNIST test images as floats in [0, 1], shape (32, 1, 28, 28)."""
    path = FMNIST / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.fail(
            f"Fashion-MNIST not installed at {FMNIST}: run `make setup` (package dataset-fashion-mnist)"
        )
    n = 32
    with gzip.open(path, "rb") as f:
        header = f.read(16)
        assert int.from_bytes(header[:4], "big") == 2051, "not an IDX image file"
        raw = f.read(n * 28 * 28)
    pixels = np.frombuffer(raw, dtype=np.uint8).reshape(n, 1, 28, 28)
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)
