"""Small real search spaces and arch sets for the predictor tests."""

from __future__ import annotations

import numpy as np
import pytest

from supernets import Arch, SearchSpace, make_space

TINY_SPACE = {
    "family": "ofa-mbv3",
    "kernel_sizes": [3, 5, 7],
    "expand_ratios": [3, 6],
    "depths": [1, 2, 3],
    "width_mults": [0.75, 1.0],
    "resolutions": [12, 16],
    "stem_channels": 8,
    "head_channels": 32,
    "stages": [
        {"channels": 8, "stride": 1},
        {"channels": 16, "stride": 2, "se": True},
        {"channels": 24, "stride": 2, "act": "hswish"},
    ],
}


@pytest.fixture(scope="session")
def tiny_space() -> SearchSpace:
    return make_space(TINY_SPACE, in_channels=1, num_classes=10, image_size=16)


def unique_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """``n`` distinct archs sampled with a seeded generator."""
    rng = np.random.default_rng(seed)
    seen: dict[str, Arch] = {}
    while len(seen) < n:
        arch = space.sample(rng)
        seen.setdefault(arch.arch_hash, arch)
    return list(seen.values())


def synthetic_latency(space: SearchSpace, archs: list[Arch]) -> np.ndarray:
    """A deterministic non-linear stand-in for measured latency: per-layer overhead, work, kernel size."""
    out = []
    for arch in archs:
        costs = space.layer_costs(arch)
        active = sum(1 for _, c in costs if c.macs > 0)
        ks7 = sum(b.kernel_size == 7 for s in arch.stages for b in s.blocks)
        macs = sum(c.macs for _, c in costs)
        out.append(
            0.05 * active + 2e-6 * macs * (1.0 + 0.08 * ks7) + 1e-7 * sum(c.bytes_moved for _, c in costs)
        )
    return np.asarray(out)
