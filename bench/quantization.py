"""Benchmark ``nas bench quantization``: QAT supernets with bits {4, 8, 32} on Fashion-MNIST, several seeds.

Per seed, one quantization-aware supernet and one float supernet are trained (sandwich rule).

- The same sampled architectures at 32, 8 and 4 bits (all stages) against their float twins from the
  QAT supernet and against post-training quantization of the float supernet's subnets (LSQ steps
  initialised from the data, no training: the SimQ-NAS route); the 8-bit ones also as real int8
  models (their accuracy against the fake-quantized estimate).
- Fronts on (accuracy, size_bytes) from the same NSGA-II search measured for real
  (``bench/quant_fronts.py``): float-only (float supernet), uniform 8-bit and joint arch + bits
  (QAT supernet); the first seed also measures the latency of the front members (cpu-int8 on the
  int8 model of quantized ones, cpu-fp32 for float ones).
- Per operator kind int8 against fp32 latency (``bench/quant_ops.py``, first seed).

A target counts as met only when every seed meets it (beyond the spread across seeds).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import run_from_command_line, write_report
from bench.quant_fronts import FrontPoint, front_rows, search_front, size_gain
from bench.quant_ops import block_kind_latency
from nas.data import DatasetSplits, load_dataset
from predictors import get_profile, measure_latency
from supernets import (
    SearchSpace,
    Supernet,
    calibrated_subnet,
    deployed_subnet,
    evaluate_accuracy,
    make_space,
    score_subnet,
)
from supernets.bits import with_bits
from supernets.int8 import to_int8
from supernets.training import TrainConfig, make_trainer

NAME = "quantization"
SEED = 0
BITS = [4, 8, 32]
TOLERANCE = 0.005  # "equal accuracy": within 0.5 points


def _settings(quick: bool) -> dict[str, Any]:
    space = {
        "family": "ofa-mbv3",
        "kernel_sizes": [3, 5],
        "expand_ratios": [3, 4],
        "depths": [1, 2],
        "width_mults": [0.75, 1.0],
    }
    if quick:  # a smoke run of the same code path: numbers mean nothing
        return {
            "seeds": [0, 1],
            "limit": 800,
            "epochs": 1,
            "batch_size": 64,
            "lr": 0.05,
            "subnets": 3,
            "population": 4,
            "generations": 2,
            "repeats": 3,
            "calibration_images": 128,
            "eval_images": 400,
            "space": space,
        }
    return {
        # sized for <= 35 min on 2 cores shared with other work (4000 images x 4 epochs gave float
        # subnets at 0.82); ~150 measured subnets per seed cost as much as the training
        "seeds": [0, 1, 2],
        "limit": 10000,
        "epochs": 5,
        "batch_size": 128,
        "lr": 0.1,
        "subnets": 8,
        "population": 10,
        "generations": 3,
        "repeats": 20,
        "calibration_images": 300,
        "eval_images": 3000,  # of the validation split (the search) and of the test split (the rows)
        "space": space,
    }


def _space(spec: dict[str, Any], data: DatasetSplits) -> SearchSpace:
    return make_space(
        spec, in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )


def _train(space_spec: dict[str, Any], data: DatasetSplits, s: dict[str, Any], seed: int) -> Supernet:
    space = _space(space_spec, data)
    torch.manual_seed(seed)
    net = space.build_supernet(mean=data.mean, std=data.std)
    config = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], num_random_subnets=2)
    trainer = make_trainer(
        "sandwich", supernet=net, space=space, config=config, seed=seed, arch=space.largest()
    )
    for _ in range(s["epochs"]):
        trainer.train_epoch(data.train_x, data.train_y)
    return net


def _ptq(float_net: Supernet, space_spec: dict[str, Any], data: DatasetSplits) -> Supernet:
    """The float supernet's weights in a quantization-aware copy whose steps start from the data."""
    ptq = _space(space_spec | {"bits": BITS}, data).build_supernet(mean=data.mean, std=data.std)
    missing = ptq.load_state_dict(float_net.state_dict(), strict=False).missing_keys
    assert all(k.startswith("quant.") for k in missing), missing
    return ptq


def _accuracy_rows(
    qat: Supernet,
    ptq: Supernet,
    space: SearchSpace,
    data: DatasetSplits,
    calibration: torch.Tensor,
    *,
    s: dict[str, Any],
    seed: int,
    latency: bool,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    shapes = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(s["subnets"] - 2)]
    shape = (data.channels, data.image_size, data.image_size)
    rows = []
    n = s["eval_images"]
    test_x, test_y = data.test_x[:n], data.test_y[:n]  # random archs, not selected on it: test split
    for base in shapes:
        row: dict[str, Any] = {"seed": seed, "arch": base.arch_hash}
        for bits in (32, 8, 4):
            arch = with_bits(base, [bits] * len(base.stages))
            model = deployed_subnet(qat, arch, calibration)
            row[f"qat_{bits}"] = evaluate_accuracy(model, test_x, test_y)
            if bits == 8:
                int8 = to_int8(calibrated_subnet(qat, arch, calibration), calibration)
                row["int8_real"] = evaluate_accuracy(int8, test_x, test_y)
                if latency:
                    row["ms_int8"] = measure_latency(
                        int8, input_shape=shape, profile=get_profile("cpu-int8"), repeats=s["repeats"]
                    ).median_ms
            if bits == 32 and latency:
                row["ms_fp32"] = measure_latency(
                    model, input_shape=shape, profile=get_profile("cpu-fp32"), repeats=s["repeats"]
                ).median_ms
            # bits 32: the float supernet's own subnet (the PTQ copy quantizes nothing at 32 bits)
            key = f"ptq_{bits}" if bits != 32 else "float_32"
            row[key] = score_subnet(ptq, arch, calibration, test_x, test_y)
        rows.append(row)
    return rows


