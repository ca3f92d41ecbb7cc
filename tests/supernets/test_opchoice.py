"""The ``ofa-opchoice`` family: operator choice per block over the kernel registry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from kernels.cost import measure_macs
from supernets import Supernet, make_space, recalibrate_bn
from supernets.arch import Arch
from supernets.opchoice import DEFAULT_OPS, OpChoiceSpace

from .conftest import MEAN, STD, TINY_SPACE

FMNIST = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _space(**overrides: Any) -> OpChoiceSpace:
    config = TINY_SPACE | {"family": "ofa-opchoice"} | overrides
    space = make_space(config, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(space, OpChoiceSpace)
    return space


def test_family_is_registered_and_describe_round_trips() -> None:
    space = _space(ops=["mbconv", "large_kernel_dw"])
    again = make_space(space.describe(), in_channels=1, num_classes=10, image_size=28)
    assert isinstance(again, OpChoiceSpace)
    assert again.describe() == space.describe()
    assert again.ops == ("mbconv", "large_kernel_dw")
    assert _space().ops == DEFAULT_OPS


def test_samples_cover_every_operator_and_round_trip_through_choices() -> None:
    space = _space()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        arch = space.sample(rng)
        space.validate(arch)
        seen |= {b.op for s in arch.stages for b in s.blocks}
        assert space.arch_from_choices(space.choices_of(arch)) == arch
        assert space.contains(space.mutate(arch, rng, 0.5))
    assert seen == set(DEFAULT_OPS)


def test_space_without_mbconv_works() -> None:
    space = _space(ops=["inception_dw", "large_kernel_dw"])
    arch = space.sample(np.random.default_rng(1))
    assert {b.op for s in arch.stages for b in s.blocks} <= {"inception_dw", "large_kernel_dw"}
    assert space.arch_from_choices(space.choices_of(arch)) == arch
    assert space.largest().stages[0].blocks[0].op == "inception_dw"


def test_operator_outside_the_space_is_rejected() -> None:
    space = _space(ops=["mbconv"])
    arch = space.largest()
    stage = arch.stages[0]
    bad_stage = type(stage)(blocks=(type(stage.blocks[0])(3, 2, "fused_mbconv"),), width_mult=1.0)
    bad = Arch(
        family=arch.family,
        resolution=arch.resolution,
        stages=(bad_stage, *arch.stages[1:]),
    )
    with pytest.raises(ValueError, match="op 'fused_mbconv' not in"):
        space.validate(bad)


def test_bad_ops_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown operators"):
        _space(ops=["mbconv", "conv9000"])
    with pytest.raises(ValueError, match="twice"):
        _space(ops=["mbconv", "mbconv"])
    with pytest.raises(ValueError, match="kernel size must be one of"):
        _space(kernel_sizes=[3, 15], ops=["large_kernel_dw"])


def test_size_counts_operators() -> None:
    one, four = _space(ops=["mbconv"]), _space()
    assert four.size() > one.size()
    per_block = len(four.kernel_sizes) * len(four.expand_ratios)
    assert one.size() == len(one.resolutions) * (
        len(one.width_mults) * sum(per_block**d for d in one.depths)
    ) ** len(one.stages)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_extracted_deploy_subnet_matches_the_supernet(seed: int, fmnist: FMNIST) -> None:
    # Without squeeze-excite, whose cost also counts the channel scaling, which no conv hook sees.
    space = _space(stages=[{"channels": 8, "stride": 1}, {"channels": 16, "stride": 2, "act": "hswish"}])
    net = space.build_supernet(mean=MEAN, std=STD)
    images = fmnist[0][:64]
    arch = space.sample(np.random.default_rng(seed))
    net.set_active(arch)
    recalibrate_bn(net, images)
    net.eval()
    model = Supernet.deploy(net.extract(arch))
    assert isinstance(model, torch.nn.Sequential)
    assert not any(type(m).__module__.startswith("supernets") for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        expected = net(images[:16])
        got = model(images[:16])
    assert got.shape == (16, 10)
    assert (got - expected).abs().max().item() < 1e-4
    # The space's cost model counts what the deployed subnet computes.
    macs = sum(c.macs for _, c in space.layer_costs(arch))
    assert macs == measure_macs(model[1:], (1, arch.resolution, arch.resolution))  # after resizing


def test_training_step_reaches_every_operator(fmnist: FMNIST) -> None:
    space = _space()
    net = space.build_supernet(mean=MEAN, std=STD)
    x, y = fmnist[0][:32], fmnist[1][:32]
    for op in DEFAULT_OPS:
        arch = space.largest()
        arch = space.arch_from_choices(
            space.choices_of(arch) | {k: op for k in space.choices() if k.endswith("_op")}
        )
        net.set_active(arch)
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        grads = [p for n, p in net.named_parameters() if f"candidates.{op}." in n and p.grad is not None]
        assert grads and all(torch.isfinite(p.grad).all() for p in grads if p.grad is not None)
