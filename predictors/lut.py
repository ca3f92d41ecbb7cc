"""Lookup-table latency baseline (as in OFA): the sum of separately measured block latencies."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from kernels.fuse import reparameterize_model
from predictors.base import Predictor
from predictors.features import SpaceLike, space_key
from predictors.hardware import get_profile
from predictors.measure import measure_latency
from supernets.arch import Arch

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class ExtractingSupernet(Protocol):
    def extract(self, arch: Arch) -> nn.Module: ...


def _is_unit(module: nn.Module) -> bool:
    """A block of the kernel library, or a leaf torch module; anything else is looked inside."""
    if isinstance(module, _CONTAINERS):
        return False
    return type(module).__module__.startswith("kernels.") or not any(True for _ in module.children())


def _collect_units(module: nn.Module, out: list[nn.Module]) -> None:
    for child in module.children():
        if _is_unit(child):
            out.append(child)
        else:
            _collect_units(child, out)


def model_units(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """The units a forward pass of one sample runs through, in call order, with input shapes (no batch)."""
    units: list[nn.Module] = []
    _collect_units(model, units)
    if not units:
        units = [model]
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise ValueError(
                f"{type(module).__name__} takes {len(args)} inputs; lookup tables need one tensor per unit"
            )
        calls.append((module, tuple(args[0].shape[1:])))

    handles = [m.register_forward_pre_hook(hook) for m in units]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
    return calls


def unit_key(module: nn.Module, input_shape: Sequence[int]) -> str:
    """Identity of a unit's work: its full configuration and input shape."""
    text = f"{type(module).__qualname__}|{module!r}|{tuple(input_shape)}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class LookupTableLatency(Predictor):
    """Latency predicted as the sum of table entries; missing entries are measured on demand."""

    kind = "lut-latency"

    def __init__(
        self,
        *,
        space: SpaceLike,
        supernet: ExtractingSupernet,
        profile: str,
        input_shape: Sequence[int],
        warmup: int = 5,
        repeats: int = 20,
    ) -> None:
        self.hw = get_profile(profile)
        if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
            raise ValueError(f"input_shape must be one image's (C, H, W), got {tuple(input_shape)}")
        super().__init__(target=f"latency_ms@{profile}", space_key=space_key(space))
        self.supernet = supernet
        self.profile = profile
        self.input_shape = tuple(int(d) for d in input_shape)
        self.warmup = warmup
        self.repeats = repeats
        self.table: dict[str, float] = {}
        self.n_measured = 0

    def _keys_of(self, arch: Arch) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
        model = reparameterize_model(self.supernet.extract(arch).eval())
        return [(unit_key(m, s), m, s) for m, s in model_units(model, self.input_shape)]

    def _latency(self, arch: Arch) -> float:
        total = 0.0
        for key, module, shape in self._keys_of(arch):
            if key not in self.table:
                stats = measure_latency(
                    module, input_shape=shape, profile=self.hw, warmup=self.warmup, repeats=self.repeats
                )
                self.table[key] = stats.median_ms
                self.n_measured += 1
            total += self.table[key]
        return total

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        # The table needs no targets: fitting measures every block these archs use.
        for arch in archs:
            self._latency(arch)

    def _predict(self, archs: list[Arch]) -> np.ndarray:
        return np.asarray([self._latency(a) for a in archs])

    def _config(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "input_shape": list(self.input_shape),
            "warmup": self.warmup,
            "repeats": self.repeats,
        }

    def _get_state(self) -> dict[str, Any]:
        return {"table": self.table}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.table = {str(k): float(v) for k, v in state["table"].items()}
