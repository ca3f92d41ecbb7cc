"""Per-operator-kind int8 against fp32 latency: which blocks int8 kernels speed up here, which they slow.

A block kind is one stage's blocks (their activation and squeeze-excite are the stage's) at one
kernel size and expand ratio. Its float form (BN folded) and its int8 form (``supernets.int8``,
the learned steps) run on the same input, batch 1, one thread, warmed up and timed interleaved
with the measurement protocol's ``time_variants``, so drift in machine speed hits both alike.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any

import torch
from torch import nn

from predictors import pinned_threads
from predictors.measure import time_variants
from supernets import Arch, Supernet, calibrated_subnet, deployed_subnet
from supernets.bits import with_bits
from supernets.int8 import to_int8

FIRST_BLOCK = 2  # an extracted ofa-mbv3 subnet is [preprocess, stem, blocks..., head, pool, flatten, fc]


def _at(arch: Arch, stage: int, kernel: int, expand: float) -> Arch:
    """``arch`` with every block of ``stage`` at ``kernel`` and ``expand``."""
    stages = list(arch.stages)
    blocks = tuple(
        dataclasses.replace(b, kernel_size=kernel, expand_ratio=expand) for b in stages[stage].blocks
    )
    stages[stage] = dataclasses.replace(stages[stage], blocks=blocks)
    return dataclasses.replace(arch, stages=tuple(stages))


def block_kind_latency(
    net: Supernet, calibration: torch.Tensor, *, repeats: int, warmup: int = 5
) -> list[dict[str, Any]]:
    """One row per (stage, kernel, expand): fp32 and int8 ms of that stage's blocks and their ratio."""
    space = net.space  # type: ignore[attr-defined]
    base = space.largest()
    n = len(base.stages)
    rows = []
    for i, k, e in itertools.product(range(n), space.kernel_sizes, space.expand_ratios):
        arch = _at(base, i, k, e)
        fp32 = deployed_subnet(net, with_bits(arch, [32] * n), calibration).cpu()
        quantized = with_bits(arch, [8 if j == i else 32 for j in range(n)])
        int8 = to_int8(calibrated_subnet(net, quantized, calibration), calibration)
        start = FIRST_BLOCK + sum(s.depth for s in arch.stages[:i])
        end = start + arch.stages[i].depth
        with torch.inference_mode():
            x = nn.Sequential(*list(fp32)[:start])(calibration[:1].cpu())
        fp32_stage, int8_stage = nn.Sequential(*list(fp32)[start:end]), nn.Sequential(*list(int8)[start:end])
        with pinned_threads(1), torch.inference_mode():
            stats = time_variants(
                {"fp32": functools.partial(fp32_stage, x), "int8": functools.partial(int8_stage, x)},
                warmup=warmup,
                repeats=repeats,
            )
        layout = space.stages[i]
        rows.append(
            {
                "kind": f"stage{i} {layout.act}{'+se' if layout.se else ''} k{k} e{e:g}",
                "input": "x".join(str(d) for d in x.shape[1:]),
                "ms_fp32": stats["fp32"].median_ms,
                "ms_int8": stats["int8"].median_ms,
                "int8_over_fp32": stats["int8"].median_ms / stats["fp32"].median_ms,
                "spread_fp32": stats["fp32"].spread,
                "spread_int8": stats["int8"].spread,
            }
        )
    return rows
