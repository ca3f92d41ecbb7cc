"""Real measurement of subnets: accuracy after BN recalibration, latency on each hardware profile."""

from __future__ import annotations

import copy

import torch
from torch import nn

from kernels.fuse import reparameterize_model
from nas.pipeline.state import JobState, SubnetRecord
from nas.store import crud
from predictors import get_profile
from supernets import Arch
from supernets.bits import is_float, size_bytes
from supernets.bn import recalibrate_bn
from supernets.evaluate import evaluate_accuracy


def deploy_subnet(state: JobState, arch: Arch) -> nn.Module:
    """The static subnet for ``arch``: extracted, BatchNorm recalibrated, then folded for deployment."""
    model = state.trained_supernet().extract(arch)
    recalibrate_bn(model, state.calibration_images)
    model.eval()
    return reparameterize_model(model)


def _int8_model(state: JobState, arch: Arch, model: nn.Module) -> nn.Module:
    """The real int8 model of a subnet with quantized stages (its learned steps); others as they are.

    A subnet without integer stages is quantized after training by the profile (FX, as before).
    """
    if all(is_float(s.bits) for s in arch.stages):
        return model
    from supernets.int8 import to_int8

    return to_int8(model, state.calibration_images)


def measure_subnets(
    state: JobState, archs: list[Arch], *, source: str, stage: str, test_split: bool = False
) -> list[SubnetRecord]:
    """Measure each arch for real (what is already measured is read back, not measured again)."""
    ctx = state.ctx
    profiles = list(ctx.spec.hardware)
    splits = state.splits
    records: list[SubnetRecord] = []
    unique = list({a.arch_hash: a for a in archs}.values())
    for i, arch in enumerate(unique):
        ctx.check_cancel()
        mhash = state.measurement_hash(arch)
        with ctx.db.read() as s:
            row = crud.get_subnet_by_hash(s, job_id=ctx.job_id, arch_hash=arch.arch_hash)
            cached = {
                p: crud.get_measurement(
                    s, profile=p, arch_hash=mhash, resolution=arch.resolution, batch=get_profile(p).batch_size
                )
                for p in profiles
            }
            known_val = row.accuracy_val if row is not None else None
            known_test = row.accuracy_test if row is not None else None
            latency = {p: m.median_ms for p, m in cached.items() if m is not None}
        need_val = known_val is None
        need_test = test_split and known_test is None
        missing = [p for p in profiles if p not in latency]
        model: nn.Module | None = None
        if need_val or need_test or missing:
            model = deploy_subnet(state, arch)
        with torch.inference_mode():
            acc_val = (
                evaluate_accuracy(model, splits.val_x, splits.val_y) if need_val and model else known_val
            )
            acc_test = (
                evaluate_accuracy(model, splits.test_x, splits.test_y) if need_test and model else known_test
            )
        input_shape = (splits.channels, splits.image_size, splits.image_size)  # the profile sets the batch
        for profile in missing:
            assert model is not None
            timed = _int8_model(state, arch, model) if get_profile(profile).precision == "int8" else model
            stats = ctx.measure_latency([(copy.deepcopy(timed), input_shape)], profile)[0]
            with ctx.db.session() as s:
                crud.put_measurement(
                    s,
                    profile=profile,
                    arch_hash=mhash,
                    resolution=arch.resolution,
                    batch=get_profile(profile).batch_size,
                    stats=stats.to_dict(),
                    env={"space_key": state.space_key},
                )
            latency[profile] = stats.median_ms
        cost = state.space.total_cost(arch)
        assert acc_val is not None
        with ctx.db.session() as s:
            sub = crud.upsert_subnet(
                s,
                job_id=ctx.job_id,
                arch_hash=arch.arch_hash,
                arch=arch.to_dict(),
                params=cost.params,
                flops=cost.flops,
                accuracy_val=acc_val,
                accuracy_test=acc_test,
                source=source,
                measurement_key=mhash,
            )
            sid = sub.id
        records.append(
            SubnetRecord(
                sid,
                arch,
                float(acc_val),
                latency,
                cost.params,
                cost.macs,
                None if acc_test is None else float(acc_test),
                size_bytes=size_bytes(state.space, arch),
            )
        )
        ctx.progress(stage, i + 1, len(unique))
    return records
