"""Benchmark ``nas bench quantization``: one QAT supernet with bits {4, 8, 32} on Fashion-MNIST.

The same sampled architectures are evaluated at 32, 8 and 4 bits (all stages), against the float
twins from the same supernet and against post-training quantization of a float-trained supernet's
subnets (LSQ steps initialised from the data, no training: the SimQ-NAS route); the 8-bit ones are
also run as real int8 models (accuracy and ``cpu-int8`` latency against ``cpu-fp32``).
Not done yet: the joint-search front against the float-only front.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import run_from_command_line, write_report
from kernels.fuse import reparameterize_model
from nas.data import DatasetSplits, load_dataset
from predictors import get_profile, measure_latency
from supernets import Arch, Supernet, evaluate_accuracy, make_space, recalibrate_bn
from supernets.bits import with_bits
from supernets.int8 import to_int8
from supernets.training import TrainConfig, make_trainer

NAME = "quantization"
SEED = 0
BITS = [4, 8, 32]


def _settings(quick: bool) -> dict[str, Any]:
    space = {
        "family": "ofa-mbv3",
        "kernel_sizes": [3, 5],
        "expand_ratios": [3, 4],
        "depths": [1, 2],
        "width_mults": [0.75, 1.0],
    }
    if quick:
        return {
            "limit": 1200,
            "epochs": 2,
            "batch_size": 64,
            "lr": 0.05,
            "subnets": 4,
            "repeats": 5,
            "calibration_images": 256,
            "space": space,
        }
    return {
        "limit": None,
        "epochs": 10,
        "batch_size": 128,
        "lr": 0.1,
        "subnets": 20,
        "repeats": 30,
        "calibration_images": 2000,
        "space": space,
    }


def _train(space_spec: dict[str, Any], data: DatasetSplits, s: dict[str, Any]) -> Supernet:
    space = make_space(
        space_spec, in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    torch.manual_seed(SEED)
    net = space.build_supernet(mean=data.mean, std=data.std)
    config = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], num_random_subnets=2)
    trainer = make_trainer(
        "sandwich", supernet=net, space=space, config=config, seed=SEED, arch=space.largest()
    )
    for _ in range(s["epochs"]):
        trainer.train_epoch(data.train_x, data.train_y)
    return net


def _extract(net: Supernet, arch: Arch, calibration: torch.Tensor) -> torch.nn.Module:
    model = net.extract(arch)
    recalibrate_bn(model, calibration)
    return model


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    s = _settings(quick)
    data = load_dataset(
        {"kind": "builtin", "name": "fashion-mnist", **({"limit": s["limit"]} if s["limit"] else {})},
        data_dir=Path("/usr/share/datasets"),
        seed=SEED,
    )
    calibration = data.calibration_images(s["calibration_images"], seed=SEED)
    qat = _train(s["space"] | {"bits": BITS}, data, s)
    float_net = _train(s["space"], data, s)
    # PTQ: the float supernet's weights in a quantization-aware copy whose steps start from the data
    ptq = make_space(
        s["space"] | {"bits": BITS},
        in_channels=data.channels,
        num_classes=data.num_classes,
        image_size=data.image_size,
    ).build_supernet(mean=data.mean, std=data.std)
    missing = ptq.load_state_dict(float_net.state_dict(), strict=False).missing_keys
    assert all(k.startswith("quant.") for k in missing), missing
    space = make_space(
        s["space"] | {"bits": BITS},
        in_channels=data.channels,
        num_classes=data.num_classes,
        image_size=data.image_size,
    )
    rng = np.random.default_rng(SEED)
    shapes = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(s["subnets"] - 2)]
    shape = (data.channels, data.image_size, data.image_size)
    rows = []
    for base in shapes:
        row: dict[str, Any] = {"arch": base.arch_hash}
        for bits in (32, 8, 4):
            arch = with_bits(base, [bits] * len(base.stages))
            model = _extract(qat, arch, calibration)
            row[f"qat_{bits}"] = evaluate_accuracy(reparameterize_model(model.eval()), data.val_x, data.val_y)
            if bits == 8:
                int8 = to_int8(_extract(qat, arch, calibration), calibration)
                row["int8_real"] = evaluate_accuracy(int8, data.val_x, data.val_y)
                row["ms_int8"] = measure_latency(
                    int8, input_shape=shape, profile=get_profile("cpu-int8"), repeats=s["repeats"]
                ).median_ms
            if bits == 32:
                row["ms_fp32"] = measure_latency(
                    model, input_shape=shape, profile=get_profile("cpu-fp32"), repeats=s["repeats"]
                ).median_ms
            else:
                ptq_model = _extract(ptq, arch, calibration)
                row[f"ptq_{bits}"] = evaluate_accuracy(
                    reparameterize_model(ptq_model.eval()), data.val_x, data.val_y
                )
        rows.append(row)
    drop8 = float(np.median([100 * (r["qat_32"] - r["qat_8"]) for r in rows]))
    drop4 = float(np.median([100 * (r["qat_32"] - r["qat_4"]) for r in rows]))
    qat_vs_ptq4 = float(np.median([100 * (r["qat_4"] - r["ptq_4"]) for r in rows]))
    real_gap = float(np.median([100 * abs(r["int8_real"] - r["qat_8"]) for r in rows]))
    speedup = float(np.median([r["ms_fp32"] / r["ms_int8"] for r in rows]))
    targets = {
        "8-bit within 0.5 points of float (median drop, points)": {
            "value": drop8,
            "goal": "<= 0.5",
            "met": drop8 <= 0.5,
        },
        "4-bit within 2 points of float (median drop, points)": {
            "value": drop4,
            "goal": "<= 2",
            "met": drop4 <= 2,
        },
        "QAT ahead of PTQ at 4 bits (median, points)": {
            "value": qat_vs_ptq4,
            "goal": "> 0",
            "met": qat_vs_ptq4 > 0,
        },
        "real int8 vs fake-quantized 8-bit (median |gap|, points)": {
            "value": real_gap,
            "goal": "<= 0.3",
            "met": real_gap <= 0.3,
        },
    }
    notes = (
        (
            "QUICK mode: tiny data and 2 epochs; numbers show the pipeline works, not the method's quality. "
            if quick
            else ""
        )
        + "Accuracy on the validation split after BN recalibration per (arch, bits); all stages at the "
        "same bits; stem and head float. Latency batch 1, one thread; cpu-int8 on the real int8 model "
        "(int8 convs, float activations and residuals between them, so it can be slower than fp32 "
        "here). Every block is mbconv in this space: no per-operator split. Not done: joint-search "
        "front vs float-only front."
    )
    return write_report(
        NAME,
        config=s | {"quick": quick, "seed": SEED, "bits": BITS},
        results={
            "median_int8_speedup_vs_fp32": speedup,
            "drop8": drop8,
            "drop4": drop4,
            "qat_minus_ptq_4": qat_vs_ptq4,
        },
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[("Per architecture (accuracy, ms)", rows)],
    )


def main() -> None:
    run_from_command_line(run, description=__doc__)


if __name__ == "__main__":
    main()
