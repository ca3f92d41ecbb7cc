"""Typed choices: every family's flat choices carry a dimension, and schedules read it, not key names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from supernets import Choice, Dimension, SearchSpace, list_families, make_space
from supernets.space import get_space_class
from supernets.training.progressive import FREE_DIMENSIONS, NEWLY_FREE, PHASES, sample_elastic

GEOMETRY = {"in_channels": 1, "num_classes": 10, "image_size": 28}
# Beside each family's default space: the variants that add dimensions (bits, more pool ops).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "ofa-mbv3": [{"bits": [4, 8, 32], "resolutions": [20, 24, 28]}],
    "ofa-opchoice": [{"bits": [8, 32], "ops": ["mbconv", "fused_mbconv"]}],
    "pooling-mixture-resnet": [{"pool_op": ["max", "avg", "conv"], "pools": 3}],
}


def _spaces() -> list[tuple[str, SearchSpace]]:
    out = []
    for family in list_families():
        for extra in [{}, *VARIANTS.get(family, [])]:
            config = {"family": family, **extra}
            out.append((f"{family}{extra or ''}", make_space(config, **GEOMETRY)))
    return out


SPACES = _spaces()
IDS = [name for name, _ in SPACES]


def test_every_registered_family_is_covered() -> None:
    assert {get_space_class(f).family for f in list_families()} == {s.family for _, s in SPACES}
    assert set(VARIANTS) <= set(list_families())


@pytest.mark.parametrize(("name", "space"), SPACES, ids=IDS)
def test_every_key_has_a_dimension_and_keys_are_unique(name: str, space: SearchSpace) -> None:
    typed = space.typed_choices()
    assert typed and all(isinstance(c, Choice) and isinstance(c.dimension, Dimension) for c in typed)
    keys = [c.key for c in typed]
    assert len(set(keys)) == len(keys), name
    assert all(isinstance(c.options, tuple) and len(c.options) > 0 for c in typed)


@pytest.mark.parametrize(("name", "space"), SPACES, ids=IDS)
def test_choices_are_the_typed_choices_in_their_order(name: str, space: SearchSpace) -> None:
    typed = space.typed_choices()
    assert list(space.choices().items()) == [(c.key, list(c.options)) for c in typed]
    assert set(space.choices_of(space.sample(np.random.default_rng(0)))) == {c.key for c in typed}


def test_the_dimensions_each_family_reports() -> None:
    def dims(config: dict[str, Any]) -> set[Dimension]:
        return {c.dimension for c in make_space(config, **GEOMETRY).typed_choices()}

    elastic = {Dimension.RESOLUTION, Dimension.KERNEL, Dimension.EXPAND, Dimension.DEPTH, Dimension.WIDTH}
    assert dims({"family": "ofa-mbv3"}) == elastic
    assert dims({"family": "ofa-mbv3", "bits": [4, 8]}) == elastic | {Dimension.BITS}
    assert dims({"family": "ofa-opchoice"}) == elastic | {Dimension.OPERATOR}
    assert dims({"family": "pooling-mixture-resnet"}) == {Dimension.DOWNSAMPLE_AT, Dimension.DOWNSAMPLE_OP}


def test_a_choice_refuses_an_untyped_dimension_or_no_options() -> None:
    with pytest.raises(ValueError, match="Dimension"):
        Choice("s0_b0_ks", "ks", (3, 5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no options"):
        Choice("resolution", Dimension.RESOLUTION, ())
    assert Choice("r", Dimension.RESOLUTION, [16, 28]).options == (16, 28)  # type: ignore[arg-type]


def _freed(space: SearchSpace, archs: list[Any]) -> set[Dimension]:
    """Dimensions whose choices differ from the largest subnet's in some of ``archs``."""
    kinds = {c.key: c.dimension for c in space.typed_choices()}
    largest = space.choices_of(space.largest())
    return {kinds[k] for a in archs for k, v in space.choices_of(a).items() if v != largest[k]}


@pytest.mark.parametrize(("name", "space"), SPACES, ids=IDS)
@pytest.mark.parametrize("phase", PHASES)
def test_progressive_phases_free_only_their_dimensions(name: str, space: SearchSpace, phase: str) -> None:
    rng = np.random.default_rng(5)
    free = FREE_DIMENSIONS[phase]
    archs = [sample_elastic(space, rng, free) for _ in range(60)]
    has = {c.dimension for c in space.typed_choices()}
    # a skipped block's choices are fillers: with depth free, kernel/expand keys may differ too,
    # and every phase that frees depth frees the kernel (expand is freed only with the expand phase)
    assert _freed(space, archs) <= set(free) | ({Dimension.EXPAND} if Dimension.DEPTH in free else set())
    if Dimension.DEPTH not in free:
        assert _freed(space, archs) <= set(free)
    # and each free dimension the space has (with more than one option) does get drawn
    movable = {c.dimension for c in space.typed_choices() if len(c.options) > 1} & set(free) & has
    assert movable <= _freed(space, archs), (name, phase)


def test_limited_dimensions_draw_from_their_two_largest_options() -> None:
    space = make_space({"family": "ofa-mbv3", "resolutions": [20, 24, 28]}, **GEOMETRY)
    rng = np.random.default_rng(2)
    archs = [
        sample_elastic(space, rng, FREE_DIMENSIONS["expand"], limited=NEWLY_FREE["expand"]) for _ in range(80)
    ]
    expands = {b.expand_ratio for a in archs for s in a.stages for b in s.blocks}
    assert expands == {4, 6}  # of 3, 4, 6
    assert {a.resolution for a in archs} == {20, 24, 28}  # not limited


def test_a_draw_per_free_choice_only() -> None:
    space = make_space({"family": "ofa-mbv3"}, **GEOMETRY)
    rng, other = np.random.default_rng(9), np.random.default_rng(9)
    sample_elastic(space, rng, FREE_DIMENSIONS["kernel"])
    for c in space.typed_choices():  # resolution, then every kernel choice; the others draw nothing
        if c.dimension in (Dimension.RESOLUTION, Dimension.KERNEL):
            other.integers(len(c.options))
    assert rng.bit_generator.state == other.bit_generator.state
    sample_elastic(space, rng, ())
    assert rng.bit_generator.state == other.bit_generator.state
