"""Real measurement of subnets: accuracy after BN recalibration, latency on each hardware profile."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from nas.pipeline.state import JobState, SubnetRecord
from nas.store import crud
from predictors import get_profile
from supernets import Arch
from supernets.bits import is_float
from supernets.evaluate import deployed_subnet, evaluate_accuracy

Progress = Callable[[int, int], None]
Deployed = Callable[[SubnetRecord, nn.Module], None]


def deploy_subnet(state: JobState, arch: Arch) -> nn.Module:
    """The job's static subnet for ``arch`` (:func:`supernets.deployed_subnet` of the trained supernet)."""
    return deployed_subnet(state.trained_supernet(), arch, state.calibration_images)


def _int8_model(state: JobState, arch: Arch, model: nn.Module) -> nn.Module:
    """The real int8 model of a subnet with quantized stages (its learned steps); others as they are.

    A subnet without integer stages is quantized after training by the profile (FX, as before).
    """
    if all(is_float(s.bits) for s in arch.stages):
        return model
    from supernets.int8 import to_int8

    return to_int8(model, state.calibration_images)


def measure_subnets(
    state: JobState,
    archs: list[Arch],
    *,
    source: str,
    stage: str,
    test_split: bool = False,
    progress: Progress | None = None,
    on_deployed: Deployed | None = None,
) -> list[SubnetRecord]:
    """Measure each arch for real and add it to the job's pool; what is already known is not redone.

    Accuracy and latency the pool (or, for latency, the shared measurement table) already
    holds are reused, and a subnet with nothing new is neither deployed nor written again.
    ``progress(done, total)`` reports each subnet (default: the ``stage``'s progress over
    ``archs``); ``on_deployed(record, model)`` gets every subnet that was deployed here.
    """
    ctx = state.ctx
    profiles = list(ctx.spec.hardware)
    splits = state.splits
    pool = state.pool
    report = progress or (lambda done, total: ctx.progress(stage, done, total))
    records: list[SubnetRecord] = []
    unique = list({a.arch_hash: a for a in archs}.values())
    for i, arch in enumerate(unique):
        ctx.check_cancel()
        known = pool.get(arch.arch_hash)
        acc_val: float | None
        acc_test: float | None
        if known is not None:
            latency = dict(known.latency_ms)
            acc_val, acc_test = known.accuracy_val, known.accuracy_test
        else:
            latency = state.stored_latency(arch, profiles)
            acc_val = acc_test = None
        need_val = acc_val is None
        need_test = test_split and acc_test is None
        missing = [p for p in profiles if p not in latency]
        if not (need_val or need_test or missing):
            assert known is not None
            records.append(known)
            report(i + 1, len(unique))
            continue
        model = deploy_subnet(state, arch)
        with torch.inference_mode():
            if need_val:
                acc_val = evaluate_accuracy(model, splits.val_x, splits.val_y)
            if need_test:
                acc_test = evaluate_accuracy(model, splits.test_x, splits.test_y)
        mhash = state.measurement_hash(arch)
        input_shape = (splits.channels, splits.image_size, splits.image_size)  # the profile sets the batch
        for profile in missing:
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
        record = state.record(
            subnet_id=sid,
            arch=arch,
            accuracy_val=acc_val,
            latency_ms=latency,
            accuracy_test=acc_test,
            predicted=known.predicted if known is not None else None,
        )
        pool[arch.arch_hash] = record
        records.append(record)
        if on_deployed is not None:
            on_deployed(record, model)
        report(i + 1, len(unique))
    return records
