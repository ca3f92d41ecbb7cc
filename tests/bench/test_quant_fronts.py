"""The quantization benchmark's front helpers: fixed-bits spaces and the size gain at equal accuracy."""

from __future__ import annotations

import numpy as np

from bench.quant_fronts import FixedBits, FrontPoint, size_gain
from supernets import make_space
from tests.supernets.conftest import TINY_SPACE


def test_fixed_bits_space_hides_the_bits_and_pins_them() -> None:
    space = make_space(TINY_SPACE | {"bits": [4, 8, 32]}, in_channels=1, num_classes=10, image_size=28)
    fixed = FixedBits(space, 8)
    assert not any(k.startswith("bits@") for k in fixed.choices())
    assert set(fixed.choices()) | {"bits@stage0", "bits@stage1"} == set(space.choices())
    arch = fixed.arch_from_choices({k: v[0] for k, v in fixed.choices().items()})
    assert [s.bits for s in arch.stages] == [8, 8]
    assert [s.bits for s in fixed.sample(np.random.default_rng(0)).stages] == [8, 8]
    assert fixed.arch_from_choices(fixed.choices_of(arch)) == arch


def test_size_gain_is_the_median_ratio_to_the_smallest_joint_model_within_tolerance() -> None:
    space = make_space(TINY_SPACE, in_channels=1, num_classes=10, image_size=28)
    a = space.largest()
    reference = [FrontPoint(a, 0.80, 400), FrontPoint(a, 0.85, 800), FrontPoint(a, 0.90, 1200)]
    joint = [FrontPoint(a, 0.796, 100), FrontPoint(a, 0.86, 200)]
    # 0.80 -> 100 (within 0.5 points); 0.85 -> 200; 0.90 -> none within 0.5 points -> 0
    assert size_gain(reference, joint, tolerance=0.005) == float(np.median([4.0, 4.0, 0.0]))
    assert size_gain(reference[:2], joint, tolerance=0.005) == 4.0
    assert size_gain(reference, [], tolerance=0.005) == 0.0
