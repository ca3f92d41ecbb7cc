"""Cost counting: hand-computed convolution costs and the hook-based MAC counter."""

from __future__ import annotations

from torch import nn

from kernels import BlockConfig, conv_cost, elementwise_cost, get_block, measure_macs


def test_conv_cost_by_hand() -> None:
    cost, hw = conv_cost(in_channels=8, out_channels=16, kernel=(3, 3), in_hw=(10, 10), stride=2)
    assert hw == (5, 5)
    assert cost.params == 16 * 8 * 9 + 16
    assert cost.macs == 5 * 5 * 16 * 8 * 9
    assert cost.flops == 2 * cost.macs
    assert cost.bytes_moved == 4 * (8 * 100 + 16 * 25 + cost.params)


def test_depthwise_and_elementwise_cost() -> None:
    cost, hw = conv_cost(in_channels=12, out_channels=12, kernel=(1, 7), in_hw=(7, 7), groups=12, bias=False)
    assert hw == (7, 7)
    assert cost.macs == 49 * 12 * 7
    assert elementwise_cost(12, hw, reads=2).bytes_moved == 4 * 12 * 49 * 3


def test_measure_macs_counts_convs_and_linears() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 25, 10))
    assert measure_macs(model, (3, 5, 5)) == 25 * 4 * 27 + 100 * 10


def test_smaller_config_costs_less() -> None:
    for name in ("fused_mbconv", "inception_dw", "large_kernel_dw"):
        block = get_block(name)(BlockConfig(16, 16, 7, 4, 1))
        full = block.cost((14, 14))
        block.set_active(BlockConfig(8, 8, 3, 2, 1))
        small = block.cost((14, 14))
        assert small.macs < full.macs and small.bytes_moved < full.bytes_moved and small.params < full.params
