"""A fixed reference network timed beside every measurement, so that a machine's drifting speed cancels.

On a shared or virtual machine the same forward pass can take twice as long ten
seconds later (CPU steal, frequency changes, neighbours). That drift hits the
reference and the measured model alike when their runs alternate, so the ratio
of the two is stable where either time alone is not. A latency is reported as
that ratio times the reference's calibrated time on this node (its fastest
steady median, found once per process), i.e. the latency at the node's best
sustained speed.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from predictors.hardware import HardwareProfile

# Calibration: the fastest of this many short blocks of timed runs is the node's baseline.
_CALIBRATION_BLOCKS = 40
_CALIBRATION_RUNS = 7
_CALIBRATION_WARMUP = 20
_INPUT_SHAPE = (1, 3, 32, 32)


def build_reference_net() -> nn.Module:
    """A small fixed MobileNet-like network (~1 ms at batch 1 on one CPU thread), seeded weights."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    try:
        net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16),
            nn.Conv2d(16, 48, 1),
            nn.ReLU(),
            nn.Conv2d(48, 48, 3, stride=2, padding=1, groups=48),
            nn.Conv2d(48, 64, 1),
            nn.Hardswish(),
            nn.Conv2d(64, 64, 3, padding=1, groups=64),
            nn.Conv2d(64, 96, 1),
            nn.Hardswish(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(96, 10),
        )
    finally:
        torch.random.set_rng_state(gen_state)
    return net.eval()


class ReferenceClock:
    """The reference network on one profile's device, with its calibrated baseline time."""

    def __init__(self, *, profile: HardwareProfile) -> None:
        self.profile = profile
        net = build_reference_net()
        example = torch.rand(_INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
        if profile.device == "cuda":
            net, example = net.cuda(), example.cuda()
            if profile.precision == "fp16":
                net, example = net.half(), example.half()
        # int8 profiles keep the reference in float: it gauges the CPU's speed, not the model's.
        self.net = net
        self.example = example
        self._baseline_ms: float | None = None

    def sync(self) -> None:
        if self.profile.device == "cuda":
            torch.cuda.synchronize()

    def run(self) -> None:
        self.net(self.example)

    def baseline_ms(self) -> float:
        """The fastest median over short blocks of runs: this node's best sustained reference time."""
        if self._baseline_ms is None:
            with torch.inference_mode():
                for _ in range(_CALIBRATION_WARMUP):
                    self.run()
                self.sync()
                medians = []
                for _ in range(_CALIBRATION_BLOCKS):
                    times = []
                    for _ in range(_CALIBRATION_RUNS):
                        t0 = time.perf_counter()
                        self.run()
                        self.sync()
                        times.append((time.perf_counter() - t0) * 1e3)
                    medians.append(float(np.median(times)))
            self._baseline_ms = min(medians)
        return self._baseline_ms


# One clock per profile and process: calibrating costs about a second, so it is done once.
_CLOCKS: dict[str, ReferenceClock] = {}


def reference_clock(profile: HardwareProfile) -> ReferenceClock:
    """The process-wide reference clock for ``profile`` (calibrated on first use of its baseline)."""
    clock = _CLOCKS.get(profile.name)
    if clock is None or clock.profile != profile:
        clock = _CLOCKS[profile.name] = ReferenceClock(profile=profile)
    return clock
