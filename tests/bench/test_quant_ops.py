"""Per-operator-kind int8 against fp32 timing of the quantization benchmark, on a small real supernet."""

from __future__ import annotations

import torch

from bench.quant_ops import block_kind_latency
from supernets import make_space
from tests.supernets.conftest import MEAN, STD, TINY_SPACE


def test_every_block_kind_is_timed_in_fp32_and_int8() -> None:
    space = make_space(TINY_SPACE | {"bits": [8, 32]}, in_channels=1, num_classes=10, image_size=28)
    torch.manual_seed(0)
    net = space.build_supernet(mean=MEAN, std=STD)
    rows = block_kind_latency(net, torch.rand(16, 1, 28, 28), repeats=3, warmup=1)
    kinds = [r["kind"] for r in rows]
    # 2 stages x kernels {3, 5} x expand ratios {2, 4}; stage 1 is hswish with squeeze-excite
    assert len(set(kinds)) == len(kinds) == 2 * 2 * 2
    assert "stage1 hswish+se k5 e4" in kinds and "stage0 relu k3 e2" in kinds
    assert all(r["ms_fp32"] > 0 and r["ms_int8"] > 0 for r in rows)
    assert {r["input"] for r in rows if r["kind"].startswith("stage0")} == {"8x14x14"}