def _front_latency(
    name: str,
    net: Supernet,
    front: list[FrontPoint],
    data: DatasetSplits,
    calibration: torch.Tensor,
    repeats: int,
    n: int,
) -> list[dict[str, Any]]:
    """cpu-int8 latency of the real int8 model of each quantized member, cpu-fp32 of each float one."""
    shape = (data.channels, data.image_size, data.image_size)
    rows = []
    for p in front:
        quantized = any(st.bits is not None and st.bits < 32 for st in p.arch.stages)
        row: dict[str, Any] = {"front": name, "arch": p.arch.arch_hash, "accuracy": p.accuracy}
        if quantized:
            int8 = to_int8(calibrated_subnet(net, p.arch, calibration), calibration)
            row["int8_real"] = evaluate_accuracy(int8, data.val_x[:n], data.val_y[:n])
            row["profile"], deployed = "cpu-int8", int8
        else:  # timed as deployed (BN folded), as the float subnets of the accuracy rows are
            row["profile"], deployed = "cpu-fp32", deployed_subnet(net, p.arch, calibration)
        row["ms"] = measure_latency(
            deployed, input_shape=shape, profile=get_profile(row["profile"]), repeats=repeats
        ).median_ms
        rows.append(row)
    return rows


def _fastest_within(rows: list[dict[str, Any]], accuracy: float, tolerance: float) -> float | None:
    ms = [r["ms"] for r in rows if r["accuracy"] >= accuracy - tolerance]
    return min(ms) if ms else None


