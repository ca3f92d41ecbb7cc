"""``nas bench kernels``: latency of every registered block against this CPU's roofline.

For each block and stage shape: median latency at batch 1 and 64 of the
training form (static, BatchNorm and branches separate, eval mode) and the
deploy form (re-parameterised), eager and ``torch.compile``-d, NCHW and
channels_last; achieved GFLOP/s and GB/s against the peaks measured in the same
run the way a block reaches them: the best of several GEMM shapes and of oneDNN's
convolution (``conv2d``, both layouts) for FLOP/s, the best of streaming copies and
adds at several sizes for bandwidth. All timing is on one thread
(``torch.set_num_threads(1)``) through ``predictors.measure``'s protocol
(:func:`~predictors.measure.time_variants`): the layouts, forms and modes of one
block and batch are timed interleaved, round after round, so drift hits all alike.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.common import run_from_command_line, write_report
from bench.kernel_timing import LAYOUTS, inputs_for, measure_peaks, time_interleaved
from kernels import BlockConfig, BlockCost, ConvBNAct, InceptionDWConv, get_block, list_blocks
from kernels.compiled import compile_deploy, deploy, to_channels_last
from kernels.inception_dw import MERGE_MAX_PIXELS
from predictors.measure import pinned_threads

NAME = "kernels"
THREADS = 1
MULTI_BRANCH = ("inception_dw", "large_kernel_dw")
# Kernel size per block for small (Fashion-MNIST) and large (ImageNet) stages; inception's is the band.
KERNELS = {
    "small": {"mbconv": 5, "fused_mbconv": 3, "inception_dw": 11, "large_kernel_dw": 7},
    "large": {"mbconv": 5, "fused_mbconv": 3, "inception_dw": 11, "large_kernel_dw": 13},
}
EXPAND = 4


def _shapes(quick: bool) -> list[dict[str, Any]]:
    small = [(24, 14), (96, 7)] if quick else [(24, 14), (48, 14), (48, 7), (96, 7)]
    shapes: list[dict[str, Any]] = [
        {"name": f"fmnist-c{c}-{hw}x{hw}", "channels": c, "hw": hw, "size": "small", "batches": [1, 64]}
        for c, hw in small
    ]
    shapes.append(
        {
            "name": "imagenet-c96-56x56",
            "channels": 96,
            "hw": 56,
            "size": "large",
            "batches": [1] if quick else [1, 64],
        }
    )
    return shapes


def batch_bytes(cost: BlockCost, batch: int) -> int:
    """Bytes a batch moves: activations per image, weights once."""
    return batch * (cost.bytes_moved - 4 * cost.params) + 4 * cost.params


def _row(
    *,
    shape: str,
    block: str,
    batch: int,
    form: str,
    mode: str,
    layout: str,
    timing: dict[str, float],
    cost: BlockCost,
    peaks: dict[str, float],
) -> dict[str, Any]:
    ms = timing["median_ms"]
    flops = batch * cost.flops
    nbytes = batch_bytes(cost, batch)
    bound_ms = max(flops / (peaks["peak_gflops"] * 1e6), nbytes / (peaks["peak_gbs"] * 1e6))
    return {
        "shape": shape,
        "block": block,
        "batch": batch,
        "form": form,
        "mode": mode,
        "layout": layout,
        "median_ms": round(ms, 4),
        "p90_ms": round(timing["p90_ms"], 4),
        "gflops": round(flops / (ms * 1e6), 3),
        "gbs": round(nbytes / (ms * 1e6), 3),
        "flop_share": round(flops / (ms * 1e6) / peaks["peak_gflops"], 4),
        "bw_share": round(nbytes / (ms * 1e6) / peaks["peak_gbs"], 4),
        "roofline_ms": round(bound_ms, 4),
        "gap": round(ms / bound_ms, 2),
    }


def _randomize_bn(module: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_var is not None and m.running_mean is not None:
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))


def bench_blocks(
    shapes: list[dict[str, Any]], peaks: dict[str, float], *, quick: bool, gen: torch.Generator
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Eager and compiled latency rows for every block and shape; max |deploy - training| per block."""
    rows: list[dict[str, Any]] = []
    max_diff: dict[str, float] = {}
    for si, shape in enumerate(shapes):
        c, hw = shape["channels"], shape["hw"]
        for name in list_blocks():
            k = KERNELS[shape["size"]].get(name, 3)
            elastic = get_block(name)(BlockConfig(c, c, k, EXPAND, 1))
            _randomize_bn(elastic, gen)
            training = elastic.extract().eval()
            deployed = deploy(training)
            cost = elastic.cost((hw, hw))
            with torch.inference_mode():
                x = inputs_for(c, hw, 2, gen, "nchw")
                diff = (training(x) - deployed(x)).abs().max().item()
            max_diff[name] = max(max_diff.get(name, 0.0), diff)
            forms = {("training", "nchw"): training, ("deploy", "nchw"): deployed}
            for form in ("training", "deploy"):
                forms[form, "channels_last"] = to_channels_last(copy.deepcopy(forms[form, "nchw"]))
            # torch.compile is slow to build; quick mode compiles only on the first small shape.
            compile_here = shape["size"] == "small" and (si == 0 or not quick)
            for batch in shape["batches"]:
                budget = 0.4 if quick else 1.5
                reps = 30 if batch == 1 else (10 if quick else 30)
                # ImageNet-sized stages at batch 64 take seconds per call: fewer calls there.
                heavy = shape["size"] == "large" and batch > 1
                warm, least = (1, 3) if heavy else (2, 5)
                inputs = {layout: inputs_for(c, hw, batch, gen, layout) for layout in LAYOUTS}
                runs: dict[tuple[str, str, str], Callable[[], object]] = {
                    (form, "eager", layout): functools.partial(forms[form, layout], inputs[layout])
                    for layout in LAYOUTS
                    for form in ("training", "deploy")
                }
                if compile_here:
                    # Every block shares InvertedBottleneck.forward; a fresh Dynamo cache keeps the
                    # compiles from counting against the recompile limit (which falls back to eager).
                    torch._dynamo.reset()
                    for layout in LAYOUTS:
                        compiled = compile_deploy(training, channels_last=layout == "channels_last")
                        runs["deploy", "compiled", layout] = functools.partial(compiled, inputs[layout])
                with torch.inference_mode():
                    timings = time_interleaved(
                        runs, budget_s=budget, max_repeats=reps, warmup=warm, min_repeats=least
                    )
                rows.extend(
                    _row(
                        shape=shape["name"],
                        block=name,
                        batch=batch,
                        form=form,
                        mode=mode,
                        layout=layout,
                        timing=timings[form, mode, layout],
                        cost=cost,
                        peaks=peaks,
                    )
                    for form, mode, layout in runs
                )
    return rows, max_diff


