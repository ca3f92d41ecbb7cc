"""The one latency measurement protocol: deploy form, pinned threads, warm-up, repeats, spread."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from kernels.fuse import reparameterize_model
from predictors.hardware import HardwareProfile, int8_engine
from predictors.reference import reference_clock

K = TypeVar("K", bound=Hashable)

# Calibration batches for int8: enough to set activation ranges, cheap next to timing.
_CALIBRATION_BATCHES = 4
# Wall time after which a measurement stops retrying for a calmer spread (see measure_latency).
DEFAULT_MAX_TIME_S = 5.0


@dataclass(frozen=True)
class LatencyStats:
    """Summary of the timed runs of one measurement, in milliseconds."""

    median_ms: float
    mean_ms: float
    std_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    n: int
    spread: float
    attempts: int = 1
    # Reference-normalised measurements (see predictors.reference): the raw median of the
    # model's own runs, the reference's median beside them, and its calibrated baseline.
    raw_median_ms: float | None = None
    reference_ms: float | None = None
    baseline_ms: float | None = None
    # Where it was timed (hostname, CPU model, pid and, on Ray, the node's id and address); the
    # store keeps it as the measurement's ``env.node``.
    node: dict[str, Any] | None = None

    @property
    def slowdown(self) -> float | None:
        """How much slower the machine ran than its calibrated best while measuring (1.0 = best)."""
        if self.reference_ms is None or not self.baseline_ms:
            return None
        return self.reference_ms / self.baseline_ms

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], *, attempts: int = 1) -> LatencyStats:
        """Summarise per-run times (ms)."""
        arr = np.asarray(samples_ms, dtype=np.float64)
        if arr.size == 0:
            raise ValueError("LatencyStats needs at least one timed run")
        median = float(np.median(arr))
        p10, p90 = (float(v) for v in np.percentile(arr, [10, 90]))
        return cls(
            median_ms=median,
            mean_ms=float(arr.mean()),
            std_ms=float(arr.std()),
            p10_ms=p10,
            p90_ms=p90,
            min_ms=float(arr.min()),
            n=int(arr.size),
            spread=(p90 - p10) / median if median > 0 else 0.0,
            attempts=attempts,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slowdown": self.slowdown}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        """Inverse of ``to_dict`` (derived keys such as ``slowdown`` are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _full_shape(input_shape: Sequence[int], profile: HardwareProfile) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be one sample's shape without the batch dimension, e.g. (1, 28, 28); "
            f"got {tuple(input_shape)}"
        )
    return (profile.batch_size, *shape)


def _untraceable_classes(model: nn.Module) -> list[type[nn.Module]]:
    """Module classes whose own forward FX cannot trace (data-dependent control flow).

    Checked deepest first, with classes already found treated as leaves, so only
    the smallest offending modules stay in float and the rest is quantized.
    """
    found: list[type[nn.Module]] = []
    checked: set[type[nn.Module]] = set()

    class _Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, tuple(found)) or super().is_leaf_module(m, qualname)

    for module in reversed(list(model.modules())):
        cls = type(module)
        if cls in checked or cls.__module__.startswith("torch."):
            continue
        checked.add(cls)
        try:
            _Tracer().trace(module)
        except Exception:  # whatever stops the tracer, this class stays in float
            found.append(cls)
    return found


