"""Quantization-aware training inside the sandwich schedule: exact resume, and quantized subnets that work."""

from __future__ import annotations

import pytest
import torch

from supernets import OfaMbv3Space, evaluate_accuracy, make_space, recalibrate_bn
from supernets.bits import stage_bits, with_bits
from supernets.training import TrainConfig, Trainer, make_trainer
from tests.supernets.conftest import MEAN, STD, TINY_SPACE

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _space() -> OfaMbv3Space:
    space = make_space(TINY_SPACE | {"bits": [4, 8, 32]}, in_channels=1, num_classes=10, image_size=28)
    assert isinstance(space, OfaMbv3Space)
    return space


def _trainer(space: OfaMbv3Space, config: TrainConfig, *, seed: int, init_seed: int) -> Trainer:
    torch.manual_seed(init_seed)
    net = space.build_supernet(mean=MEAN, std=STD)
    return make_trainer("sandwich", supernet=net, space=space, config=config, seed=seed, arch=space.largest())


def test_sandwich_trains_float_largest_lowest_smallest_and_resumes_exactly(fmnist: Data) -> None:
    space = _space()
    assert stage_bits(space.largest()) == (32, 32) and stage_bits(space.smallest()) == (4, 4)
    x, y = fmnist[0][:128], fmnist[1][:128]
    config = TrainConfig(epochs=3, batch_size=64, lr=0.05, num_random_subnets=1)
    straight = _trainer(space, config, seed=1, init_seed=0)
    for _ in range(3):
        straight.train_epoch(x, y)
    first = _trainer(space, config, seed=1, init_seed=0)
    for _ in range(2):
        first.train_epoch(x, y)
    resumed = _trainer(space, config, seed=7, init_seed=5)
    resumed.load_state_dict(first.state_dict())
    resumed.train_epoch(x, y)
    expected, got = straight.supernet.state_dict(), resumed.supernet.state_dict()
    assert any(k.startswith("quant.") for k in expected) and expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # the 4-bit smallest subnet initialised and trained its step sizes
    sites = straight.supernet.quant[0][0]  # type: ignore[index]
    assert bool(sites.weights[0].initialised[0]) and sites.weights[0].scales.grad is not None


@pytest.mark.slow
def test_qat_subnets_stay_close_to_their_float_twins(fmnist: Data) -> None:
    train_x, train_y, test_x, test_y = fmnist
    space = _space()
    config = TrainConfig(epochs=2, batch_size=32, lr=0.1, num_random_subnets=1)
    trainer = _trainer(space, config, seed=0, init_seed=0)
    for _ in range(2):
        trainer.train_epoch(train_x[:512], train_y[:512])
    acc = {}
    for bits in (32, 8, 4):
        model = trainer.supernet.extract(with_bits(space.largest(), [bits, bits]))
        recalibrate_bn(model, train_x[:512])  # per evaluated (arch, bits)
        acc[bits] = evaluate_accuracy(model, test_x, test_y)
    print(f"largest subnet accuracy by bits: {acc}")
    assert acc[32] > 0.3  # chance is 0.1
    assert acc[8] >= acc[32] - 0.05
    assert acc[4] > 0.2
