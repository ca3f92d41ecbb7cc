"""Progressive shrinking as Once-for-All runs it: stage order, LRs, sampling, passes, exact resume."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from supernets import OfaMbv3Space
from supernets.arch import Arch
from supernets.training import ProgressiveShrinkingTrainer, TrainConfig, Trainer, make_trainer
from supernets.training.progressive import (
    OFA_PHASE_FRACTIONS,
    OFA_PHASE_LR_SCALES,
    OFA_SUBNETS_PER_STEP,
    ofa_config,
    stages,
)
from tests.supernets.conftest import MEAN, STD

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _trainer(
    schedule: str, space: OfaMbv3Space, config: TrainConfig, *, seed: int, init_seed: int
) -> Trainer:
    torch.manual_seed(init_seed)
    net = space.build_supernet(mean=MEAN, std=STD)
    return make_trainer(schedule, supernet=net, space=space, config=config, seed=seed)


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert isinstance(loaded, dict)
    return loaded


def _differs(space: OfaMbv3Space, arch: Arch) -> set[str]:
    """Dimensions in which ``arch`` is not the largest subnet (blocks it has only)."""
    largest = space.largest()
    out = {"resolution"} if arch.resolution != largest.resolution else set()
    for stage, big in zip(arch.stages, largest.stages, strict=True):
        if len(stage.blocks) != len(big.blocks):
            out.add("depth")
        if stage.width_mult != big.width_mult:
            out.add("width")
        for block, big_block in zip(stage.blocks, big.blocks, strict=False):
            if block.kernel_size != big_block.kernel_size:
                out.add("ks")
            if block.expand_ratio != big_block.expand_ratio:
                out.add("e")
    return out


def test_ofa_constants_are_its_schedule() -> None:
    # 180 : 120 : (25 + 120) : (25 + 120) epochs; LRs 0.08125 (2.6 / 32), 3e-2, 7.5e-3, 7.5e-3
    assert pytest.approx((180 / 590, 120 / 590, 145 / 590, 145 / 590)) == OFA_PHASE_FRACTIONS
    assert pytest.approx((1.0, 0.36923, 0.092308, 0.092308), rel=1e-4) == OFA_PHASE_LR_SCALES
    table = stages(ofa_config(epochs=590, lr=2.6), 1)
    assert [(s.name, s.end - s.start, s.subnets) for s in table] == [
        ("full", 180, 1),
        ("kernel", 120, 1),
        ("depth-1", 25, 2),
        ("depth-2", 120, 2),
        ("expand-1", 25, 4),
        ("expand-2", 120, 4),
    ]
    assert [round(s.lr / 32, 6) for s in table] == [0.08125, 0.03, 0.0025, 0.0075, 0.0025, 0.0075]
    assert [s.warmup for s in table] == [0, 5, 0, 5, 0, 5]


def test_stages_in_order_with_their_lrs_sampling_and_passes(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    x, y = fmnist[0][:256], fmnist[1][:256]
    config = ofa_config(epochs=10, batch_size=64, lr=0.1)  # 40 steps
    trainer = _trainer("progressive-shrinking", tiny_space, config, seed=0, init_seed=0)
    assert isinstance(trainer, ProgressiveShrinkingTrainer)
    gammas = [m.project.bn.weight for m in trainer.supernet.modules() if getattr(m, "has_residual", False)]
    assert gammas and all(bool((g == 0).all()) for g in gammas)  # same initialisation as sandwich/DεpS

    seen: list[Arch] = []  # every subnet forward the supernet runs while training
    trainer.supernet.register_forward_pre_hook(
        lambda module, args: seen.append(module.active_arch) if module.training else None
    )
    log: list[tuple[str, float, list[Arch]]] = []

    def on_step(i: int, n: int, loss: float) -> None:
        stage = trainer.stage_at(trainer.global_step - 1)
        log.append((stage.name, trainer.optimizer.param_groups[0]["lr"], seen[:]))
        seen.clear()

    for _ in range(config.epochs):
        trainer.train_epoch(x, y, on_step=on_step)

    names = [name for name, _, _ in log]
    order = list(dict.fromkeys(names))
    assert order == ["full", "kernel", "depth-1", "depth-2", "expand-1", "expand-2"]
    assert names == sorted(names, key=order.index)  # contiguous, never back
    table = {s.name: s for s in trainer.stages}
    for name, lr, archs in log:
        stage = table[name]
        assert lr <= stage.lr + 1e-12
        assert len(archs) == OFA_SUBNETS_PER_STEP[stage.phase]
        free = {
            "full": {"resolution"},
            "kernel": {"resolution", "ks"},
            "depth-1": {"resolution", "ks", "depth"},
            "depth-2": {"resolution", "ks", "depth"},
            "expand-1": {"resolution", "ks", "depth", "e", "width"},
            "expand-2": {"resolution", "ks", "depth", "e", "width"},
        }[name]
        for arch in archs:
            assert _differs(tiny_space, arch) <= free, (name, arch)
    # the first step of each stage without warm-up runs at the stage's peak LR
    firsts = {name: lr for name, lr, _ in reversed(log)}
    assert firsts["full"] == pytest.approx(0.1)
    assert firsts["depth-1"] == pytest.approx(0.1 * OFA_PHASE_LR_SCALES[2] / 3)
    assert firsts["expand-1"] == pytest.approx(0.1 * OFA_PHASE_LR_SCALES[3] / 3)
    assert max(lr for name, lr, _ in log if name == "kernel") == pytest.approx(0.1 * OFA_PHASE_LR_SCALES[1])
    assert any("ks" in _differs(tiny_space, a) for name, _, archs in log if name == "kernel" for a in archs)
    assert trainer.passes == sum(len(archs) for _, _, archs in log)
    assert trainer.passes == sum((s.end - s.start) * s.subnets for s in trainer.stages)
    assert trainer.teacher is not None and trainer.channels_sorted
    assert trainer.phase_ends() == {
        "full": table["full"].end,
        "kernel": table["kernel"].end,
        "depth": table["depth-2"].end,
        "expand": 40,
    }


def test_resume_is_bit_exact_across_phase_boundaries(tiny_space: OfaMbv3Space, fmnist: Data) -> None:
    # 5 epochs of 4 steps; OFA's shares end the phases at steps 6, 10, 15 and 20: the epoch after
    # checkpoint 1 creates the teacher mid-epoch, the one after checkpoint 3 sorts channels mid-epoch.
    x, y = fmnist[0][:256], fmnist[1][:256]
    config = ofa_config(epochs=5, batch_size=64, lr=0.1)
    straight = _trainer("progressive-shrinking", tiny_space, config, seed=1, init_seed=0)
    states = {}
    for _ in range(5):
        straight.train_epoch(x, y)
        states[straight.epoch] = _roundtrip(straight.state_dict())
    assert isinstance(straight, ProgressiveShrinkingTrainer)
    assert straight.phase_ends() == {"full": 6, "kernel": 10, "depth": 15, "expand": 20}
    assert states[1]["extra"]["teacher"] is None and states[3]["extra"]["teacher"] is not None
    assert not states[3]["extra"]["channels_sorted"] and states[4]["extra"]["channels_sorted"]

    for at in (1, 3):
        resumed = _trainer("progressive-shrinking", tiny_space, config, seed=7, init_seed=5)
        resumed.load_state_dict(states[at])
        assert resumed.passes == states[at]["passes"] > 0
        while resumed.epoch < 5:
            resumed.train_epoch(x, y)
        assert resumed.passes == straight.passes
        expected, got = straight.state_dict(), resumed.state_dict()
        for key in expected["model"]:
            assert torch.equal(expected["model"][key], got["model"][key]), (at, key)
        for key in expected["extra"]["teacher"]:
            assert torch.equal(expected["extra"]["teacher"][key], got["extra"]["teacher"][key]), (at, key)


def test_pass_counter_counts_training_forwards_and_old_checkpoints_resume(
    tiny_space: OfaMbv3Space, fmnist: Data
) -> None:
    x, y = fmnist[0][:128], fmnist[1][:128]
    config = TrainConfig(epochs=2, batch_size=64, num_random_subnets=1)
    trainer = _trainer("sandwich", tiny_space, config, seed=0, init_seed=0)
    trainer.train_epoch(x, y)
    assert trainer.passes == 2 * 3  # largest + smallest + 1 random per step
    trainer.supernet.eval()
    with torch.no_grad():
        trainer.forward(tiny_space.smallest(), x[:8])  # evaluation is not training compute
    assert trainer.passes == 6
    old = _roundtrip(trainer.state_dict())
    del old["passes"]  # a checkpoint written before the counter existed
    resumed = _trainer("sandwich", tiny_space, config, seed=3, init_seed=3)
    resumed.load_state_dict(old)
    assert resumed.passes == 0
    resumed.train_epoch(x, y)
    trainer.train_epoch(x, y)
    assert resumed.passes == 6 and trainer.passes == 12
    for key, value in trainer.supernet.state_dict().items():
        assert torch.equal(value, resumed.supernet.state_dict()[key]), key


def test_phase_one_draws_newly_free_dimensions_from_their_two_largest_options(
    spec_space: OfaMbv3Space,
) -> None:
    torch.manual_seed(0)
    net = spec_space.build_supernet(mean=MEAN, std=STD)
    trainer = ProgressiveShrinkingTrainer(
        supernet=net, space=spec_space, config=ofa_config(epochs=590), seed=0
    )
    table = {s.name: s for s in stages(trainer.config, 1)}
    depths = {name: set() for name in ("depth-1", "depth-2")}
    expands = {name: set() for name in ("expand-1", "expand-2")}
    for _ in range(200):
        for name in depths:
            depths[name] |= {len(s.blocks) for s in trainer._sample(table[name]).stages}
        for name in expands:
            expands[name] |= {b.expand_ratio for s in trainer._sample(table[name]).stages for b in s.blocks}
    assert depths == {"depth-1": {3, 4}, "depth-2": {2, 3, 4}}  # OFA: {3, 4} then {2, 3, 4}
    assert expands == {"expand-1": {4, 6}, "expand-2": {3, 4, 6}}  # OFA: {4, 6} then {3, 4, 6}


@pytest.mark.parametrize(
    "schedule", ["progressive-shrinking", "sandwich", "deps", "standalone", "deps+middle", "deps+early"]
)
def test_benchmark_pass_plan_matches_the_counter(
    schedule: str, tiny_space: OfaMbv3Space, fmnist: Data
) -> None:
    from bench.supernet_schedules import _config, planned_passes, smallest_steps, trainer_schedule

    settings = {"batch_size": 64, "lr": 0.1}
    config = _config(schedule, 3, settings)
    torch.manual_seed(0)
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    trainer = make_trainer(
        trainer_schedule(schedule),
        supernet=net,
        space=tiny_space,
        config=config,
        seed=0,
        arch=tiny_space.smallest(),
    )
    for _ in range(3):
        trainer.train_epoch(fmnist[0][:192], fmnist[1][:192])
    assert trainer.passes == planned_passes(schedule, config, 3) >= 9
    if schedule in ("sandwich", "deps"):  # the steps that train the smallest subnet, as the report counts
        assert smallest_steps(schedule, config, 3) == trainer.total_steps - getattr(trainer, "full_steps", 0)
