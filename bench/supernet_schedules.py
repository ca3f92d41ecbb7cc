"""Supernet training schedules at equal compute on Fashion-MNIST: progressive shrinking, sandwich, DεpS.

Compute is counted in subnet forward-backward passes (``Trainer.passes``). Each schedule is
trained at several budgets (fractions of a reference budget), each with its own full
schedule (a 0.25x run is not a prefix of the 1x run), for several seeds; the runs of one
seed and budget are interleaved so that load changes hit every schedule alike. Progressive
shrinking is OFA's schedule scaled down (``supernets.training.progressive``), with the same
initialisation and losses as sandwich and DεpS. Standalone twins of the smallest and largest
subnet train with the same recipe (SGD, cosine, label smoothing) and the reference budget of
passes, all spent on the one subnet; the smallest's twin also at every other budget, so that the
smallest subnet of a supernet can be read against a standalone one at the passes it got itself.
DεpS levers (``DEPS_LEVERS``: its sampling, its shrink start, its ramp) train at one budget, paired
per seed with DεpS as it is.

Every score is test-split accuracy (the validation split, on which DεpS was tuned, is not
used) after BN recalibration on training images. The hypervolume is over (test accuracy,
latency relative to the slowest) of a fixed set of sampled subnets, with the reference point fixed before any
training. A target is met only when it holds at the pessimistic end of the seeds'
paired differences: mean - sd for a ">=" goal, mean + sd for a "<=" goal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.cells import CellStore, run_cells
from bench.common import run_from_command_line, write_report
from nas.data import DatasetSplits, load_dataset
from nas.pareto import hypervolume
from predictors.hardware import get_profile
from predictors.measure import measure_latency
from supernets import (
    Arch,
    SearchSpace,
    Supernet,
    deployed_subnet,
    evaluate_accuracy,
    make_space,
    score_subnet,
)
from supernets.training import ProgressiveShrinkingTrainer, TrainConfig, Trainer, make_trainer
from supernets.training.progressive import ofa_config, stages

DATA_SEED = 0  # data split, BN calibration images and the sampled subnets: the same for every run
NAME = "supernet_schedules"
METHODS = ("progressive-shrinking", "sandwich", "deps")

# Quick mode: a narrow layout so that the whole code path runs in a few minutes on a shared CPU.
QUICK_SPACE: dict[str, Any] = {
    "family": "ofa-mbv3",
    "kernel_sizes": [3, 5, 7],
    "expand_ratios": [3, 4, 6],
    "depths": [1, 2],
    "width_mults": [0.75, 1.0],
    "resolutions": [20, 24, 28],
    "stem_channels": 8,
    "head_channels": 64,
    "stages": [
        {"channels": 12, "stride": 2, "se": False, "act": "relu"},
        {"channels": 24, "stride": 2, "se": True, "act": "hswish"},
        {"channels": 32, "stride": 1, "se": True, "act": "hswish"},
    ],
}
FULL_SPACE: dict[str, Any] = {
    "family": "ofa-mbv3",
    "kernel_sizes": [3, 5, 7],
    "expand_ratios": [3, 4, 6],
    "depths": [2, 3, 4],
    "width_mults": [0.75, 1.0],
    "resolutions": [20, 24, 28],
}

# DεpS levers (issue 13: "find out why ... its incremental subnet learning rate, the shrink start, the
# sampling"), each a change of DεpS's TrainConfig at equal passes, trained at LEVER_BUDGET (the budget
# the 0.5x target reads) for every seed and paired with DεpS as it is. At 0.5x, DεpS's largest and
# smallest subnets beat progressive shrinking's final (1x) ones, but the mean of its sampled subnets
# is 1.5 points below PS's: "middle" trains the middle of the space more (only the largest anchored,
# 3 draws, one per stratum of log-FLOPs); "early" starts shrinking after a third of the steps
# instead of a half (in 5 epochs instead of 6, for equal passes); "ramp" ramps the subnets'
# gradient scale in over 30% of the steps instead of 10%.
DEPS_LEVERS: dict[str, dict[str, Any]] = {
    "deps+middle": {"anchors": "largest", "sampler": "flops-stratified", "num_random_subnets": 3},
    "deps+early": {"deps_full_fraction": 1 / 3},  # 5 epochs, 599 passes: DεpS's 600 at 6 epochs
    "deps+ramp": {"deps_ramp_fraction": 0.3},
}
LEVER_BUDGET = 0.5


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "space": QUICK_SPACE,
            "train_images": 512,
            "test_images": 1000,
            "batch_size": 64,
            "lr": 0.1,
            "reference_sandwich_epochs": 3,
            "budgets": [0.5, 1.0],
            "seeds": [0, 1, 2],
            "num_subnets": 20,
            "calibration_images": 256,
            "latency_repeats": 5,
            "step_repeats": 10,
        }
    return {
        "space": FULL_SPACE,
        "train_images": 5000,
        "test_images": 10000,  # the whole official test split
        "batch_size": 128,
        "lr": 0.1,
        # The reference budget (1x) is the passes of 8 sandwich epochs (40 steps x 4 subnets each).
        "reference_sandwich_epochs": 8,
        "budgets": [0.25, 0.5, 1.0],
        "seeds": [0, 1, 2],
        "num_subnets": 50,
        "calibration_images": 2000,
        "latency_repeats": 20,
        "step_repeats": 10,
    }


def _config(schedule: str, epochs: int, s: dict[str, Any]) -> TrainConfig:
    """The one recipe every schedule shares; progressive shrinking adds OFA's phase shares and LRs,
    a DεpS lever (``DEPS_LEVERS``) its change."""
    fields: dict[str, Any] = {"epochs": epochs, "batch_size": s["batch_size"], "lr": s["lr"]}
    if schedule == "progressive-shrinking":
        return ofa_config(**fields)
    return TrainConfig(**fields, **DEPS_LEVERS.get(schedule, {}))


def trainer_schedule(schedule: str) -> str:
    """The trainer a planned schedule runs: a DεpS lever runs DεpS."""
    return "deps" if schedule in DEPS_LEVERS else schedule


def planned_passes(schedule: str, config: TrainConfig, steps_per_epoch: int) -> int:
    """Forward-backward passes a run will do (checked against ``Trainer.passes`` after each run)."""
    schedule = trainer_schedule(schedule)
    total = config.epochs * steps_per_epoch
    per_sandwich_step = (2 if config.anchors == "sandwich" else 1) + config.num_random_subnets
    if schedule == "sandwich":
        return total * per_sandwich_step
    if schedule == "deps":
        full = int(config.deps_full_fraction * total + 0.5)
        return full + (total - full) * per_sandwich_step
    if schedule == "progressive-shrinking":
        return sum((st.end - st.start) * st.subnets for st in stages(config, steps_per_epoch))
    if schedule == "standalone":
        return total
    raise ValueError(f"no pass plan for schedule {schedule!r}")


def epochs_for(schedule: str, budget_passes: int, s: dict[str, Any], steps_per_epoch: int) -> int:
    """The epoch count whose passes come nearest ``budget_passes`` (within half an epoch's)."""
    best, best_gap = 1, math.inf
    for epochs in range(1, 1000):
        passes = planned_passes(schedule, _config(schedule, epochs, s), steps_per_epoch)
        if abs(passes - budget_passes) < best_gap:
            best, best_gap = epochs, abs(passes - budget_passes)
        if passes > budget_passes:
            break
    return best


def plan(s: dict[str, Any]) -> dict[str, Any]:
    """Every run of the benchmark: (seed, schedule, budget) -> epochs and passes."""
    spe = math.ceil(s["train_images"] / s["batch_size"])
    reference = planned_passes("sandwich", _config("sandwich", s["reference_sandwich_epochs"], s), spe)
    runs = []
    for seed in s["seeds"]:
        for budget in s["budgets"]:
            for schedule in METHODS:
                epochs = epochs_for(schedule, round(budget * reference), s, spe)
                passes = planned_passes(schedule, _config(schedule, epochs, s), spe)
                runs.append(
                    {"seed": seed, "schedule": schedule, "budget": budget, "epochs": epochs, "passes": passes}
                )
        # The standalone smallest at every budget (its curve; a pass of it costs a fifteenth of the
        # largest's), the standalone largest at the reference budget.
        for which, budgets in (("smallest", s["budgets"]), ("largest", [max(s["budgets"])])):
            for budget in budgets:
                epochs = epochs_for("standalone", round(budget * reference), s, spe)
                runs.append(
                    {
                        "seed": seed,
                        "schedule": f"standalone-{which}",
                        "budget": budget,
                        "epochs": epochs,
                        "passes": planned_passes("standalone", _config("standalone", epochs, s), spe),
                    }
                )
    return {"steps_per_epoch": spe, "reference_passes": reference, "runs": runs}


def smallest_steps(schedule: str, config: TrainConfig, steps_per_epoch: int) -> int | None:
    """Steps in which a supernet schedule trains its smallest subnet (one pass each), where it is fixed.

    Sandwich trains it every step; DεpS after its full-model steps (the first of them at a
    ramped-down weight); progressive shrinking only in the phases where it is in the space (not
    counted here: ``None``).
    """
    total = config.epochs * steps_per_epoch
    if config.anchors != "sandwich":
        return None
    if schedule == "sandwich":
        return total
    if trainer_schedule(schedule) == "deps":
        return total - int(config.deps_full_fraction * total + 0.5)
    return None


def lever_plan(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The DεpS lever runs: every lever at ``LEVER_BUDGET`` for every seed (when that budget is run)."""
    if LEVER_BUDGET not in s["budgets"]:
        return []
    spe = math.ceil(s["train_images"] / s["batch_size"])
    reference = planned_passes("sandwich", _config("sandwich", s["reference_sandwich_epochs"], s), spe)
    runs = []
    for seed in s["seeds"]:
        for lever in DEPS_LEVERS:
            epochs = epochs_for(lever, round(LEVER_BUDGET * reference), s, spe)
            passes = planned_passes(lever, _config(lever, epochs, s), spe)
            runs.append(
                {"seed": seed, "schedule": lever, "budget": LEVER_BUDGET, "epochs": epochs, "passes": passes}
            )
    return runs


def _load(s: dict[str, Any]) -> DatasetSplits:
    data = load_dataset(
        {"kind": "builtin", "name": "fashion-mnist"}, data_dir=Path("/usr/share/datasets"), seed=DATA_SEED
    )
    n, m = s["train_images"], s["test_images"]
    return dataclasses.replace(
        data,
        train_x=data.train_x[:n],
        train_y=data.train_y[:n],
        test_x=data.test_x[:m],
        test_y=data.test_y[:m],
    )


def _accuracy(net: Supernet, arch: Arch, data: DatasetSplits, calibration: torch.Tensor) -> float:
    return score_subnet(net, arch, calibration, data.test_x, data.test_y)


def _train(
    schedule: str,
    space: SearchSpace,
    data: DatasetSplits,
    config: TrainConfig,
    seed: int,
    *,
    arch: Arch | None = None,
    on_step: Callable[[Trainer], None] | None = None,
) -> tuple[Supernet, Trainer, float]:
    """Train one run; ``wall_s`` excludes what ``on_step`` (the phase log's evaluations) takes."""
    torch.manual_seed(seed)
    net = space.build_supernet(mean=data.mean, std=data.std)
    if schedule == "standalone":
        net.zero_init_residual_bn()  # the initialisation every supernet schedule starts from
    trainer = make_trainer(schedule, supernet=net, space=space, config=config, seed=seed, arch=arch)
    excluded = 0.0

    def step(i: int, n: int, loss: float) -> None:
        nonlocal excluded
        if on_step is not None:
            t0 = time.perf_counter()
            on_step(trainer)
            excluded += time.perf_counter() - t0

    started = time.perf_counter()
    while trainer.epoch < trainer.total_epochs:
        trainer.train_epoch(data.train_x, data.train_y, on_step=step)
    return net, trainer, time.perf_counter() - started - excluded


def _front_hv(accs: list[float], lats: list[float], reference: tuple[float, float]) -> float:
    return hypervolume([[a, lat] for a, lat in zip(accs, lats, strict=True)], reference, ["max", "min"])


def _stats(values: list[float]) -> dict[str, Any]:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "mean": statistics.fmean(values),
        "sd": sd,
        "n": len(values),
        "values": [round(v, 6) for v in values],
    }


def _paired(a: list[float], b: list[float], scale: float = 1.0) -> dict[str, Any]:
    """Per-seed differences ``a - b`` (x ``scale``) with their mean, sd and pessimistic ends."""
    d = _stats([scale * (x - y) for x, y in zip(a, b, strict=True)])
    return d | {"low": d["mean"] - d["sd"], "high": d["mean"] + d["sd"]}


def _step_ratio(space: SearchSpace, data: DatasetSplits, repeats: int, batch_size: int) -> dict[str, float]:
    """Median seconds of one SGD step on the largest subnet: elastic supernet vs its static extraction."""
    torch.manual_seed(DATA_SEED)
    net = space.build_supernet(mean=data.mean, std=data.std)
    arch = space.largest()
    net.set_active(arch)
    static = net.extract(arch).train()
    net.train()
    # the layout the trainers use (TrainConfig.channels_last), for both
    net.to(memory_format=torch.channels_last)
    static.to(memory_format=torch.channels_last)
    x = data.train_x[:batch_size].contiguous(memory_format=torch.channels_last)
    y = data.train_y[:batch_size]
    models = {"elastic": net, "static": static}
    optimisers = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(repeats + 2):
        for key, model in models.items():  # interleaved, so load changes hit both alike
            t0 = time.perf_counter()
            optimisers[key].zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimisers[key].step()
            if i >= 2:
                times[key].append(time.perf_counter() - t0)
    elastic, static_s = statistics.median(times["elastic"]), statistics.median(times["static"])
    return {"elastic_step_s": elastic, "static_step_s": static_s, "ratio": elastic / static_s}


def estimate_full_wall_s(measured: dict[str, float]) -> dict[str, Any]:
    """The FULL run's wall time on this machine from this run's costs per pass and per scored subnet.

    ``measured`` holds seconds per pass of every schedule and per scored subnet in the FULL space
    and sizes (``_full_costs``); standalone-largest passes cost like the largest subnet's.
    """
    full = _settings(False)
    runs = plan(full)["runs"] + lever_plan(full)
    per_pass = {"standalone-largest": "largest_pass_s", "standalone-smallest": "smallest_pass_s"}
    train = sum(r["passes"] * measured[per_pass.get(r["schedule"], "mixed_pass_s")] for r in runs)
    supernet_runs = sum(1 for r in runs if not r["schedule"].startswith("standalone"))
    ps_runs = sum(1 for r in runs if r["schedule"] == "progressive-shrinking")
    scored = supernet_runs * (full["num_subnets"] + 2) + 2 * sum(
        1 for r in runs if r["schedule"].startswith("standalone")
    )
    scored += ps_runs * 4 * 2  # the phase log: largest and smallest after each phase
    evaluation = scored * measured["score_subnet_s"]
    return {
        "train_s": train,
        "evaluation_s": evaluation,
        "total_s": train + evaluation,
        "total_passes": sum(r["passes"] for r in runs),
        "scored_subnets": scored,
        "per_unit_costs": measured,
    }


def _full_costs(
    data: DatasetSplits, calibration: torch.Tensor, repeats: int = 3
) -> dict[str, dict[str, float]]:
    """Seconds per pass (sandwich mix, largest, smallest) and per scored subnet, at FULL sizes.

    By two clocks: ``wall`` (at this run's load) and ``cpu`` (this process's CPU time; for one
    thread, about the wall time on an idle machine).
    """
    full = _settings(False)
    space = make_space(
        full["space"], in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    torch.manual_seed(DATA_SEED)
    net = space.build_supernet(mean=data.mean, std=data.std)
    config = TrainConfig(epochs=1, batch_size=full["batch_size"], lr=full["lr"])
    trainer = make_trainer("sandwich", supernet=net, space=space, config=config, seed=DATA_SEED)
    x = data.train_x[: full["batch_size"]].contiguous(memory_format=torch.channels_last)
    y = data.train_y[: full["batch_size"]]
    net.train()
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}

    def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
        fn()  # warm-up
        t0 = {k: c() for k, c in clocks.items()}
        for _ in range(n):
            fn()
        return {k: (c() - t0[k]) / n for k, c in clocks.items()}

    def one(arch: Arch) -> None:
        F.cross_entropy(trainer.forward(arch, x), y).backward()

    mixed = timed(lambda: trainer.train_step(x, y), repeats)
    largest = timed(lambda: one(space.largest()), repeats)
    smallest = timed(lambda: one(space.smallest()), repeats)
    rng = np.random.default_rng(DATA_SEED)
    sample = [space.sample(rng) for _ in range(3)]
    recal = {k: 0.0 for k in clocks}
    evaluate = {k: 0.0 for k in clocks}
    for arch in sample:
        t0 = {k: c() for k, c in clocks.items()}
        model = deployed_subnet(net, arch, calibration)
        t1 = {k: c() for k, c in clocks.items()}
        evaluate_accuracy(model, data.test_x, data.test_y)
        for k, c in clocks.items():
            recal[k] += t1[k] - t0[k]
            evaluate[k] += c() - t1[k]
    out: dict[str, dict[str, float]] = {}
    for k in clocks:
        # both scale with their images: the FULL run's calibration images and test split
        score = (recal[k] * full["calibration_images"] / len(calibration)) / len(sample)
        score += (evaluate[k] * full["test_images"] / len(data.test_y)) / len(sample)
        out[k] = {
            "mixed_pass_s": mixed[k] / (2 + config.num_random_subnets),
            "largest_pass_s": largest[k],
            "smallest_pass_s": smallest[k],
            "score_subnet_s": score,
        }
    out["load"] = {"load_average_1min": os.getloadavg()[0]}
    return out


def _busy(before: tuple[float, ...], after: tuple[float, ...], cores: int, jobs: int = 1) -> bool:
    """Another job shared the machine: load before we started, or above our ``jobs`` threads while we ran."""
    return before[0] > 0.5 or after[1] > min(jobs + 0.5, cores - 0.5)


@functools.cache
def _context(quick: bool) -> tuple[dict[str, Any], DatasetSplits, SearchSpace, torch.Tensor, list[Arch]]:
    """What every cell of a run shares, rebuilt the same in every worker process from ``DATA_SEED``:
    settings, data, space, BN calibration images and the sampled subnets."""
    s = _settings(quick)
    data = _load(s)
    space = make_space(
        s["space"], in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    calibration = data.calibration_images(s["calibration_images"], seed=DATA_SEED)
    rng = np.random.default_rng(DATA_SEED)
    archs = [space.sample(rng) for _ in range(s["num_subnets"])]
    return s, data, space, calibration, archs


def run_cell(quick: bool, r: dict[str, Any]) -> dict[str, Any]:
    """Train one planned run and score it on the test split (one cell of the benchmark).

    A supernet run returns the accuracy of every sampled subnet (the hypervolume is computed when
    the report is assembled, with latencies measured then) and, for progressive shrinking, the
    accuracy of the largest and smallest subnet after each phase.
    """
    s, data, space, calibration, archs = _context(quick)
    schedule, seed = r["schedule"], r["seed"]
    phase_log: list[dict[str, Any]] = []
    if schedule.startswith("standalone"):
        arch = space.smallest() if schedule.endswith("smallest") else space.largest()
        net, trainer, wall = _train(
            "standalone", space, data, _config("standalone", r["epochs"], s), seed, arch=arch
        )
        result: dict[str, Any] = {"accuracy": _accuracy(net, arch, data, calibration)}
    else:

        def log_phase(trainer: Trainer) -> None:
            if not isinstance(trainer, ProgressiveShrinkingTrainer):
                return
            for phase, end in trainer.phase_ends().items():
                if trainer.global_step == end:
                    phase_log.append(
                        {
                            "budget": r["budget"],
                            "seed": r["seed"],
                            "phase": phase,
                            "step": end,
                            "passes": trainer.passes,
                            "acc_largest": _accuracy(trainer.supernet, space.largest(), data, calibration),
                            "acc_smallest": _accuracy(trainer.supernet, space.smallest(), data, calibration),
                        }
                    )

        net, trainer, wall = _train(
            trainer_schedule(schedule),
            space,
            data,
            _config(schedule, r["epochs"], s),
            seed,
            on_step=log_phase,
        )
        result = {
            "accs": [_accuracy(net, a, data, calibration) for a in archs],
            "acc_smallest": _accuracy(net, space.smallest(), data, calibration),
            "acc_largest": _accuracy(net, space.largest(), data, calibration),
            "phase_log": phase_log,
        }
    if trainer.passes != r["passes"]:
        raise AssertionError(f"{schedule} did {trainer.passes} passes, planned {r['passes']}")
    return result | {"wall_s": wall, "s_per_pass": wall / trainer.passes}


def run(*, quick: bool, out_dir: Path, jobs: int = 1, cells_dir: Path | None = None) -> dict[str, Any]:
    """Train every schedule at every budget and seed; write ``<out_dir>/supernet_schedules.{json,md}``.

    Each run is a cell of a :class:`~bench.cells.CellStore` (``cells_dir``, by default
    ``<out_dir>/cells`` for a full run and a temporary directory for a quick one): a full run
    interrupted part-way resumes where it stopped. ``jobs`` cells train at once, in processes of
    their own.
    """
    load_before = os.getloadavg()
    started = time.perf_counter()
    torch.set_num_threads(1)
    s, data, space, calibration, archs = _context(quick)
    probe = space.build_supernet(mean=data.mean, std=data.std)
    profile = get_profile("cpu-fp32")
    shape = (data.channels, data.image_size, data.image_size)
    lats = [
        measure_latency(
            probe.extract(a), input_shape=shape, profile=profile, warmup=2, repeats=s["latency_repeats"]
        ).median_ms
        for a in archs
    ]
    # Latency relative to the slowest sampled subnet, reference (0, 1.1): fixed before any training,
    # and a uniformly slower machine (load) gives the same hypervolume.
    slowest = max(lats)
    rel_lats = [lat / slowest for lat in lats]
    reference = (0.0, 1.1)
    schedule_plan = plan(s)

    with contextlib.ExitStack() as stack:
        if cells_dir is None:
            cells_dir = (
                Path(stack.enter_context(tempfile.TemporaryDirectory())) if quick else out_dir / "cells"
            )
        store = CellStore(cells_dir, NAME, s)
        stored_before = store.done()
        # The largest budget first, seed by seed: a run stopped part-way leaves whole comparisons at
        # the reference budget (with the standalone twins) rather than every budget of one seed.
        order = sorted(schedule_plan["runs"], key=lambda r: (-r["budget"], r["seed"]))

        def cells_of(into: CellStore, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return run_cells(
                into,
                cells,
                functools.partial(run_cell, quick),
                jobs=jobs,
                on_done=lambda cell, out: print(f"{cell} -> {into.done()} cells stored", flush=True),
            )

        done = cells_of(store, order)
        by_key = {store.key(c): out for c, out in zip(order, done, strict=True)}
        outputs = [by_key[store.key(r)] for r in schedule_plan["runs"]]
        # The DεpS levers in a store of their own (its key holds the levers' definitions), after
        # the main runs: a sitting stopped during the levers leaves the main comparison whole.
        levers = lever_plan(s)
        lever_store = CellStore(
            cells_dir, f"{NAME}-levers", s | {"levers": DEPS_LEVERS, "budget": LEVER_BUDGET}
        )
        lever_outputs = cells_of(lever_store, levers)
        cells_info = {
            "store": str(store.dir.relative_to(cells_dir.parent)) if not quick else "temporary",
            "cells": len(outputs),
            "stored_before_this_run": stored_before,
            "cpus": sorted({c["cpu"] for c in store.ran_on()}),
            "jobs": jobs,
            "lever_store": str(lever_store.dir.relative_to(cells_dir.parent)) if not quick else "temporary",
            "lever_cells": len(lever_outputs),
        }

    runs: list[dict[str, Any]] = []
    phase_log: list[dict[str, Any]] = []
    for r, out in zip(schedule_plan["runs"] + levers, outputs + lever_outputs, strict=True):
        row = r | {"wall_s": out["wall_s"], "s_per_pass": out["s_per_pass"]}
        if "accs" in out:
            accs = out["accs"]
            row |= {
                "hypervolume": _front_hv(accs, rel_lats, reference),
                "acc_smallest": out["acc_smallest"],
                "acc_largest": out["acc_largest"],
                "acc_subnets_mean": float(np.mean(accs)),
                "subnets_above_smallest": float(np.mean([a > out["acc_smallest"] for a in accs])),
            }
            phase_log += out["phase_log"]
        else:
            row["accuracy"] = out["accuracy"]
        runs.append(row)

    def values(schedule: str, budget: float, key: str) -> list[float]:
        return [
            x[key]
            for x in sorted(runs, key=lambda x: x["seed"])
            if x["schedule"] == schedule and x["budget"] == budget
        ]

    n_test = len(data.test_y)
    curves = []
    for schedule in METHODS:
        for budget in s["budgets"]:
            row: dict[str, Any] = {"schedule": schedule, "budget": budget}
            row["passes"] = values(schedule, budget, "passes")[0]
            row["epochs"] = values(schedule, budget, "epochs")[0]
            for key in ("hypervolume", "acc_smallest", "acc_largest", "acc_subnets_mean", "wall_s"):
                st = _stats(values(schedule, budget, key))
                row[f"{key}_mean"], row[f"{key}_sd"] = st["mean"], st["sd"]
            curves.append(row)
    twins = []
    for which in ("smallest", "largest"):
        acc = _stats(values(f"standalone-{which}", 1.0, "accuracy"))
        twins.append(
            {
                "subnet": which,
                "passes": values(f"standalone-{which}", 1.0, "passes")[0],
                "epochs": values(f"standalone-{which}", 1.0, "epochs")[0],
                "accuracy_mean": acc["mean"],
                "accuracy_sd": acc["sd"],
                "wall_s_mean": statistics.fmean(values(f"standalone-{which}", 1.0, "wall_s")),
            }
        )

    spe = schedule_plan["steps_per_epoch"]
    smallest_curve = []
    for budget in s["budgets"]:
        acc = _stats(values("standalone-smallest", budget, "accuracy"))
        row = {
            "budget": budget,
            "standalone_passes": values("standalone-smallest", budget, "passes")[0],
            "standalone_mean": acc["mean"],
            "standalone_sd": acc["sd"],
        }
        for schedule in ("sandwich", "deps"):
            own = smallest_steps(schedule, _config(schedule, values(schedule, budget, "epochs")[0], s), spe)
            st = _stats(values(schedule, budget, "acc_smallest"))
            row |= {f"{schedule}_own_passes": own, f"{schedule}_mean": st["mean"], f"{schedule}_sd": st["sd"]}
        smallest_curve.append(row)

    top = max(s["budgets"])
    ps_final = values("progressive-shrinking", top, "hypervolume")
    ps_final_passes = values("progressive-shrinking", top, "passes")[0]
    lever_rows = []
    for lever in ["deps", *DEPS_LEVERS] if levers else []:
        row = {
            "schedule": lever,
            "change": DEPS_LEVERS.get(lever, "as it is"),
            "passes": values(lever, LEVER_BUDGET, "passes")[0],
            "epochs": values(lever, LEVER_BUDGET, "epochs")[0],
            "compute_vs_ps_final": values(lever, LEVER_BUDGET, "passes")[0] / ps_final_passes,
        }
        for key in ("hypervolume", "acc_smallest", "acc_largest", "acc_subnets_mean"):
            st = _stats(values(lever, LEVER_BUDGET, key))
            row[f"{key}_mean"], row[f"{key}_sd"] = st["mean"], st["sd"]
        hv = values(lever, LEVER_BUDGET, "hypervolume")
        vs_deps = _paired(hv, values("deps", LEVER_BUDGET, "hypervolume"))
        vs_ps = _paired(hv, ps_final)
        row |= {
            "hv_minus_deps_mean": vs_deps["mean"],
            "hv_minus_deps_sd": vs_deps["sd"],
            "hv_minus_ps_final_mean": vs_ps["mean"],
            "hv_minus_ps_final_sd": vs_ps["sd"],
            "reaches_ps_final": vs_ps["low"] >= 0,
        }
        lever_rows.append(row)
    comparisons: list[dict[str, Any]] = []
    deps_reaches: list[float] = []
    for budget in s["budgets"]:
        d = _paired(values("deps", budget, "hypervolume"), ps_final)
        ratio = values("deps", budget, "passes")[0] / ps_final_passes
        comparisons.append(
            {"comparison": "HV deps - PS final", "budget": budget, "compute_vs_ps_final": ratio} | d
        )
        if d["low"] >= 0:
            deps_reaches.append(ratio)
    equal_compute = []
    for budget in s["budgets"]:
        d = _paired(values("deps", budget, "hypervolume"), values("sandwich", budget, "hypervolume"))
        equal_compute.append(d["low"])
        comparisons.append({"comparison": "HV deps - sandwich", "budget": budget} | d)
        d = _paired(
            values("deps", budget, "hypervolume"), values("progressive-shrinking", budget, "hypervolume")
        )
        comparisons.append({"comparison": "HV deps - PS", "budget": budget} | d)
    best = max(METHODS, key=lambda m: statistics.fmean(values(m, top, "hypervolume")))
    gaps = {}
    for which in ("smallest", "largest"):
        gaps[which] = _paired(
            values(f"standalone-{which}", 1.0, "accuracy"), values(best, top, f"acc_{which}"), 100
        )
        comparisons.append(
            {"comparison": f"points standalone - {best} ({which})", "budget": top} | gaps[which]
        )

    rankings = []
    for budget in s["budgets"]:
        order = sorted(METHODS, key=lambda m: -statistics.fmean(values(m, budget, "hypervolume")))
        lead = _paired(values(order[0], budget, "hypervolume"), values(order[1], budget, "hypervolume"))
        rankings.append({"budget": budget, "order": order, "lead_over_second": lead})
    after_full = [p["acc_largest"] for p in phase_log if p["budget"] == top and p["phase"] == "full"]
    teacher = _stats(after_full) if after_full else None

    step = _step_ratio(space, data, s["step_repeats"], s["batch_size"])
    costs = _full_costs(data, calibration)
    estimate = estimate_full_wall_s(costs["wall"]) | {
        "load_average_1min": costs["load"]["load_average_1min"],
        "idle_total_s": estimate_full_wall_s(costs["cpu"])["total_s"],
    }
    deps_ratio = min(deps_reaches) if deps_reaches else None
    targets = {
        "deps_compute_to_ps_final_hypervolume": {
            "value": deps_ratio,
            "goal": "<= 0.5 x PS's passes (smallest DεpS budget whose HV - PS's final HV has mean - sd >= 0)",
            "met": deps_ratio is not None and deps_ratio <= 0.5,
        },
        "deps_minus_sandwich_hv_at_equal_compute": {
            "value": min(equal_compute),
            "goal": ">= 0 at every budget (lowest mean - sd of the paired HV differences)",
            "met": min(equal_compute) >= 0,
        },
        **{
            f"standalone_minus_best_{which}_points": {
                "value": gaps[which]["high"],
                "goal": f"<= 0.5 (mean + sd of standalone twin - {best}'s {which}, test points)",
                "met": gaps[which]["high"] <= 0.5,
            }
            for which in ("smallest", "largest")
        },
        "elastic_step_over_static": {"value": step["ratio"], "goal": "<= 1.10", "met": step["ratio"] <= 1.10},
    }
    load_after = os.getloadavg()
    busy = _busy(load_before, load_after, os.cpu_count() or 1, jobs)
    wall_total = time.perf_counter() - started
    results = {
        "curves": curves,
        "standalone": twins,
        "smallest_by_budget": smallest_curve,
        "deps_levers": lever_rows,
        "comparisons": comparisons,
        "best_schedule": best,
        "rankings": rankings,
        "ps_teacher_accuracy_after_full_phase": teacher,
        "runs": runs,
        "phase_log": phase_log,
        "reference_point": {"accuracy": reference[0], "latency_over_slowest": reference[1]},
        "latency_ms": {"min": min(lats), "max": max(lats)},
        "reference_passes": schedule_plan["reference_passes"],
        "steps_per_epoch": schedule_plan["steps_per_epoch"],
        "test_images": n_test,
        "test_accuracy_se_points_at_0.85": 100 * math.sqrt(0.85 * 0.15 / n_test),
        "train_step": step,
        "space_size": space.size(),
        "load_average": {
            "before": [round(v, 2) for v in load_before],
            "after": [round(v, 2) for v in load_after],
        },
        "machine_busy": busy,
        "wall_s": wall_total,
        "full_run_estimate": estimate,
        "cells": cells_info,
    }
    notes = _notes(quick, results, targets, s)
    return write_report(
        NAME,
        config={k: v for k, v in s.items()}
        | {
            "quick": quick,
            "data_seed": DATA_SEED,
            "train": {m: _config(m, 1, s).to_dict() | {"epochs": "per budget"} for m in METHODS},
            "full_run_estimate_h": {
                "at_this_load": round(estimate["total_s"] / 3600, 2),
                "idle": round(estimate["idle_total_s"] / 3600, 2),
            },
        },
        results=results,
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[
            ("Schedules by budget (test split; mean and sd over seeds)", curves),
            ("Standalone twins (reference budget, test split)", twins),
            (
                "The smallest subnet by budget: standalone against its training inside the supernet "
                "(own passes: the steps that train it; test split, mean and sd over seeds)",
                smallest_curve,
            ),
            (
                "Paired differences over seeds",
                [{k: v for k, v in c.items() if k != "n"} for c in comparisons],
            ),
            (
                f"DεpS levers at {LEVER_BUDGET}x (test split; mean and sd over seeds, differences paired "
                "per seed; reaches_ps_final: mean - sd of HV - PS's final >= 0)",
                lever_rows,
            ),
            ("Progressive shrinking after each phase (test split)", phase_log),
        ],
    )


def _notes(
    quick: bool, results: dict[str, Any], targets: dict[str, dict[str, Any]], s: dict[str, Any]
) -> str:
    met = [k for k, t in targets.items() if t["met"]]
    unmet = [k for k, t in targets.items() if not t["met"]]
    load = results["load_average"]
    est = results["full_run_estimate"]
    parts = [
        "QUICK mode: a narrow space, 512 training images, 2 budgets; it shows that the code path runs, "
        "not which schedule wins. Do not read the targets of a quick run. "
        if quick
        else "",
        f"What to conclude: at {len(s['seeds'])} seeds, the targets met beyond the seed spread are "
        f"{', '.join(met) or 'none'}; not met: {', '.join(unmet) or 'none'}. "
        f"The best schedule at the largest budget by mean hypervolume is {results['best_schedule']}. "
        + " ".join(
            f"At {r['budget']}x: {' > '.join(r['order'])} by mean HV; the lead of {r['order'][0]} over "
            f"{r['order'][1]} is {r['lead_over_second']['mean']:.4f} +- {r['lead_over_second']['sd']:.4f} "
            + (
                "(beyond the seed spread)."
                if r["lead_over_second"]["low"] > 0
                else "(within the seed spread)."
            )
            for r in results["rankings"]
        )
        + (
            f" Progressive shrinking's teacher (its largest subnet after the full phase, at "
            f"{max(s['budgets'])}x) scores {results['ps_teacher_accuracy_after_full_phase']['mean']:.4f} +- "
            f"{results['ps_teacher_accuracy_after_full_phase']['sd']:.4f}; the standalone largest twin "
            f"{results['standalone'][1]['accuracy_mean']:.4f}. "
            if results["ps_teacher_accuracy_after_full_phase"]
            else " "
        ),
        " ".join(
            f"DεpS lever {r['schedule']} ({r['change']}) at {LEVER_BUDGET}x: HV {r['hypervolume_mean']:.4f}"
            f" +- {r['hypervolume_sd']:.4f}, {r['hv_minus_deps_mean']:+.4f} +- {r['hv_minus_deps_sd']:.4f} "
            f"against DεpS as it is, {r['hv_minus_ps_final_mean']:+.4f} +- {r['hv_minus_ps_final_sd']:.4f} "
            f"against PS's final at {r['compute_vs_ps_final']:.2f}x its passes"
            + (" (beyond the seed spread)." if r["reaches_ps_final"] else ".")
            for r in results["deps_levers"]
            if r["schedule"] != "deps"
        ),
        " ".join(
            f"The standalone smallest at {r['standalone_passes']} passes scores {r['standalone_mean']:.4f} "
            f"+- {r['standalone_sd']:.4f}; DεpS's smallest at {r['budget']}x (trained in "
            f"{r['deps_own_passes']} of its steps) {r['deps_mean']:.4f} +- {r['deps_sd']:.4f}."
            for r in results["smallest_by_budget"]
        ),
        "How it is measured: compute is counted in subnet forward-backward passes; each budget is a "
        f"fraction of {results['reference_passes']} passes (the reference: "
        f"{s['reference_sandwich_epochs']} sandwich epochs) and is rounded to whole epochs (the "
        "'passes' columns give what each run did). Accuracy is on the first "
        f"{results['test_images']} images of the test split (binomial SE about "
        f"{results['test_accuracy_se_points_at_0.85']:.2f} points at 85%), after BN recalibration on "
        "training images; the validation split is not used. Latency is cpu-fp32, batch 1, one thread, of "
        "the deployed subnet, divided by the slowest sampled subnet's; the hypervolume's reference point "
        "(0, 1.1) is fixed before "
        "training. Targets hold at mean - sd (or mean + sd) of per-seed paired differences. Runs of one "
        "seed and budget are interleaved; wall times exclude the phase log's evaluations. ",
        "What it does not show: one small dataset at 28 px, one small space, budgets no larger than the "
        "reference (rankings may change with longer training), and an sd from only "
        f"{len(s['seeds'])} seeds, itself uncertain. Progressive shrinking's teacher forwards (no "
        "backward) are not counted as passes, which favours it. The passes of different subnets cost "
        "different time (see s_per_pass in the JSON). Standalone twins spend the whole reference "
        "budget on one subnet, with zero-initialised residual BN like the supernets. ",
        f"Each run is a stored cell ({results['cells']['store']}): {results['cells']['cells']} cells, "
        f"{results['cells']['stored_before_this_run']} of them from earlier sittings, trained "
        f"{results['cells']['jobs']} at a time; CPUs that ran them: {', '.join(results['cells']['cpus'])}. "
        "Wall times of cells from different sittings or machines are not comparable; passes and "
        "accuracies are. ",
        f"Load average before {load['before']}, after {load['after']}"
        + (
            ": the machine was busy; wall times are not comparable across reports. "
            if results["machine_busy"]
            else ". "
        ),
        f"Estimated FULL run on this machine (1 thread): {est['total_s'] / 3600:.1f} h at this run's "
        f"load (1-minute average {est['load_average_1min']:.1f}; {est['train_s'] / 3600:.1f} h training "
        f"{est['total_passes']} passes, {est['evaluation_s'] / 3600:.1f} h scoring "
        f"{est['scored_subnets']} subnets), about {est['idle_total_s'] / 3600:.1f} h on an idle core (by "
        "CPU time), from per-pass and per-subnet costs measured in the FULL space during this run.",
    ]
    return "\n\n".join(p.strip() for p in parts if p)


def main() -> None:
    run_from_command_line(run, description=__doc__)


if __name__ == "__main__":
    main()