def bench_inception_vs_dw7(
    shapes: list[dict[str, Any]], *, quick: bool, gen: torch.Generator
) -> list[dict[str, Any]]:
    """Deployed Inception depthwise mixer against a deployed 7x7 depthwise conv, equal hidden channels."""
    rows = []
    for shape in shapes:
        ch, hw = shape["channels"] * EXPAND, shape["hw"]
        inception = InceptionDWConv(ch, band_kernel=KERNELS[shape["size"]]["inception_dw"])
        dw7 = ConvBNAct(ch, ch, 7, groups=ch)
        for m in (inception, dw7):
            _randomize_bn(m, gen)
        inception_d, dw7_d = deploy(inception), deploy(dw7)
        for batch in shape["batches"]:
            x = inputs_for(ch, hw, batch, gen, "nchw")
            reps = 30 if batch == 1 else 10
            with torch.inference_mode():
                timed = time_interleaved(
                    {"inception": functools.partial(inception_d, x), "dw7": functools.partial(dw7_d, x)},
                    budget_s=0.4 if quick else 1.5,
                    max_repeats=reps,
                )
            t_inc, t_dw7 = timed["inception"], timed["dw7"]
            rows.append(
                {
                    "shape": shape["name"],
                    "hidden_channels": ch,
                    "batch": batch,
                    "inception_ms": round(t_inc["median_ms"], 4),
                    "dw7x7_ms": round(t_dw7["median_ms"], 4),
                    "speedup": round(t_dw7["median_ms"] / t_inc["median_ms"], 3),
                }
            )
    return rows