def _quantize_int8(model: nn.Module, example: torch.Tensor, gen: torch.Generator) -> nn.Module:
    """Post-training static int8 quantization through FX graph mode and the x86 backend."""
    engine = int8_engine()
    if engine is None:
        raise RuntimeError("this torch build has no x86/fbgemm quantized engine; cpu-int8 cannot run here")
    # torch.ao FX quantization is deprecated in favour of torchao's pt2e, which is not installed;
    # it still works in torch 2.13, so silence the notices rather than spam every measurement.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        torch.backends.quantized.engine = engine
        custom = PrepareCustomConfig().set_non_traceable_module_classes(_untraceable_classes(model))
        prepared = prepare_fx(
            model, get_default_qconfig_mapping(engine), (example,), prepare_custom_config=custom
        )
        with torch.inference_mode():
            for _ in range(_CALIBRATION_BATCHES):
                prepared(torch.rand(example.shape, generator=gen))
        return convert_fx(prepared)


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` already runs integer kernels (a QAT subnet from ``supernets.int8.to_int8``)."""
    from torch.ao.nn.quantized import Conv2d as QuantizedConv2d

    from supernets.int8 import Int8Conv

    return any(isinstance(m, QuantizedConv2d | Int8Conv) for m in model.modules())


def prepare_for_profile(
    model: nn.Module, *, input_shape: Sequence[int], profile: HardwareProfile, seed: int = 0
) -> tuple[nn.Module, torch.Tensor]:
    """A deploy-form copy of ``model`` for ``profile`` and an input batch for it."""
    shape = _full_shape(input_shape, profile)
    gen = torch.Generator().manual_seed(seed)
    deployed = reparameterize_model(copy.deepcopy(model).eval())
    example = torch.rand(shape, generator=gen)
    if profile.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"profile {profile.name!r} needs a CUDA device and none is visible")
        deployed = deployed.cuda()
        example = example.cuda()
        if profile.precision == "fp16":
            deployed = deployed.half()
            example = example.half()
    elif profile.precision == "int8" and not is_quantized(deployed):
        deployed = _quantize_int8(deployed, example, gen)
    return deployed, example


def interleaved_samples(
    runs: Sequence[Callable[[], object]],
    *,
    sync: Callable[[], None],
    repeats: int,
    min_time_s: float,
    max_rounds: int | None = None,
) -> list[list[float]]:
    """Per-run times (ms) of each of ``runs``, called in turn round after round.

    At least ``repeats`` rounds and ``min_time_s`` seconds, but never more than ``max_rounds``
    (default ``20 * repeats``). Interleaving makes drift in machine speed hit every run alike.
    """
    limit = 20 * repeats if max_rounds is None else max(repeats, max_rounds)
    samples: list[list[float]] = [[] for _ in runs]
    started = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - started < min_time_s and rounds < limit):
        for fn, out in zip(runs, samples, strict=True):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return samples


def _time_runs(
    run: Callable[[], object],
    *,
    sync: Callable[[], None],
    repeats: int,
    min_time_s: float,
    reference: Callable[[], object] | None = None,
) -> tuple[list[float], list[float]]:
    """Per-run times (ms) of ``run`` and, when given, of ``reference`` run just before each."""
    if reference is None:
        return interleaved_samples([run], sync=sync, repeats=repeats, min_time_s=min_time_s)[0], []
    ref_samples, samples = interleaved_samples(
        [reference, run], sync=sync, repeats=repeats, min_time_s=min_time_s
    )
    return samples, ref_samples


def _no_sync() -> None:
    return None


def time_variants(
    runs: Mapping[K, Callable[[], object]],
    *,
    warmup: int = 2,
    repeats: int = 5,
    min_time_s: float = 0.0,
    max_rounds: int | None = None,
    sync: Callable[[], None] = _no_sync,
) -> dict[K, LatencyStats]:
    """This protocol for comparing several variants of one computation (layouts, modes, shapes).

    Each is warmed up, then all are timed interleaved (:func:`interleaved_samples`) and
    summarised as :class:`LatencyStats` (raw times: the variants are each other's reference).
    The caller pins threads (:func:`pinned_threads`) and picks the grad mode.
    """
    if warmup < 0 or repeats < 1 or not runs:
        raise ValueError(
            f"need warmup >= 0, repeats >= 1 and a run, got {warmup}, {repeats}, {len(runs)} runs"
        )
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    sync()
    samples = interleaved_samples(
        list(runs.values()), sync=sync, repeats=repeats, min_time_s=min_time_s, max_rounds=max_rounds
    )
    return {name: LatencyStats.from_samples(times) for name, times in zip(runs, samples, strict=True)}


def _summarise(
    samples: list[float], ref_samples: list[float], *, baseline_ms: float | None, attempt: int
) -> LatencyStats:
    if baseline_ms is None:
        return LatencyStats.from_samples(samples, attempts=attempt)
    # Each run is scaled by the reference run beside it: drift in machine speed cancels.
    ratios = np.asarray(samples) / np.asarray(ref_samples)
    stats = LatencyStats.from_samples(ratios * baseline_ms, attempts=attempt)
    return replace(
        stats,
        raw_median_ms=float(np.median(samples)),
        reference_ms=float(np.median(ref_samples)),
        baseline_ms=baseline_ms,
    )


def measure_latency(
    model: nn.Module,
    *,
    input_shape: Sequence[int],
    profile: HardwareProfile,
    warmup: int = 10,
    repeats: int = 30,
    min_time_s: float = 0.0,
    max_spread: float = 0.25,
    max_retries: int = 2,
    max_time_s: float = DEFAULT_MAX_TIME_S,
    prepared: bool = False,
    normalise: bool = True,
) -> LatencyStats:
    """Latency of one forward pass of ``model`` on ``profile``.

    ``input_shape`` is one sample's shape (no batch dimension; the batch is the
    profile's). The model is copied into its deploy form for the profile unless
    ``prepared``. With ``normalise`` (the default) every run alternates with a run
    of a fixed reference network and is scaled by it to the node's calibrated
    speed (``predictors.reference``), so that measurements taken minutes apart on
    a drifting machine agree; the raw median is kept as ``raw_median_ms``. When the
    spread (p90-p10)/median exceeds ``max_spread`` the measurement is repeated up
    to ``max_retries`` times and the calmest kept, but only while less than
    ``max_time_s`` has gone into timing: on a machine under sustained load no
    repeat gets calmer, and retrying only multiplied the time of every measurement
    (the ``min_time_s`` floor is cut to that budget too). So a measurement makes at
    most ``(warmup + rounds) * (max_retries + 1)`` runs of the model, where rounds
    is ``repeats`` without ``min_time_s`` (at most ``20 * repeats`` with it).
    """
    if warmup < 0 or repeats < 3:
        raise ValueError(f"need warmup >= 0 and repeats >= 3, got warmup={warmup}, repeats={repeats}")
    if min_time_s < 0 or max_spread <= 0 or max_retries < 0 or max_time_s < 0:
        raise ValueError(
            "need min_time_s >= 0, max_spread > 0, max_retries >= 0 and max_time_s >= 0, got "
            f"{min_time_s}, {max_spread}, {max_retries}, {max_time_s}"
        )
    if prepared:
        example = torch.rand(_full_shape(input_shape, profile), generator=torch.Generator().manual_seed(0))
        deployed = model
        if profile.device == "cuda":
            example = example.to("cuda", torch.float16 if profile.precision == "fp16" else torch.float32)
    else:
        deployed, example = prepare_for_profile(model, input_shape=input_shape, profile=profile)

    def sync() -> None:
        if profile.device == "cuda":
            torch.cuda.synchronize()

    def run() -> object:
        return deployed(example)

    clock = reference_clock(profile) if normalise else None
    best: LatencyStats | None = None
    with pinned_threads(profile.threads), torch.inference_mode():
        baseline = clock.baseline_ms() if clock is not None else None
        budget_ends = time.perf_counter() + max_time_s
        for attempt in range(1, max_retries + 2):
            for _ in range(warmup):
                run()
                if clock is not None:
                    clock.run()
            sync()
            samples, ref_samples = _time_runs(
                run,
                sync=sync,
                repeats=repeats,
                min_time_s=min(min_time_s, max(0.0, budget_ends - time.perf_counter())),
                reference=clock.run if clock is not None else None,
            )
            stats = _summarise(samples, ref_samples, baseline_ms=baseline, attempt=attempt)
            if best is None or stats.spread < best.spread:
                best = stats
            if stats.spread <= max_spread or time.perf_counter() >= budget_ends:
                break
    assert best is not None
    return replace(best, attempts=attempt)
