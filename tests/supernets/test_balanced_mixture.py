"""The balanced-mixture schedule: balancing, temperature, the step rule, exact resume."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch

from supernets import make_space
from supernets.pooling_net import PoolingMixtureSupernet
from supernets.training import TrainConfig, make_trainer
from supernets.training.balanced_mixture import BalancedMixtureTrainer, batch_statistics_only
from supernets.training.mixture_sampler import (
    MixtureSampler,
    balance,
    kl_to_uniform,
    member_probs,
    temperature,
)


def skewed_weights(configs: int = 36, members: int = 4) -> np.ndarray:
    rng = np.random.default_rng(3)
    w = rng.uniform(0.3, 0.5, size=(configs, members))
    w[:, 0] += 0.3  # member 0 looks best for every configuration
    return w


def test_balanced_probs_have_uniform_marginal_and_rows_summing_to_one() -> None:
    w = skewed_weights()
    for temp in (1.0, 10.0, 100.0):
        p = member_probs(w, temp)
        assert np.allclose(p.sum(axis=1), 1.0)
        assert kl_to_uniform(p.mean(axis=0)) < 1e-4
        assert (p >= 0).all()


def test_without_balancing_one_member_takes_the_load() -> None:
    raw = member_probs(skewed_weights(), 30.0, balanced=False)
    assert kl_to_uniform(raw.mean(axis=0)) > 0.1
    assert raw.mean(axis=0)[0] > 0.9
    assert kl_to_uniform(balance(raw).mean(axis=0)) < 1e-4


def test_balance_keeps_preferences_within_a_row() -> None:
    w = skewed_weights()
    w[5] = [0.0, 0.9, 0.0, 0.0]
    p = member_probs(w, 50.0)
    assert p[5].argmax() == 1


def test_temperature_rises_geometrically_from_1_to_100() -> None:
    assert temperature(0, 101) == pytest.approx(1.0)
    assert temperature(50, 101) == pytest.approx(10.0)
    assert temperature(100, 101) == pytest.approx(100.0)
    ts = [temperature(s, 101) for s in range(101)]
    assert all(a < b for a, b in itertools.pairwise(ts))


def tiny(members: int = 2, seed: int = 0) -> tuple[PoolingMixtureSupernet, BalancedMixtureTrainer]:
    space = make_space(
        {"family": "pooling-mixture-resnet", "widths": [4, 4, 8], "mixture": {"supernets": members}},
        in_channels=1,
        num_classes=10,
        image_size=16,
    )
    torch.manual_seed(seed)
    net = space.build_supernet(mean=(0.5,), std=(0.25,))
    assert isinstance(net, PoolingMixtureSupernet)
    trainer = make_trainer(
        "balanced-mixture", supernet=net, space=space, config=TrainConfig(epochs=3, batch_size=8), seed=seed
    )
    assert isinstance(trainer, BalancedMixtureTrainer)
    return net, trainer


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(48, 1, 16, 16, generator=g), torch.randint(0, 10, (48,), generator=g)


def test_each_step_trains_one_member_and_scores_it() -> None:
    net, trainer = tiny()
    x, y = data()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in net.members]
    metrics = trainer.train_epoch(x, y)
    assert trainer.global_step == 3  # half of 48 images trains, in batches of 8
    assert sum(trainer.member_steps) == 3
    assert int(trainer.seen.sum()) == 3
    assert (net.mixture_weights != 0).sum() <= 3
    for m, state in enumerate(before):
        changed = any(not torch.equal(v, net.members[m].state_dict()[k]) for k, v in state.items())
        assert changed == (trainer.member_steps[m] > 0)
    assert metrics["temperature"] > 1.0
    p = trainer.sampler.probs()
    assert np.allclose(p.sum(axis=1), 1.0) and kl_to_uniform(p.mean(axis=0)) < 1e-4
    assert net.assignment.tolist() == p.argmax(axis=1).tolist()


def test_draws_spread_the_load_when_one_member_looks_best() -> None:
    net, trainer = tiny(members=4)
    x, y = data()
    trainer.train_epoch(x, y)  # fixes the step count the temperature runs over
    net.mixture_weights.copy_(torch.from_numpy(skewed_weights(len(trainer.archs), 4)))
    counts = np.zeros(4)
    for _ in range(2000):
        counts[trainer.sampler.draw(trainer.rng).member] += 1
    assert counts.min() / counts.sum() > 0.2  # about a quarter each; unbalanced, member 0 takes ~all
    raw = member_probs(net.mixture_weights.numpy(), trainer.sampler.temperature(), balanced=False)
    assert raw.mean(axis=0)[0] > 0.5


def test_resume_is_bit_exact() -> None:
    x, y = data()
    net_a, straight = tiny()
    for _ in range(3):
        straight.train_epoch(x, y)
    _net_b, first = tiny()
    first.train_epoch(x, y)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    net_c, resumed = tiny(seed=0)
    torch.manual_seed(123)  # the resumed run must not depend on global randomness
    resumed.load_state_dict(state)
    for _ in range(2):
        resumed.train_epoch(x, y)
    assert straight.member_steps == resumed.member_steps
    sa, sc = net_a.state_dict(), net_c.state_dict()
    assert sa.keys() == sc.keys()
    for k in sa:
        assert torch.equal(sa[k], sc[k]), k
    assert torch.equal(net_a.mixture_weights, net_c.mixture_weights)


def test_schedule_refuses_other_families() -> None:
    space = make_space({"family": "ofa-mbv3"}, in_channels=1, num_classes=10, image_size=28)
    with pytest.raises(ValueError, match="pooling-mixture-resnet"):
        make_trainer(
            "balanced-mixture",
            supernet=space.build_supernet(mean=(0.5,), std=(0.25,)),
            space=space,
            config=TrainConfig(epochs=1),
            seed=0,
        )


def test_validation_minibatch_leaves_running_statistics_alone() -> None:
    net, _ = tiny()
    x, _ = data()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad(), batch_statistics_only(net.members[0]):
        net.set_active(net.space.default_arch(), member=0)
        net(x)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    net(x)  # outside the guard, a training-mode forward does update them
    assert any(not torch.equal(v, before[k]) for k, v in net.state_dict().items() if "running_mean" in k)


def test_the_member_draw_is_the_registered_balanced_mixture_sampler() -> None:
    net, trainer = tiny()
    assert isinstance(trainer.sampler, MixtureSampler) and trainer.sampler.name == "balanced-mixture"
    x, y = data()
    trainer.train_epoch(x, y)
    space = net.space
    named = make_trainer(
        "balanced-mixture",
        supernet=space.build_supernet(mean=(0.5,), std=(0.25,)),
        space=space,
        config=TrainConfig(epochs=3, batch_size=8, sampler="balanced-mixture"),
        seed=0,
    )
    torch.manual_seed(0)
    named.supernet.load_state_dict(tiny()[0].state_dict())  # the same initial weights as ``tiny()``
    named.train_epoch(x, y)
    assert named.member_steps == trainer.member_steps  # naming the default draws the same
    assert named.rng.bit_generator.state == trainer.rng.bit_generator.state
    for k, v in net.state_dict().items():
        assert torch.equal(v, named.supernet.state_dict()[k]), k
    with pytest.raises(
        ValueError, match=r"training\.sampler 'uniform' cannot be used by schedule 'balanced-mixture'"
    ):
        make_trainer(
            "balanced-mixture",
            supernet=space.build_supernet(mean=(0.5,), std=(0.25,)),
            space=space,
            config=TrainConfig(epochs=1, sampler="uniform"),
            seed=0,
        )
    with pytest.raises(ValueError, match="pooling-mixture-resnet"):
        MixtureSampler(make_space({"family": "ofa-mbv3"}, in_channels=1, num_classes=10, image_size=28))
    with pytest.raises(RuntimeError, match="bind"):
        MixtureSampler(space).draw(np.random.default_rng(0))
