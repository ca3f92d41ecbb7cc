"""Sampling subnets with only some elastic dimensions free (the phases of shrinking schedules)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from supernets.arch import Arch
from supernets.space import SearchSpace

# Flat choice keys end in the dimension they set: ``s0_b1_ks``, ``s2_depth``, ``s1_width``, ``resolution``.
DIMENSIONS = ("resolution", "ks", "e", "depth", "width")


def dimension_of(key: str) -> str:
    return key if key == "resolution" else key.rsplit("_", 1)[-1]


def sample_elastic(space: SearchSpace, rng: np.random.Generator, free: Collection[str]) -> Arch:
    """A subnet whose ``free`` dimensions are drawn uniformly and whose others are at their largest."""
    unknown = set(free) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown elastic dimensions {sorted(unknown)}; known: {DIMENSIONS}")
    values = space.choices_of(space.largest())
    for key, options in space.choices().items():
        pick = options[int(rng.integers(len(options)))]  # drawn for every key so the stream is fixed
        if dimension_of(key) in free:
            values[key] = pick
    return space.arch_from_choices(values)
