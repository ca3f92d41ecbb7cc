"""Timing for ``nas bench kernels``: interleaved variants through the measurement protocol, and peaks.

The peaks are measured the way a block reaches them (the best of several GEMM shapes and of
oneDNN's convolution in both layouts for FLOP/s; the best of streaming copies and adds from
L2-sized to far beyond the caches for bandwidth), so the roofline built on them is a bound.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from predictors.measure import K, time_variants

LAYOUTS = ("nchw", "channels_last")


def inputs_for(channels: int, hw: int, batch: int, gen: torch.Generator, layout: str) -> torch.Tensor:
    x = torch.randn(batch, channels, hw, hw, generator=gen)
    return x.to(memory_format=torch.channels_last) if layout == "channels_last" else x


def time_interleaved(
    runs: dict[K, Callable[[], object]],
    *,
    budget_s: float,
    max_repeats: int,
    warmup: int = 2,
    min_repeats: int = 5,
) -> dict[K, dict[str, float]]:
    """Median and spread (ms) of each run, timed interleaved by the measurement protocol.

    At least ``min_repeats`` rounds, then until ``budget_s`` per run has passed, at most ``max_repeats``.
    """
    stats = time_variants(
        runs,
        warmup=warmup,
        repeats=min_repeats,
        min_time_s=budget_s * len(runs),
        max_rounds=max_repeats,
    )
    return {
        key: {"median_ms": st.median_ms, "p10_ms": st.p10_ms, "p90_ms": st.p90_ms, "repeats": float(st.n)}
        for key, st in stats.items()
    }


# (M, K, N) of the GEMM peak: square ones and the shapes of the blocks' 1x1 convolutions at batch 64.
GEMM_SHAPES = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (12544, 96, 384), (3136, 384, 96)]
# (batch, in, out, kernel, hw, groups) of the convolution peak: the blocks' dense layers at batch 64.
CONV_SHAPES = [
    (64, 96, 384, 1, 14, 1),
    (64, 384, 96, 1, 7, 1),
    (64, 24, 96, 3, 14, 1),
    (64, 96, 96, 3, 14, 1),
    (64, 384, 384, 5, 7, 384),
]
# Float32 elements of the streaming tests: in L2, in the last-level cache, far beyond it.
STREAM_SIZES = [2**17, 2**21, 2**25]


def measure_peaks(*, quick: bool) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """This CPU's float32 FLOP/s and bandwidth peaks on the benchmark's thread count, and each test.

    A peak is the best of its tests (GEMMs and convolutions; copies and adds), so a block that
    reaches it runs as fast as the machine's best kernels do on this thread count.
    """
    budget, reps = (0.2, 10) if quick else (0.5, 30)
    gen = torch.Generator().manual_seed(0)
    flop_runs: dict[str, tuple[Callable[[], object], float]] = {}
    for m, k, n in GEMM_SHAPES:
        a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
        flop_runs[f"gemm {m}x{k}x{n}"] = (functools.partial(torch.mm, a, b), 2.0 * m * k * n)
    for batch, cin, cout, ks, hw, groups in CONV_SHAPES:
        w = torch.randn(cout, cin // groups, ks, ks, generator=gen)
        flops = 2.0 * batch * cout * (cin // groups) * ks * ks * hw * hw
        for layout in ("nchw", "channels_last"):
            x = inputs_for(cin, hw, batch, gen, layout)
            wl = w.to(memory_format=torch.channels_last) if layout == "channels_last" else w
            fn = functools.partial(F.conv2d, x, wl, padding=ks // 2, groups=groups)
            flop_runs[f"conv2d {cin}->{cout} k{ks} {hw}x{hw} g{groups} b{batch} {layout}"] = (fn, flops)
    byte_runs: dict[str, tuple[Callable[[], object], float]] = {}
    for size in STREAM_SIZES:
        src, other, dst = (torch.randn(size, generator=gen) for _ in range(3))
        mib = size * 4 / 2**20
        byte_runs[f"copy {mib:g} MiB"] = (functools.partial(dst.copy_, src), 2.0 * 4 * size)
        byte_runs[f"add {mib:g} MiB"] = (functools.partial(torch.add, src, other, out=dst), 3.0 * 4 * size)
    tests: list[dict[str, Any]] = []
    with torch.inference_mode():
        for unit, runs in (("gflops", flop_runs), ("gbs", byte_runs)):
            timings = time_interleaved(
                {name: fn for name, (fn, _) in runs.items()}, budget_s=budget, max_repeats=reps, warmup=1
            )
            for name, (_, work) in runs.items():
                tests.append({"test": name, unit: round(work / (timings[name]["median_ms"] * 1e6), 2)})
        # Fixed cost of one small call: a depthwise conv on 12 channels and a 1x1 conv, both at 14x14.
        x_dw, w_dw = torch.randn(1, 12, 14, 14), torch.randn(12, 1, 3, 3)
        x_pw, w_pw = torch.randn(1, 24, 14, 14), torch.randn(96, 24, 1, 1)
        small = time_interleaved(
            {
                "dw": lambda: F.conv2d(x_dw, w_dw, padding=1, groups=12),
                "pw": lambda: F.conv2d(x_pw, w_pw),
            },
            budget_s=0.3,
            max_repeats=200,
        )

    def best(prefix: str, unit: str) -> float:
        return max(t[unit] for t in tests if t["test"].startswith(prefix))

    peaks = {
        "small_depthwise_call_us": small["dw"]["median_ms"] * 1e3,
        "small_pointwise_call_us": small["pw"]["median_ms"] * 1e3,
        "matmul_gflops": best("gemm", "gflops"),
        "conv_gflops": best("conv2d", "gflops"),
        "copy_gbs": best("copy", "gbs"),
        "add_gbs": best("add", "gbs"),
    }
    peaks["peak_gflops"] = max(peaks["matmul_gflops"], peaks["conv_gflops"])
    peaks["peak_gbs"] = max(peaks["copy_gbs"], peaks["add_gbs"])
    return peaks, tests
