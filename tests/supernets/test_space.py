"""The ofa-mbv3 search space: config validation, sampling, the flat view, sizes and costs."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from kernels.base import ZERO_COST
from kernels.fuse import reparameterize_model
from supernets import Arch, OfaMbv3Space, get_space_class, list_families, make_space
from tests.supernets.conftest import MEAN, SPEC_SPACE, STD


def test_family_registry() -> None:
    assert "ofa-mbv3" in list_families()
    assert get_space_class("ofa-mbv3") is OfaMbv3Space
    with pytest.raises(ValueError, match=r"available families: .*ofa-mbv3"):
        make_space({"family": "nope"}, in_channels=1, num_classes=10, image_size=28)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"kernel_sizes": [3, 4]}, "kernel_sizes values must be odd"),
        ({"expand_ratios": []}, "expand_ratios must be a non-empty list"),
        ({"depths": [0, 2]}, "depths values must be >= 1"),
        ({"resolutions": "28"}, "resolutions must be a list"),
        ({"bits": [3, 8]}, "search_space.bits: \\[3\\] not supported"),
        ({"bits": [64]}, "search_space.bits: \\[64\\] not supported"),
        ({"bits": []}, "search_space.bits must be a non-empty list"),
        ({"colour": "red"}, "unknown fields \\['colour'\\]"),
        ({"stages": [{"channels": 8, "stride": 3}]}, "stages\\[0\\]"),
        ({"stem_stride": 4}, "stem_stride must be 1 or 2"),
        ({"image_size": 32}, "image_size is 32 but the dataset has 28"),
    ],
)
def test_bad_config_names_the_field(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_space(SPEC_SPACE | patch, in_channels=1, num_classes=10, image_size=28)


def test_describe_round_trips(spec_space: OfaMbv3Space) -> None:
    again = make_space(spec_space.describe(), in_channels=1, num_classes=10, image_size=28)
    assert again.describe() == spec_space.describe()
    schema = OfaMbv3Space.config_json_schema()
    assert set(SPEC_SPACE) <= set(schema["properties"])


def test_sampling_is_seeded_and_valid(spec_space: OfaMbv3Space) -> None:
    a = [spec_space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    archs = [spec_space.sample(rng) for _ in range(50)]
    for arch in archs:
        spec_space.validate(arch)
        assert Arch.from_json(arch.to_json()).arch_hash == arch.arch_hash
    assert len({a.arch_hash for a in archs}) == 50
    assert {a.resolution for a in archs} == {20, 24, 28}


def test_largest_and_smallest(spec_space: OfaMbv3Space) -> None:
    big, small = spec_space.largest(), spec_space.smallest()
    assert big.depths == (4, 4, 4, 4) and big.resolution == 28
    assert all(b.kernel_size == 7 and b.expand_ratio == 6 for s in big.stages for b in s.blocks)
    assert small.depths == (2, 2, 2, 2) and small.resolution == 20
    assert spec_space.total_cost(small).macs < spec_space.total_cost(big).macs / 5


def test_validate_rejects_foreign_archs(spec_space: OfaMbv3Space) -> None:
    big = spec_space.largest().to_dict()
    big["stages"][1]["blocks"][0]["kernel_size"] = 9
    with pytest.raises(ValueError, match="stage 1 block 0 kernel_size 9"):
        spec_space.validate(Arch.from_dict(big))
    big = spec_space.largest().to_dict()
    big["resolution"] = 32
    with pytest.raises(ValueError, match="resolution"):
        spec_space.validate(Arch.from_dict(big))


def test_flat_choices_round_trip(spec_space: OfaMbv3Space) -> None:
    choices = spec_space.choices()
    assert {"resolution", "s0_depth", "s0_width", "s0_b3_ks", "s3_b2_e"} <= set(choices)
    rng = np.random.default_rng(1)
    for _ in range(20):
        arch = spec_space.sample(rng)
        values = spec_space.choices_of(arch)
        assert set(values) == set(choices)
        assert spec_space.arch_from_choices(values) == arch
    values = spec_space.choices_of(spec_space.smallest())
    values["s0_b3_ks"] = 7  # a skipped block: ignored
    assert spec_space.arch_from_choices(values) == spec_space.smallest()
    with pytest.raises(ValueError, match="s0_depth"):
        spec_space.arch_from_choices({"resolution": 28})


def test_mutation(spec_space: OfaMbv3Space) -> None:
    arch = spec_space.sample(np.random.default_rng(2))
    assert spec_space.mutate(arch, np.random.default_rng(3), 0.0) == arch
    mutants = [spec_space.mutate(arch, np.random.default_rng(s), 0.3) for s in range(10)]
    assert all(spec_space.contains(m) for m in mutants)
    assert any(m != arch for m in mutants)
    with pytest.raises(ValueError, match="prob"):
        spec_space.mutate(arch, np.random.default_rng(0), 1.5)


def test_size_counts_distinct_archs(tiny_space: OfaMbv3Space) -> None:
    choices = tiny_space.choices()
    archs = {
        tiny_space.arch_from_choices(dict(zip(choices, v, strict=True)))
        for v in itertools.product(*choices.values())
    }
    assert len(archs) == tiny_space.size()


def test_layer_costs_fixed_positions_and_match_the_deployed_model(spec_space: OfaMbv3Space) -> None:
    net = spec_space.build_supernet(mean=MEAN, std=STD)
    rng = np.random.default_rng(4)
    for arch in [spec_space.smallest(), spec_space.largest(), spec_space.sample(rng)]:
        costs = spec_space.layer_costs(arch)
        assert [n for n, _ in costs][:2] == ["stem", "s0_b0"] and costs[-1][0] == "head"
        assert len(costs) == 2 + 4 * 4
        skipped = [c for n, c in costs if n.startswith("s0_b") and int(n[-1]) >= arch.stages[0].depth]
        assert all(c == ZERO_COST for c in skipped)
        model = reparameterize_model(net.extract(arch).eval())
        assert spec_space.total_cost(arch).params == sum(p.numel() for p in model.parameters())