def _ratio_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deploy over training latency (eager) for every block, shape, batch and layout."""
    training = {
        (r["shape"], r["block"], r["batch"], r["layout"]): r["median_ms"]
        for r in rows
        if r["form"] == "training" and r["mode"] == "eager"
    }
    return [
        {
            "shape": r["shape"],
            "block": r["block"],
            "batch": r["batch"],
            "layout": r["layout"],
            "training_ms": training[key],
            "deploy_ms": r["median_ms"],
            "deploy_over_training": round(r["median_ms"] / training[key], 3),
        }
        for r in rows
        if r["form"] == "deploy"
        and r["mode"] == "eager"
        and (key := (r["shape"], r["block"], r["batch"], r["layout"])) in training
    ]


def _targets(rows: list[dict[str, Any]], mixer_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    def median_ms(shape: str, block: str, batch: int, form: str) -> float:
        return next(
            r["median_ms"]
            for r in rows
            if r["shape"] == shape
            and r["block"] == block
            and r["batch"] == batch
            and r["form"] == form
            and r["mode"] == "eager"
            and r["layout"] == "nchw"
        )

    ratios = {
        f"{r['shape']}/{r['block']}": median_ms(r["shape"], r["block"], 1, "deploy")
        / median_ms(r["shape"], r["block"], 1, "training")
        for r in rows
        if r["block"] in MULTI_BRANCH
        and r["batch"] == 1
        and r["form"] == "deploy"
        and r["mode"] == "eager"
        and r["layout"] == "nchw"
    }
    worst_ratio = max(ratios, key=ratios.__getitem__)
    speedups = [r for r in mixer_rows if r["batch"] == 1]
    slowest = min(speedups, key=lambda r: r["speedup"])
    deploy64 = [r for r in rows if r["batch"] == 64 and r["form"] == "deploy"]
    # The best layout/mode per (shape, block) is what a deployment would use.
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in deploy64:
        key = (r["shape"], r["block"])
        if key not in best or r["gap"] < best[key]["gap"]:
            best[key] = r
    worst_gap = max(best.values(), key=lambda r: r["gap"]) if best else None
    beating = [
        f"{r['shape']}/{r['block']}/b{r['batch']}/{r['form']}/{r['mode']}/{r['layout']}"
        for r in rows
        if r["gap"] < 1
    ]
    return {
        "rows_faster_than_roofline": {
            "value": len(beating),
            "goal": "0: the roofline is a bound"
            + (f" (beating it: {', '.join(beating)})" if beating else ""),
            "met": not beating,
        },
        "deploy_vs_training_latency_b1_multibranch": {
            "value": round(ratios[worst_ratio], 3),
            "goal": f"<= 0.7 for every multi-branch block (worst: {worst_ratio})",
            "met": ratios[worst_ratio] <= 0.7,
        },
        "inception_dw_speedup_vs_dw7x7_b1": {
            "value": slowest["speedup"],
            "goal": f">= 1.2 at every shape (worst: {slowest['shape']})",
            "met": slowest["speedup"] >= 1.2,
        },
        "deploy_latency_over_roofline_b64": {
            "value": worst_gap["gap"] if worst_gap else None,
            "goal": "<= 3 for every deploy block, best of layout/mode (worst: "
            + (f"{worst_gap['shape']}/{worst_gap['block']})" if worst_gap else "none)"),
            "met": bool(worst_gap) and worst_gap["gap"] <= 3,  # type: ignore[index]
        },
    }


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Run the kernel benchmark and write ``<out_dir>/kernels.json`` and ``.md``."""
    gen = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    shapes = _shapes(quick)
    with pinned_threads(THREADS):
        peaks, peak_tests = measure_peaks(quick=quick)
        rows, max_diff = bench_blocks(shapes, peaks, quick=quick, gen=gen)
        mixer_rows = bench_inception_vs_dw7(shapes, quick=quick, gen=gen)
    targets = _targets(rows, mixer_rows)
    gap_rows = [r for r in rows if r["form"] == "deploy" and r["batch"] == 64]
    ratio_rows = _ratio_rows(rows)
    results = {
        "peaks": peaks,
        "peak_tests": peak_tests,
        "max_abs_diff_deploy_vs_training": max_diff,
        "latency": rows,
        "inception_vs_dw7x7": mixer_rows,
        "deploy_over_training": ratio_rows,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    notes = (
        f"One thread (torch.set_num_threads({THREADS})). Costs (FLOPs, bytes) are the deploy form's for "
        "every row, so a training-form row's GFLOP/s is useful work per second. Roofline bound = "
        "max(FLOPs / FLOP peak, bytes / bandwidth peak) with bytes of an unfused implementation "
        "(weights once per batch). FLOP peak = best of the GEMM shapes and oneDNN convolutions (both "
        f"layouts) in 'Peaks' ({peaks['peak_gflops']:.1f} GFLOP/s); bandwidth peak = best of copies and "
        f"adds from L2-sized to far beyond the caches ({peaks['peak_gbs']:.1f} GB/s). A row with gap < 1 "
        "would outrun the machine's best measured kernels (possible only where a compiled form fuses away "
        "bytes the unfused count includes); the target 'rows_faster_than_roofline' counts such rows. "
        "The forms, modes and layouts of one block and batch are timed interleaved "
        "(predictors.measure.time_variants). Training form = static block with BatchNorm and branches "
        "separate, eval "
        "mode. "
        f"A small depthwise conv call costs {peaks['small_depthwise_call_us']:.0f} us here against "
        f"{peaks['small_pointwise_call_us']:.0f} us for a 1x1 conv of similar size, so at batch 1 on "
        "7x7..14x14 maps latency follows the number of depthwise calls, not FLOPs: the Inception mixer's "
        "training form makes three (square, wide, tall), a 7x7 depthwise one. The Inception deploy form "
        f"therefore runs inputs of up to {MERGE_MAX_PIXELS} pixels (batch x H x W) as one depthwise call "
        "with a merged k x k kernel (about 10x the multiply-adds of the branches) and larger inputs on "
        "the three branches; its FLOP counts here are the branches'. "
        + (
            "Quick mode: fewer shapes, ImageNet stage at batch 1 only, torch.compile on the first shape only."
            if quick
            else ""
        )
    )
    summary = [
        {
            k: r[k]
            for k in (
                "shape",
                "block",
                "batch",
                "form",
                "mode",
                "layout",
                "median_ms",
                "gflops",
                "gbs",
                "flop_share",
                "bw_share",
                "roofline_ms",
                "gap",
            )
        }
        for r in rows
    ]
    return write_report(
        NAME,
        config={
            "quick": quick,
            "threads": THREADS,
            "expand_ratio": EXPAND,
            "kernels": KERNELS,
            "shapes": shapes,
            "blocks": list_blocks(),
        },
        results=results,
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[
            ("Peaks (one thread; the best of each kind is the bound)", peak_tests),
            ("Efficiency gap at batch 64 (deploy form)", gap_rows),
            ("Inception depthwise vs 7x7 depthwise (mixers, deploy form)", mixer_rows),
            ("Deploy form over training form (eager)", ratio_rows),
            ("All latencies", summary),
        ],
    )


if __name__ == "__main__":
    run_from_command_line(run, description=__doc__)
