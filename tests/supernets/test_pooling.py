"""The pooling-mixture-resnet family: typed encoding, flat choices, costs, member extraction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from supernets import Arch, make_space
from supernets.pooling_space import PoolingSpace


def space(**options: object) -> PoolingSpace:
    config = {"family": "pooling-mixture-resnet", "widths": [4, 8, 8], "mixture": {"supernets": 2}} | options
    s = make_space(config, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(s, PoolingSpace)
    return s


def test_thirty_six_configs_with_resnet20_layout_among_them() -> None:
    s = space()
    archs = s.enumerate_archs()
    assert s.size() == len(archs) == 36
    assert len({a.arch_hash for a in archs}) == 36
    assert s.default_arch().depths == (3, 3, 3)
    assert s.default_arch() in archs
    assert all(sum(a.depths) == 9 and a.depths[0] >= 0 and min(a.depths[1:]) >= 1 for a in archs)
    assert {b.op for a in archs for st in a.stages for b in st.blocks} == {"resnet-basic"}


def test_choices_round_trip_and_index() -> None:
    s = space(pool_op=["max", "conv"])
    assert s.size() == 36 * 4
    for i, arch in enumerate(s.enumerate_archs()):
        assert s.index(arch) == i
        assert s.arch_from_choices(s.choices_of(arch)) == arch
        assert Arch.from_json(arch.to_json()) == arch
    mutated = s.mutate(s.default_arch(), np.random.default_rng(0), 1.0)
    assert s.contains(mutated)


def test_downsample_is_typed_and_left_out_of_older_encodings() -> None:
    arch = space().default_arch()
    assert [st.downsample for st in arch.stages] == [None, "max", "max"]
    assert "downsample" not in arch.to_dict()["stages"][0]
    assert arch.to_dict()["stages"][1]["downsample"] == "max"
    assert arch.extra == ()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"pools": 10}, "search_space.pools"),
        ({"pool_op": ["median"]}, "search_space.pool_op"),
        ({"mixture": {"supernets": 0}}, "search_space.mixture.supernets"),
        ({"widths": []}, "search_space.widths"),
        ({"depth": 3}, "unknown fields"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PoolingSpace.check_options(options)
    with pytest.raises(ValueError, match=field):
        space(**options)


def test_validate_rejects_other_layouts() -> None:
    s = space()
    arch = s.default_arch()
    with pytest.raises(ValueError, match="number of stages"):
        s.validate(Arch(family=arch.family, resolution=28, stages=arch.stages[:2]))
    with pytest.raises(ValueError, match="total blocks"):
        s.validate(
            Arch(
                family=arch.family,
                resolution=28,
                stages=(*arch.stages[:2], replace(arch.stages[2], blocks=arch.stages[2].blocks * 2)),
            )
        )
    with pytest.raises(ValueError, match="downsample"):
        s.validate(space(pool_op=["avg"]).default_arch())


def test_costs_rise_with_late_pools() -> None:
    s = space()
    names = [n for n, _ in s.layer_costs(s.default_arch())]
    assert names == [n for n, _ in s.layer_costs(s.smallest())]
    assert (
        s.total_cost(s.largest()).macs > s.total_cost(s.default_arch()).macs > s.total_cost(s.smallest()).macs
    )


@pytest.mark.parametrize("op", ["max", "avg", "conv"])
def test_extracted_member_equals_supernet(op: str) -> None:
    torch.manual_seed(0)
    s = space(pool_op=[op])
    net = s.build_supernet(mean=(0.3,), std=(0.3,))
    x = torch.rand(8, 1, 28, 28)
    net.train()
    net(x)  # move BatchNorm statistics away from their initial values
    net.eval()
    for arch in s.enumerate_archs()[::7]:
        for member in range(net.num_members):
            net.set_active(arch, member=member)
            model = net.extract(arch, member=member).eval()
            assert torch.allclose(model(x), net(x), atol=1e-6)
            assert sum(p.numel() for p in model.parameters()) > 0
    # by default a configuration runs in, and extracts from, its assigned member
    arch = s.default_arch()
    net.set_active(arch)
    assert net.active_member == net.member_of(arch)
    assert torch.allclose(net.extract(arch).eval()(x), net(x), atol=1e-6)
