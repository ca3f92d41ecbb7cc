"""Training schedules: exact resume, stopping, phases, and that training and BN recalibration work."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from supernets import OfaMbv3Space, evaluate_accuracy, recalibrate_bn
from supernets.training import (
    DepsTrainer,
    ProgressiveShrinkingTrainer,
    TrainConfig,
    Trainer,
    TrainingStoppedError,
    make_trainer,
)
from supernets.training.progressive import phase_boundaries
from tests.supernets.conftest import MEAN, STD

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _trainer(
    schedule: str, space: OfaMbv3Space, config: TrainConfig, *, seed: int, init_seed: int
) -> Trainer:
    torch.manual_seed(init_seed)
    net = space.build_supernet(mean=MEAN, std=STD)
    return make_trainer(schedule, supernet=net, space=space, config=config, seed=seed, arch=space.largest())


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("schedule", OfaMbv3Space.schedules)
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    schedule: str, tiny_space: OfaMbv3Space, fmnist: Data
) -> None:
    # 3 epochs of 2 steps: PS runs full -> kernel -> expand (teacher and channel sort before the
    # checkpoint); DεpS sorts and starts ramping at step 3
    x, y = fmnist[0][:128], fmnist[1][:128]
    config = TrainConfig(epochs=3, batch_size=64, lr=0.05, num_random_subnets=1, deps_ramp_fraction=0.4)
    straight = _trainer(schedule, tiny_space, config, seed=1, init_seed=0)
    for _ in range(3):
        straight.train_epoch(x, y)

    first = _trainer(schedule, tiny_space, config, seed=1, init_seed=0)
    for _ in range(2):
        first.train_epoch(x, y)
    saved = _roundtrip(first.state_dict())
    # a different init and seed: everything that matters must come from the checkpoint
    resumed = _trainer(schedule, tiny_space, config, seed=7, init_seed=5)
    resumed.load_state_dict(saved)
    assert resumed.epoch == 2 and resumed.total_epochs == 3
    resumed.train_epoch(x, y)

    expected, got = straight.supernet.state_dict(), resumed.supernet.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    with pytest.raises(ValueError, match="complete"):
        resumed.train_epoch(x, y)


def test_checkpoint_of_another_schedule_is_refused(tiny_space: OfaMbv3Space) -> None:
    config = TrainConfig(epochs=1)
    state = _trainer("sandwich", tiny_space, config, seed=0, init_seed=0).state_dict()
    with pytest.raises(ValueError, match="schedule 'sandwich'"):
        _trainer("deps", tiny_space, config, seed=0, init_seed=0).load_state_dict(state)


def test_should_stop_and_on_step(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    trainer = _trainer("sandwich", tiny_space, TrainConfig(epochs=2, batch_size=64), seed=0, init_seed=0)
    calls: list[tuple[int, int, float]] = []
    with pytest.raises(TrainingStoppedError):
        trainer.train_epoch(
            fmnist[0][:256],
            fmnist[1][:256],
            on_step=lambda i, n, loss: calls.append((i, n, loss)),
            should_stop=lambda: len(calls) >= 2,
        )
    assert [c[:2] for c in calls] == [(1, 4), (2, 4)]
    assert all(c[2] > 0 for c in calls)
    assert trainer.epoch == 0


def test_bad_arguments(tiny_space: OfaMbv3Space) -> None:
    with pytest.raises(ValueError, match=r"unknown training\.schedule 'fast'"):
        make_trainer("fast", supernet=None, space=tiny_space, config=TrainConfig(), seed=0)
    torch.manual_seed(0)
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="arch="):
        make_trainer("standalone", supernet=net, space=tiny_space, config=TrainConfig(), seed=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="ps_phase_fractions"):
        TrainConfig(ps_phase_fractions=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=2)


def test_progressive_shrinking_phases(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    assert phase_boundaries((0.25, 0.25, 0.25, 0.25), 8) == [2, 4, 6, 8]
    config = TrainConfig(epochs=4, batch_size=128)
    trainer = _trainer("progressive-shrinking", tiny_space, config, seed=0, init_seed=0)
    assert isinstance(trainer, ProgressiveShrinkingTrainer)
    phases = []
    for _ in range(4):
        assert trainer.teacher is None or trainer.phase != "full"
        phases.append(trainer.phase)
        trainer.train_epoch(fmnist[0][:128], fmnist[1][:128])
    assert phases == ["full", "kernel", "depth", "expand"]
    assert trainer.teacher is not None and trainer.channels_sorted


def test_deps_ramps_the_subnets_in(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    config = TrainConfig(epochs=4, batch_size=64, deps_full_fraction=0.5, deps_ramp_fraction=0.25)
    trainer = _trainer("deps", tiny_space, config, seed=0, init_seed=0)
    assert isinstance(trainer, DepsTrainer)
    weights = []
    for _ in range(4):
        trainer.train_epoch(fmnist[0][:128], fmnist[1][:128])
        weights.append(trainer.subnet_weight())
    # 8 steps: 4 full-only, then the weight grows 0.5, 1.0, 1.0, 1.0 (ramp of 2 steps)
    assert trainer.full_steps == 4 and trainer.channels_sorted
    assert weights[0] <= 0 and weights[-1] == 1.0


def test_training_learns_and_bn_recalibration_matters(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    train_x, train_y, test_x, test_y = fmnist
    config = TrainConfig(epochs=2, batch_size=32, lr=0.1, num_random_subnets=0)
    trainer = _trainer("sandwich", tiny_space, config, seed=0, init_seed=0)
    for _ in range(2):
        trainer.train_epoch(train_x[:512], train_y[:512])
    smallest = trainer.supernet.extract(tiny_space.smallest())
    stale = evaluate_accuracy(smallest, test_x, test_y)
    recalibrate_bn(smallest, train_x[:512])
    fresh = evaluate_accuracy(smallest, test_x, test_y)
    largest = trainer.supernet.extract(tiny_space.largest())
    recalibrate_bn(largest, train_x[:512])
    assert evaluate_accuracy(largest, test_x, test_y) > 0.3  # chance is 0.1
    print(f"smallest subnet: {stale:.3f} with the supernet's BN statistics, {fresh:.3f} recalibrated")
    assert fresh > 0.3
    assert fresh >= stale + 0.05


def test_subnets_learn_from_labels_beside_the_teacher(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    # label_weight adds exactly the smallest subnet's label loss to the sandwich step's gradient.
    x, y = fmnist[0][:32], fmnist[1][:32]
    grads = {}
    for weight in (0.0, 1.0):
        config = TrainConfig(epochs=1, batch_size=32, num_random_subnets=0, label_weight=weight)
        trainer = _trainer("sandwich", tiny_space, config, seed=0, init_seed=0)
        trainer.supernet.train()
        trainer.train_step(x, y)
        grads[weight] = {
            n: p.grad.clone() for n, p in trainer.supernet.named_parameters() if p.grad is not None
        }
    reference = _trainer("sandwich", tiny_space, TrainConfig(epochs=1), seed=0, init_seed=0)
    reference.supernet.train()
    out = reference.forward(tiny_space.smallest(), x)
    torch.nn.functional.cross_entropy(out, y, label_smoothing=0.1).backward()
    label_grads = {n: p.grad for n, p in reference.supernet.named_parameters() if p.grad is not None}
    assert label_grads and set(label_grads) <= set(grads[1.0])
    for name, g in label_grads.items():
        torch.testing.assert_close(grads[1.0][name] - grads[0.0][name], g, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="label_weight"):
        TrainConfig(label_weight=-1)


def test_deps_trains_the_full_model_alone_first(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    config = TrainConfig(epochs=12, batch_size=64, deps_full_fraction=0.5)
    trainer = _trainer("deps", tiny_space, config, seed=0, init_seed=0)
    # Residual blocks start as the identity, as in sandwich training.
    gammas = [m.project.bn.weight for m in trainer.supernet.modules() if getattr(m, "has_residual", False)]
    assert gammas and all(bool((g == 0).all()) for g in gammas)
    for _ in range(5):  # steps 1-5 of 12, the first 6 full-only
        trainer.train_epoch(fmnist[0][:64], fmnist[1][:64])
        # The largest subnet at the largest resolution; no smaller kernel or subnet was touched.
        assert trainer.supernet.active_arch == tiny_space.largest()
    assert trainer.full_steps == 6
    transforms = [p for n, p in trainer.supernet.named_parameters() if "kernel_transforms" in n]
    assert transforms and all(p.grad is None for p in transforms)
