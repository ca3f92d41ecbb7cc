"""Trainer hooks: anchor policies and subnet samplers, their registry, and that the default is today's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernets import Arch, OfaMbv3Space, make_space
from supernets.training import (
    SandwichTrainer,
    SubnetSampler,
    TrainConfig,
    anchor_policies,
    make_anchors,
    make_sampler,
    make_trainer,
    register_sampler,
    samplers,
    schedule_samplers,
)
from supernets.training.sampling import FlopsStratifiedSampler, UniformSampler
from tests.supernets.conftest import MEAN, SPEC_SPACE, STD

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class RecordingTrainer(SandwichTrainer):
    """The sandwich schedule, keeping the arch of every forward pass in order."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.seen: list[Arch] = []

    def forward(self, arch: Arch, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(arch)
        return super().forward(arch, x)


def _flops(space: OfaMbv3Space, arch: Arch) -> float:
    return float(space.total_cost(arch).flops)


def test_defaults_are_the_first_registered_and_unknown_names_are_refused(tiny_space: OfaMbv3Space) -> None:
    assert TrainConfig().anchors == anchor_policies()[0] == "sandwich"
    assert TrainConfig().sampler is None  # the schedule's default:
    for schedule in ("sandwich", "deps", "progressive-shrinking", "standalone"):
        assert schedule_samplers(schedule) == ("uniform", "flops-stratified")
    assert schedule_samplers("balanced-mixture") == ("balanced-mixture",)
    assert set(samplers()) == {"uniform", "flops-stratified", "balanced-mixture"}
    assert "largest" in anchor_policies()
    with pytest.raises(ValueError, match=r"training\.sampler 'nope'"):
        make_sampler("nope", tiny_space)
    with pytest.raises(ValueError, match=r"training\.anchors 'nope'"):
        make_anchors("nope", tiny_space)
    with pytest.raises(ValueError, match="sampler must be one of"):
        TrainConfig(sampler="nope")
    with pytest.raises(ValueError, match="anchors must be one of"):
        TrainConfig(anchors="nope")


def test_a_schedule_refuses_a_sampler_of_another_kind(tiny_space: OfaMbv3Space) -> None:
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    config = TrainConfig(epochs=1, sampler="balanced-mixture")
    with pytest.raises(
        ValueError, match=r"training\.sampler 'balanced-mixture' cannot be used by schedule 'sandwich'"
    ):
        make_trainer("sandwich", supernet=net, space=tiny_space, config=config, seed=0)
    default = make_trainer("sandwich", supernet=net, space=tiny_space, config=TrainConfig(epochs=1), seed=0)
    assert isinstance(default.sampler, UniformSampler)


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered to UniformSampler"):

        @register_sampler("uniform")
        class Other(SubnetSampler):
            def draw(self, rng: np.random.Generator, n: int) -> list[Arch]:
                return []


def test_the_uniform_sampler_makes_the_same_draws_as_space_sample(tiny_space: OfaMbv3Space) -> None:
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    sampler = make_sampler("uniform", tiny_space)
    assert isinstance(sampler, UniformSampler)
    for n in (0, 1, 2, 5):
        assert sampler.draw(a, n) == [tiny_space.sample(b) for _ in range(n)]
    assert a.bit_generator.state == b.bit_generator.state  # the same generator calls, in the same order


def test_default_sandwich_steps_train_largest_smallest_then_uniform_draws(
    tiny_space: OfaMbv3Space, fmnist: Data
) -> None:
    torch.manual_seed(0)
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    config = TrainConfig(epochs=1, batch_size=32, lr=0.05, num_random_subnets=2)
    trainer = RecordingTrainer(supernet=net, space=tiny_space, config=config, seed=11)
    trainer.train_epoch(fmnist[0][:64], fmnist[1][:64])
    rng = np.random.default_rng(11)  # the trainer's own generator, from the same seed
    expected: list[Arch] = []
    for _ in range(2):  # steps
        expected += [tiny_space.largest(), tiny_space.smallest()]
        expected += [tiny_space.sample(rng) for _ in range(2)]
    assert trainer.seen == expected


def test_largest_anchors_train_the_largest_and_the_sampled_only(
    tiny_space: OfaMbv3Space, fmnist: Data
) -> None:
    torch.manual_seed(0)
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    config = TrainConfig(epochs=1, batch_size=64, lr=0.05, num_random_subnets=3, anchors="largest")
    trainer = RecordingTrainer(supernet=net, space=tiny_space, config=config, seed=2)
    trainer.train_epoch(fmnist[0][:64], fmnist[1][:64])
    rng = np.random.default_rng(2)
    assert trainer.seen == [tiny_space.largest()] + [tiny_space.sample(rng) for _ in range(3)]


@pytest.mark.parametrize("n", [2, 3])
def test_flops_stratified_draws_one_subnet_per_stratum(n: int) -> None:
    space = make_space(SPEC_SPACE, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(space, OfaMbv3Space)
    sampler = make_sampler("flops-stratified", space)
    assert isinstance(sampler, FlopsStratifiedSampler)
    rng = np.random.default_rng(0)
    draws = [sampler.draw(rng, n) for _ in range(40)]
    for step in draws:
        assert len(step) == n
        for i, arch in enumerate(step):
            lo, hi = sampler.stratum(i, n)
            assert lo <= _flops(space, arch) < hi, (i, _flops(space, arch), lo, hi)
    # seeded: the same generator state gives the same subnets
    again = np.random.default_rng(0)
    assert [sampler.draw(again, n) for _ in range(40)] == draws


def test_flops_stratified_reaches_the_low_end_more_often_than_uniform() -> None:
    space = make_space(SPEC_SPACE, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(space, OfaMbv3Space)
    bound = FlopsStratifiedSampler(space).stratum(0, 3)[1]

    def share_in_lowest_stratum(name: str) -> float:
        rng = np.random.default_rng(1)
        sampler = make_sampler(name, space)
        assert isinstance(sampler, SubnetSampler)
        archs = [a for _ in range(60) for a in sampler.draw(rng, 3)]
        return float(np.mean([_flops(space, a) < bound for a in archs]))

    assert share_in_lowest_stratum("flops-stratified") == pytest.approx(1 / 3)
    assert share_in_lowest_stratum("uniform") < 0.2


def test_sandwich_with_other_hooks_resumes_bit_exactly(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    x, y = fmnist[0][:128], fmnist[1][:128]
    config = TrainConfig(
        epochs=3, batch_size=64, lr=0.05, num_random_subnets=2, sampler="flops-stratified", anchors="largest"
    )

    def trainer(seed: int, init_seed: int) -> SandwichTrainer:
        torch.manual_seed(init_seed)
        net = tiny_space.build_supernet(mean=MEAN, std=STD)
        made = make_trainer("sandwich", supernet=net, space=tiny_space, config=config, seed=seed)
        assert isinstance(made, SandwichTrainer)
        return made

    straight = trainer(1, 0)
    for _ in range(3):
        straight.train_epoch(x, y)
    first = trainer(1, 0)
    for _ in range(2):
        first.train_epoch(x, y)
    resumed = trainer(7, 5)
    resumed.load_state_dict(first.state_dict())
    resumed.train_epoch(x, y)
    expected, got = straight.supernet.state_dict(), resumed.supernet.state_dict()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
