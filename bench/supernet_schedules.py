"""Supernet training schedules side by side on Fashion-MNIST: progressive shrinking, sandwich, DεpS.

Same space, data, seed and epochs for each; every subnet is BN-recalibrated before it is
scored. Reports wall time, smallest/largest accuracy, the hypervolume of the (accuracy,
latency) front of a fixed set of sampled subnets, standalone twins of the smallest and
largest, the epochs DεpS needs to reach progressive shrinking's hypervolume, and the cost
of an elastic training step against the extracted static network's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import run_from_command_line, write_report
from nas.data import DatasetSplits, load_dataset
from nas.pareto import hypervolume
from predictors.hardware import get_profile
from predictors.measure import measure_latency
from supernets import Arch, SearchSpace, Supernet, evaluate_accuracy, make_space, recalibrate_bn
from supernets.training import TrainConfig, make_trainer

SEED = 0
NAME = "supernet_schedules"
METHODS = ("progressive-shrinking", "sandwich", "deps")

# Quick mode: a narrow layout so that a dozen short trainings fit in minutes on a shared CPU.
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


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "space": QUICK_SPACE,
            "limit": 512,
            "epochs": 4,
            "batch_size": 64,
            "lr": 0.1,
            "num_subnets": 20,
            "calibration_images": 256,
            "deps_epochs": [2],
            "latency_repeats": 5,
            "step_repeats": 20,
        }
    return {
        "space": FULL_SPACE,
        # Sized so the whole comparison (seven trainings, ~300 evaluated subnets) fits in about
        # 80 minutes on one core of a 2-core CPU.
        "limit": 5000,
        "epochs": 8,
        "batch_size": 128,
        "lr": 0.1,
        "num_subnets": 50,
        "calibration_images": 2000,
        "deps_epochs": [2, 4],
        "latency_repeats": 20,
        "step_repeats": 10,
    }


def _train(
    schedule: str, space: SearchSpace, data: DatasetSplits, config: TrainConfig, arch: Arch | None = None
) -> tuple[Supernet, float]:
    torch.manual_seed(SEED)
    net = space.build_supernet(mean=data.mean, std=data.std)
    trainer = make_trainer(schedule, supernet=net, space=space, config=config, seed=SEED, arch=arch)
    started = time.perf_counter()
    while trainer.epoch < trainer.total_epochs:
        trainer.train_epoch(data.train_x, data.train_y)
    return net, time.perf_counter() - started


def _accuracy(net: Supernet, arch: Arch, data: DatasetSplits, calibration: torch.Tensor) -> float:
    model = net.extract(arch)
    recalibrate_bn(model, calibration)
    return evaluate_accuracy(model, data.val_x, data.val_y)


def _front_hv(accs: list[float], lats: list[float], reference: tuple[float, float]) -> float:
    return hypervolume([[a, lat] for a, lat in zip(accs, lats, strict=True)], reference, ["max", "min"])


def _step_ratio(space: SearchSpace, data: DatasetSplits, repeats: int, batch_size: int) -> dict[str, float]:
    """Median seconds of one SGD step on the largest subnet: elastic supernet vs its static extraction."""
    torch.manual_seed(SEED)
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


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Train each schedule on the same space and data; write ``<out_dir>/supernet_schedules.{json,md}``."""
    torch.set_num_threads(1)
    s = _settings(quick)
    data = load_dataset(
        {"kind": "builtin", "name": "fashion-mnist", "limit": s["limit"]},
        data_dir=Path("/usr/share/datasets"),
        seed=SEED,
    )
    space = make_space(
        s["space"], in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    calibration = data.calibration_images(s["calibration_images"], seed=SEED)
    rng = np.random.default_rng(SEED)
    archs = [space.sample(rng) for _ in range(s["num_subnets"])]
    probe = space.build_supernet(mean=data.mean, std=data.std)
    profile = get_profile("cpu-fp32")
    shape = (data.channels, data.image_size, data.image_size)
    lats = [
        measure_latency(
            probe.extract(a), input_shape=shape, profile=profile, warmup=2, repeats=s["latency_repeats"]
        ).median_ms
        for a in archs
    ]
    reference = (0.0, 1.1 * max(lats))

    def config(epochs: int) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=s["batch_size"], lr=s["lr"])

    def score(net: Supernet) -> dict[str, Any]:
        accs = [_accuracy(net, a, data, calibration) for a in archs]
        return {
            "hypervolume": _front_hv(accs, lats, reference),
            "acc_smallest": _accuracy(net, space.smallest(), data, calibration),
            "acc_largest": _accuracy(net, space.largest(), data, calibration),
            "acc_subnets_mean": float(np.mean(accs)),
        }

    methods: dict[str, dict[str, Any]] = {}
    for schedule in METHODS:
        net, wall = _train(schedule, space, data, config(s["epochs"]))
        methods[schedule] = {"epochs": s["epochs"], "wall_s": wall, **score(net)}
        print(f"{schedule}: {methods[schedule]}", flush=True)
    standalone: dict[str, dict[str, Any]] = {}
    for which, arch in (("smallest", space.smallest()), ("largest", space.largest())):
        net, wall = _train("standalone", space, data, config(s["epochs"]), arch=arch)
        standalone[which] = {"wall_s": wall, "accuracy": _accuracy(net, arch, data, calibration)}
    ps_hv = methods["progressive-shrinking"]["hypervolume"]
    deps_curve = []
    for epochs in s["deps_epochs"]:
        net, wall = _train("deps", space, data, config(epochs))
        deps_curve.append(
            {
                "epochs": epochs,
                "wall_s": wall,
                "hypervolume": _front_hv(
                    [_accuracy(net, a, data, calibration) for a in archs], lats, reference
                ),
            }
        )
    deps_curve.append(
        {
            "epochs": s["epochs"],
            "wall_s": methods["deps"]["wall_s"],
            "hypervolume": methods["deps"]["hypervolume"],
        }
    )
    matching = [c["epochs"] for c in deps_curve if c["hypervolume"] >= ps_hv]
    deps_epochs_needed = min(matching) if matching else None
    step = _step_ratio(space, data, s["step_repeats"], s["batch_size"])

    deps = methods["deps"]
    gap_small = 100 * (standalone["smallest"]["accuracy"] - deps["acc_smallest"])
    gap_large = 100 * (standalone["largest"]["accuracy"] - deps["acc_largest"])
    epoch_ratio = None if deps_epochs_needed is None else deps_epochs_needed / s["epochs"]
    targets = {
        "deps_epochs_to_ps_hypervolume": {
            "value": epoch_ratio,
            "goal": "<= 0.5 x progressive shrinking's epochs",
            "met": epoch_ratio is not None and epoch_ratio <= 0.5,
        },
        "deps_smallest_vs_standalone_points": {
            "value": gap_small,
            "goal": "standalone - deps <= 0.5 accuracy points",
            "met": gap_small <= 0.5,
        },
        "deps_largest_vs_standalone_points": {
            "value": gap_large,
            "goal": "standalone - deps <= 0.5 accuracy points",
            "met": gap_large <= 0.5,
        },
        "elastic_step_over_static": {
            "value": step["ratio"],
            "goal": "<= 1.10",
            "met": step["ratio"] <= 1.10,
        },
    }
    results = {
        "methods": methods,
        "standalone": standalone,
        "deps_curve": deps_curve,
        "deps_epochs_to_ps_hypervolume": deps_epochs_needed,
        "reference_point": {"accuracy": reference[0], "latency_ms": reference[1]},
        "latency_ms": {"min": min(lats), "max": max(lats)},
        "train_step": step,
        "space_size": space.size(),
    }
    notes = (
        (
            "QUICK mode: tiny data and epochs, a narrow space, 20 subnets; numbers show the pipeline works, "
            "not which schedule wins. "
            if quick
            else ""
        )
        + "Accuracy is on the validation split after BN recalibration; latency is cpu-fp32, batch 1, "
        "one thread, of the deployed (BN-folded) subnet. Hypervolume over (accuracy max, latency min) "
        "with the fixed reference (0, 1.1 x slowest subnet). "
        "Standalone twins train with the same epochs and batch size."
    )
    return write_report(
        NAME,
        config={k: v for k, v in s.items()}
        | {"quick": quick, "seed": SEED, "train": config(s["epochs"]).to_dict()},
        results=results,
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[
            ("Schedules at equal epochs", [{"schedule": k, **v} for k, v in methods.items()]),
            ("Standalone twins", [{"subnet": k, **v} for k, v in standalone.items()]),
            ("DεpS hypervolume by epochs", deps_curve),
        ],
    )


def main() -> None:
    run_from_command_line(run, description=__doc__)


if __name__ == "__main__":
    main()
