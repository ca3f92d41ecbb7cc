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

from kernels.conv_bn import ConvBNAct
from kernels.fuse import reparameterize_model
from kernels.mbconv import MBConv
from predictors.hardware import HardwareProfile

# Calibration: the fastest of this many short blocks of timed runs is the node's baseline.
_CALIBRATION_BLOCKS = 40
_CALIBRATION_RUNS = 7
_CALIBRATION_WARMUP = 20
_INPUT_SHAPE = (1, 1, 24, 24)


def build_reference_net() -> nn.Module:
    """A fixed mid-sized MobileNetV3-like network (deploy form, ~1-2 ms at batch 1 on one CPU thread).

    It is built from the same blocks as the measured subnets (MBConv with squeeze-excite and
    hard-swish), because a reference made of other operators is slowed differently by cache
    and memory contention: a tiny plain CNN left a ratio spread of 20% where this one leaves 4%.
    """
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    hs = nn.Hardswish
    try:
        net = nn.Sequential(
            ConvBNAct(_INPUT_SHAPE[1], 16, 3, stride=2, act_layer=hs),
            MBConv(16, 16, hidden_channels=48, kernel_size=3),
            MBConv(16, 24, hidden_channels=64, kernel_size=5, stride=2, use_se=True),
            MBConv(24, 24, hidden_channels=96, kernel_size=3, use_se=True),
            MBConv(24, 40, hidden_channels=120, kernel_size=5, stride=2, act_layer=hs),
            MBConv(40, 40, hidden_channels=160, kernel_size=3, act_layer=hs),
            MBConv(40, 64, hidden_channels=200, kernel_size=5, use_se=True, act_layer=hs),
            ConvBNAct(64, 128, 1, act_layer=hs),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 10),
        )
    finally:
        torch.random.set_rng_state(gen_state)
    return reparameterize_model(net.eval())


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
