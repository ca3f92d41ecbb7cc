"""Fused MBConv: structure of the static form and its residual rule."""

from __future__ import annotations

import pytest

from kernels import BlockConfig, ElasticFusedMBConv, ElasticInvertedBottleneck, FusedMBConv


def test_static_form_is_full_conv_then_projection() -> None:
    block = ElasticFusedMBConv(BlockConfig(8, 8, 5, 4, 1))
    block.set_active(BlockConfig(8, 8, 3, 2, 1))
    static = block.extract()
    assert isinstance(static, FusedMBConv)
    assert static.residual
    assert static.expand.conv.weight.shape == (16, 8, 3, 3)  # type: ignore[union-attr]
    assert static.project.conv.weight.shape == (8, 16, 1, 1)


def test_strided_block_has_no_residual() -> None:
    block = ElasticFusedMBConv(BlockConfig(8, 8, 3, 4, 2))
    assert not block.extract().residual


def test_even_kernel_is_rejected() -> None:
    with pytest.raises(ValueError, match="odd"):
        ElasticFusedMBConv(BlockConfig(8, 8, 4, 4, 1))


def test_residual_can_be_switched_off_for_elastic_widths() -> None:
    block = ElasticFusedMBConv(BlockConfig(8, 8, 3, 4, 1), residual=False)
    block.set_active(BlockConfig(8, 6, 3, 4, 1))  # a stage's first block may change width
    assert not block.extract().residual
    with pytest.raises(ValueError, match="residual needs stride 1"):
        ElasticFusedMBConv(BlockConfig(8, 8, 3, 4, 2), residual=True)


def test_is_the_inverted_bottleneck_with_unchanged_state_dict_keys() -> None:
    block = ElasticFusedMBConv(BlockConfig(8, 8, 5, 4, 1))
    assert isinstance(block, ElasticInvertedBottleneck)
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(block.state_dict()) == [
        *(f"{part}.{key}" for part in ("expand", "project") for key in ["weight"] + [f"bn.{b}" for b in bn])
    ]
    # the expand carries the k x k kernel and the stride; the cost counts it so
    strided = ElasticFusedMBConv(BlockConfig(8, 16, 3, 2, 2))
    assert strided.expand.weight.shape == (16, 8, 3, 3) and strided.expand.stride == 2
    cost = strided.cost((8, 8))
    assert cost.macs == 16 * 8 * 9 * 4 * 4 + 16 * 16 * 4 * 4
