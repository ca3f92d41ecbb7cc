from __future__ import annotations

import numpy as np
import pytest

from predictors import FeatureEncoder, space_key
from supernets import Arch, BlockArch, SearchSpace, StageArch, make_space
from tests.predictors.conftest import TINY_SPACE, unique_archs


def test_feature_matrix_shape_and_names(tiny_space: SearchSpace) -> None:
    enc = FeatureEncoder(space=tiny_space)
    x = enc.encode(unique_archs(tiny_space, 5, seed=0))
    assert x.shape == (5, enc.n_features) == (5, len(enc.names))
    assert np.isfinite(x).all()
    assert enc.encode([]).shape == (0, enc.n_features)


def test_one_hot_and_skipped_layers_are_zero(tiny_space: SearchSpace) -> None:
    enc = FeatureEncoder(space=tiny_space)
    arch = Arch(
        family="ofa-mbv3",
        resolution=12,
        stages=(
            StageArch(blocks=(BlockArch(5, 6),), width_mult=1.0),
            StageArch(blocks=(BlockArch(3, 3), BlockArch(7, 6)), width_mult=0.75),
            StageArch(blocks=(BlockArch(3, 3),) * 3, width_mult=1.0),
        ),
    )
    row = dict(zip(enc.names, enc.encode_one(arch), strict=True))
    assert row["s0_b0_ks=5"] == 1.0 and row["s0_b0_ks=3"] == 0.0 and row["s0_b0_ks#value"] == 5.0
    # Stage 0 has depth 1: its blocks 1 and 2 are skipped, so their choices and costs are all zero.
    assert all(row[f"s0_b1_ks={k}"] == 0.0 for k in (3, 5, 7)) and row["s0_b1_ks#value"] == 0.0
    assert row["s0_b1.macs"] == row["s0_b2.params"] == 0.0
    assert row["s1_b1_e=6"] == 1.0 and row["s1_b1.macs"] > 0
    assert row["resolution"] == 12.0 and row["resolution=12"] == 1.0
    assert row["total.active_layers"] == 1 + 1 + 2 + 3 + 1  # stem, 6 blocks, head
    total = tiny_space.total_cost(arch)
    assert row["total.macs"] == total.macs and row["total.params"] == total.params
    assert enc.free_stats(arch)["bytes"] == total.bytes_moved


def test_space_key_tracks_dimensions(tiny_space: SearchSpace) -> None:
    same = make_space(TINY_SPACE, in_channels=1, num_classes=10, image_size=16)
    other = make_space({**TINY_SPACE, "kernel_sizes": [3, 5]}, in_channels=1, num_classes=10, image_size=16)
    assert space_key(tiny_space) == space_key(same) != space_key(other)


def test_encoding_rejects_arch_of_another_space(tiny_space: SearchSpace) -> None:
    enc = FeatureEncoder(space=tiny_space)
    wrong = make_space({"family": "ofa-mbv3"}, in_channels=1, num_classes=10, image_size=28).largest()
    with pytest.raises(ValueError):
        enc.encode([wrong])
