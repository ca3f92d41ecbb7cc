"""Hardware profiles: what a latency measurement means, and which ones this node can serve."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "int8", "fp16"]

_DEVICES = ("cpu", "cuda")
_PRECISIONS = ("fp32", "int8", "fp16")
_RUNTIMES = ("torch-eager",)
# The x86 backend is preferred; fbgemm is its predecessor on older builds.
_INT8_ENGINES = ("x86", "fbgemm")


@dataclass(frozen=True)
class HardwareProfile:
    """Device, precision, batch size, threads and runtime of one latency measurement."""

    name: str
    device: Device
    precision: Precision
    batch_size: int = 1
    threads: int = 1
    runtime: str = "torch-eager"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("HardwareProfile.name must be a non-empty string such as 'cpu-fp32'")
        if self.device not in _DEVICES:
            raise ValueError(f"HardwareProfile.device must be one of {_DEVICES}, got {self.device!r}")
        if self.precision not in _PRECISIONS:
            raise ValueError(
                f"HardwareProfile.precision must be one of {_PRECISIONS}, got {self.precision!r}"
            )
        if self.precision == "int8" and self.device != "cpu":
            raise ValueError("int8 profiles run on the CPU quantized backend; use device='cpu'")
        if self.precision == "fp16" and self.device != "cuda":
            raise ValueError("fp16 profiles need device='cuda'; CPU half precision is not supported")
        if self.batch_size < 1:
            raise ValueError(f"HardwareProfile.batch_size must be >= 1, got {self.batch_size}")
        if self.threads < 1:
            raise ValueError(f"HardwareProfile.threads must be >= 1, got {self.threads}")
        if self.runtime not in _RUNTIMES:
            raise ValueError(f"HardwareProfile.runtime must be one of {_RUNTIMES}, got {self.runtime!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, HardwareProfile] = {
    p.name: p
    for p in (
        HardwareProfile(name="cpu-fp32", device="cpu", precision="fp32"),
        HardwareProfile(name="cpu-int8", device="cpu", precision="int8"),
        HardwareProfile(name="cuda-fp32", device="cuda", precision="fp32"),
        HardwareProfile(name="cuda-fp16", device="cuda", precision="fp16"),
    )
}


def get_profile(name: str) -> HardwareProfile:
    """The built-in profile called ``name``."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown hardware profile {name!r}; known profiles: {', '.join(sorted(PROFILES))}"
        ) from None


def int8_engine() -> str | None:
    """The quantized CPU engine int8 profiles use here, or None when there is none."""
    supported = torch.backends.quantized.supported_engines
    return next((e for e in _INT8_ENGINES if e in supported), None)


def detect_profiles() -> list[HardwareProfile]:
    """The built-in profiles this node can measure."""
    found = [PROFILES["cpu-fp32"]]
    if int8_engine() is not None:
        found.append(PROFILES["cpu-int8"])
    if torch.cuda.is_available():
        found += [PROFILES["cuda-fp32"], PROFILES["cuda-fp16"]]
    return found


def resource_name(profile: HardwareProfile | str) -> str:
    """The Ray custom resource a node advertises when it can serve ``profile``."""
    name = profile if isinstance(profile, str) else profile.name
    return f"hw:{name}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def node_fingerprint() -> dict[str, Any]:
    """The machine and process a measurement runs in: hostname, CPU model, cores and pid."""
    return {
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "pid": os.getpid(),
    }


def environment(profile: HardwareProfile | None = None) -> dict[str, Any]:
    """What a measurement ran on, as the benchmarks record it in their reports.

    The store does not keep it: a ``Measurement`` row's ``env`` holds only its search-space
    key, the node that timed it (``env.node``, when a worker did) and the protocol's extra
    stats (``env.stats``: raw median, reference time, slowdown).
    """
    on_cuda = profile is not None and profile.device == "cuda" and torch.cuda.is_available()
    env: dict[str, Any] = {
        "device_name": torch.cuda.get_device_name(0) if on_cuda else _cpu_model(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": profile.threads if profile is not None else torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "quantized_engine": int8_engine(),
    }
    if on_cuda:
        env["cuda"] = torch.version.cuda
    if profile is not None:
        env["profile"] = profile.to_dict()
    return env