def _target(per_seed: list[float], goal: str, ok: Any) -> dict[str, Any]:
    """Median over seeds, with the spread; met only if every seed meets ``goal``."""
    return {
        "value": float(np.median(per_seed)),
        "per_seed": per_seed,
        "spread": [float(min(per_seed)), float(max(per_seed))],
        "goal": goal,
        "met": bool(all(ok(v) for v in per_seed)),
    }


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    load_before = [round(v, 2) for v in os.getloadavg()]
    started = time.monotonic()
    torch.set_num_threads(1)
    s = _settings(quick)
    data = load_dataset(
        {"kind": "builtin", "name": "fashion-mnist", **({"limit": s["limit"]} if s["limit"] else {})},
        data_dir=Path("/usr/share/datasets"),
        seed=SEED,
    )
    calibration = data.calibration_images(s["calibration_images"], seed=SEED)
    space = _space(s["space"] | {"bits": BITS}, data)
    float_space = _space(s["space"], data)
    rows: list[dict[str, Any]] = []
    fronts: list[dict[str, Any]] = []
    latency_rows: list[dict[str, Any]] = []
    op_rows: list[dict[str, Any]] = []
    gains: dict[str, list[float]] = {"uniform8": [], "float": []}
    search = {"population": s["population"], "generations": s["generations"]}
    seconds: list[float] = []
    for seed in s["seeds"]:
        t0 = time.monotonic()
        qat = _train(s["space"] | {"bits": BITS}, data, s, seed)
        float_net = _train(s["space"], data, s, seed)
        ptq = _ptq(float_net, s["space"], data)
        first = seed == s["seeds"][0]
        rows += _accuracy_rows(qat, ptq, space, data, calibration, s=s, seed=seed, latency=first)
        n = s["eval_images"]
        val = (calibration, data.val_x[:n], data.val_y[:n])
        found = {
            "joint": search_front(
                qat, space, bits="joint", calibration=val[0], x=val[1], y=val[2], seed=seed, **search
            ),
            "uniform8": search_front(
                qat, space, bits=8, calibration=val[0], x=val[1], y=val[2], seed=seed, **search
            ),
            "float": search_front(
                float_net, float_space, bits=None, calibration=val[0], x=val[1], y=val[2], seed=seed, **search
            ),
        }
        for name, front in found.items():
            fronts += front_rows(name, seed, front)
        for ref in ("uniform8", "float"):
            gains[ref].append(size_gain(found[ref], found["joint"], tolerance=TOLERANCE))
        if first:
            for name, net in (("joint", qat), ("uniform8", qat), ("float", float_net)):
                latency_rows += _front_latency(
                    name, net, found[name], data, calibration, s["repeats"], s["eval_images"]
                )
            op_rows = block_kind_latency(qat, calibration, repeats=s["repeats"])
        seconds.append(round(time.monotonic() - t0, 1))
    seeds = s["seeds"]

    def per_seed(fn: Any) -> list[float]:
        return [float(np.median([fn(r) for r in rows if r["seed"] == sd])) for sd in seeds]

    drop8 = per_seed(lambda r: 100 * (r["qat_32"] - r["qat_8"]))
    drop4 = per_seed(lambda r: 100 * (r["qat_32"] - r["qat_4"]))
    qat_vs_ptq4 = per_seed(lambda r: 100 * (r["qat_4"] - r["ptq_4"]))
    gaps = {sd: [100 * abs(r["int8_real"] - r["qat_8"]) for r in rows if r["seed"] == sd] for sd in seeds}
    # the quantized front members' int8 models are run on the first seed only
    gaps[seeds[0]] += [100 * abs(r["int8_real"] - r["accuracy"]) for r in latency_rows if "int8_real" in r]
    worst_gap = [float(max(gaps[sd])) for sd in seeds]
    targets = {
        "8-bit within 0.5 points of float (median drop, points)": _target(
            drop8, "<= 0.5", lambda v: v <= 0.5
        ),
        "4-bit within 2 points of float (median drop, points)": _target(drop4, "<= 2", lambda v: v <= 2),
        "QAT ahead of PTQ at 4 bits (median, points)": _target(qat_vs_ptq4, "> 0", lambda v: v > 0),
        "joint front vs uniform-8 front: size gain at equal accuracy (+-0.5 points, x)": _target(
            gains["uniform8"], ">= 1.5", lambda v: v >= 1.5
        ),
        "joint front vs float front: size gain at equal accuracy (+-0.5 points, x)": _target(
            gains["float"], ">= 6", lambda v: v >= 6
        ),
        "real int8 vs fake-quantized, every 8-bit subnet (max |gap|, points)": _target(
            worst_gap, "<= 0.3", lambda v: v <= 0.3
        ),
    }
    best_float = max((r for r in latency_rows if r["front"] == "float"), key=lambda r: r["accuracy"])
    fastest = {
        name: _fastest_within(
            [r for r in latency_rows if r["front"] == name], best_float["accuracy"], TOLERANCE
        )
        for name in ("joint", "uniform8")
    }
    speedups = [r["ms_fp32"] / r["ms_int8"] for r in rows if "ms_int8" in r]
    faster_kinds = [r["kind"] for r in op_rows if r["ms_int8"] * (1 + r["spread_int8"]) < r["ms_fp32"]]
    slower_kinds = [r["kind"] for r in op_rows if r["ms_int8"] > r["ms_fp32"] * (1 + r["spread_fp32"])]
    notes = (
        (
            "QUICK mode: a smoke run of the full code path on tiny data; the numbers mean nothing. "
            if quick
            else ""
        )
        + "Per-architecture accuracies (the targets' rows) on the first eval_images of the test split, "
        "front accuracies (what the search selected on) on the validation split; both after BN "
        "recalibration per (arch, bits); stem and head float. "
        "Sizes are weights at their bit-widths (supernets.bits.size_bytes). Fronts: NSGA-II "
        f"({s['population']} x {s['generations']} trials) measured for real; size gain = median over "
        "the reference front's points of its size over the smallest joint-front model within 0.5 points. "
        "Latency batch 1, one thread; cpu-int8 on the real int8 model (int8 convolutions on oneDNN, "
        "float activations and residuals between them). Per operator kind: a stage's blocks at one "
        "kernel and expand ratio, fp32 against int8, timed interleaved."
    )
    return write_report(
        NAME,
        config=s | {"quick": quick, "bits": BITS},
        results={
            "load_average_1_5_15_before": load_before,
            "seconds_per_seed": seconds,
            "seconds_total": round(time.monotonic() - started, 1),
            "train_images": int(data.train_x.shape[0]),
            "eval_images": s["eval_images"],
            # one standard error of an accuracy near 0.85 on eval_images images (binomial): the noise
            # ceiling of a single accuracy; paired differences (same images) are less noisy
            "accuracy_standard_error": float(np.sqrt(0.85 * 0.15 / s["eval_images"])),
            "median_float_twin_accuracy": per_seed(lambda r: r["qat_32"]),
            "median_float_supernet_accuracy_of_ptq_archs": per_seed(lambda r: r["float_32"]),
            "median_int8_speedup_vs_fp32": float(np.median(speedups)) if speedups else None,
            "size_gain_vs_uniform8": gains["uniform8"],
            "size_gain_vs_float": gains["float"],
            "best_float_front_accuracy": best_float["accuracy"],
            "best_float_front_ms_fp32": best_float["ms"],
            "fastest_at_that_accuracy_ms": fastest,
            "kinds_int8_faster": faster_kinds,
            "kinds_int8_slower": slower_kinds,
        },
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[
            ("Per architecture (accuracy, ms)", rows),
            ("Fronts (accuracy, size_bytes)", fronts),
            ("Front members' latency (first seed)", latency_rows),
            ("Per operator kind: int8 against fp32 (first seed)", op_rows),
        ],
    )


def main() -> None:
    run_from_command_line(run, description=__doc__)


if __name__ == "__main__":
    main()
