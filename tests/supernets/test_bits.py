"""Bit-width as a searched dimension: ``search_space.bits`` through the shared supernets.bits mechanism."""

from __future__ import annotations

import numpy as np
import pytest

from nas.schemas import METRICS, JobSpec
from nas.search.exact import ExactCostPredictor
from predictors.features import FeatureEncoder
from supernets import Arch, SearchSpace, make_space
from supernets.bits import BitsDimension, bits_key, parse_bits, size_bytes, stage_bits, with_bits
from tests.supernets.conftest import TINY_SPACE


def _space(bits: list[int] | None) -> SearchSpace:
    return make_space(TINY_SPACE | {"bits": bits}, in_channels=1, num_classes=10, image_size=28)


def test_parse_bits_sorts_and_rejects_bad_widths() -> None:
    assert parse_bits(None) is None
    assert parse_bits([32, 4, 8]) == (4, 8, 32)
    for bad, message in (
        ([3], r"\[3\] not supported"),
        ([64], r"\[64\]"),
        ([], "non-empty"),
        ([8, 8], "twice"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_bits(bad)
    with pytest.raises(ValueError, match=r"search_space\.bits must be"):
        parse_bits([True])


def test_no_bits_keeps_archs_sampling_and_hashes_unchanged() -> None:
    plain, quant = _space(None), _space([4, 8, 32])
    assert all(b is None for b in stage_bits(plain.largest()))
    assert not any(k.startswith("bits@") for k in plain.choices())
    # the bits draws come after the architecture's, so the same seed picks the same architecture
    a = plain.sample(np.random.default_rng(3))
    b = quant.sample(np.random.default_rng(3))
    assert [s.blocks for s in a.stages] == [s.blocks for s in b.stages] and a.resolution == b.resolution
    assert a.arch_hash != b.arch_hash


def test_bits_largest_smallest_size_choices_and_round_trip() -> None:
    space = _space([32, 4, 8])
    assert stage_bits(space.largest()) == (32, 32)
    assert stage_bits(space.smallest()) == (4, 4)
    assert space.size() == _space(None).size() * 3**2
    choices = space.choices()
    assert choices[bits_key(0)] == [4, 8, 32] and choices[bits_key(1)] == [4, 8, 32]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        arch = space.sample(rng)
        space.validate(arch)
        seen.update(stage_bits(arch))
        assert Arch.from_json(arch.to_json()) == arch
        assert Arch.from_json(arch.to_json()).arch_hash == arch.arch_hash
        assert space.arch_from_choices(space.choices_of(arch)) == arch
        assert space.contains(space.mutate(arch, rng, 0.5))
    assert seen == {4, 8, 32}
    rebuilt = make_space(space.describe(), in_channels=1, num_classes=10, image_size=28)
    assert rebuilt.describe() == space.describe() and rebuilt.describe()["bits"] == [4, 8, 32]


def test_validate_names_a_bad_stage_bit_width() -> None:
    space = _space([4, 8])
    bad = BitsDimension([6], 2).uniform(space.largest(), 6)
    with pytest.raises(ValueError, match=r"stage 0 bits 6 not in \[4, 8\]"):
        space.validate(bad)
    with pytest.raises(ValueError, match=r"stage 0 bits 8 not in \[None\]"):
        _space(None).validate(space.largest())


def test_features_see_the_bits() -> None:
    space = _space([4, 8, 32])
    enc = FeatureEncoder(space=space)
    assert f"{bits_key(1)}=4" in enc.names and f"{bits_key(1)}#value" in enc.names
    low, high = space.smallest(), BitsDimension([4, 8, 32], 2).largest(space.smallest())
    diff = enc.encode_one(low) != enc.encode_one(high)
    changed = {n.split("=")[0].split("#")[0] for n, d in zip(enc.names, diff, strict=True) if d}
    assert changed == {bits_key(0), bits_key(1)}


def test_size_bytes_counts_weights_at_their_bit_widths() -> None:
    space = _space([4, 8, 32])
    costs = dict(space.layer_costs(space.largest()))
    float_bytes = 4 * space.total_cost(space.largest()).params
    assert size_bytes(space, space.largest()) == float_bytes
    assert size_bytes(_space(None), _space(None).largest()) == float_bytes
    stage0 = sum(c.params for n, c in costs.items() if n.startswith("s0_"))
    stage1 = sum(c.params for n, c in costs.items() if n.startswith("s1_"))
    other = costs["stem"].params + costs["head"].params
    mixed = with_bits(space.largest(), [8, 4])
    assert size_bytes(space, mixed) == 4 * other + stage0 + (stage1 * 4 + 7) // 8
    exact = ExactCostPredictor(space=space, metric="size_bytes")
    assert exact.predict([mixed])[0] == size_bytes(space, mixed)


def test_size_bytes_is_an_objective_and_a_constraint_metric() -> None:
    spec = JobSpec.model_validate(
        {
            "name": "q",
            "dataset": {"name": "fashion-mnist"},
            "search_space": {"family": "ofa-mbv3", "bits": [4, 8, 32]},
            "objectives": [{"metric": "accuracy", "goal": "max"}, {"metric": "size_bytes", "goal": "min"}],
            "constraints": [{"metric": "size_bytes", "max": 100_000}],
        }
    )
    assert spec.objectives[1].key == "size_bytes" and "size_bytes" in METRICS
