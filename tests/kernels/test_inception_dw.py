"""Inception depthwise mixer: channel split, identity channels, band kernels."""

from __future__ import annotations

import pytest
import torch

from kernels import BlockConfig, ElasticInceptionDW, ElasticInceptionDWConv, InceptionDWConv
from kernels.inception_dw import branch_channels


@pytest.mark.parametrize("stride", [1, 2])
def test_identity_channels_pass_through(stride: int, gen: torch.Generator) -> None:
    mixer = InceptionDWConv(32, band_kernel=7, stride=stride, act_layer=None).eval()
    x = torch.randn(2, 32, 10, 10, generator=gen)
    gc = branch_channels(32)
    with torch.no_grad():
        y = mixer(x)
    assert gc == 4
    assert y.shape == (2, 32, 10 // stride, 10 // stride)
    assert torch.equal(y[:, 3 * gc :], x[:, 3 * gc :, ::stride, ::stride])
    assert not torch.equal(y[:, :gc], x[:, :gc, ::stride, ::stride])


def test_band_branches_have_band_kernels() -> None:
    mixer = InceptionDWConv(16, band_kernel=11)
    assert mixer.square.conv.kernel_size == (3, 3)
    assert mixer.wide.conv.kernel_size == (1, 11)
    assert mixer.tall.conv.kernel_size == (11, 1)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="band kernel must be odd"):
        InceptionDWConv(16, band_kernel=6)
    with pytest.raises(ValueError, match="branch_ratio"):
        InceptionDWConv(16, band_kernel=7, branch_ratio=0.5)
    with pytest.raises(ValueError, match="cannot hold three branches"):
        InceptionDWConv(2, band_kernel=7)


def test_elastic_band_is_centre_crop_of_largest() -> None:
    block = ElasticInceptionDW(BlockConfig(16, 16, 11, 4, 1))
    block.set_active(BlockConfig(16, 16, 5, 4, 1))
    mixer = block.extract().mixer
    assert isinstance(mixer, InceptionDWConv)
    assert isinstance(block.mixer, ElasticInceptionDWConv)
    largest = block.mixer.wide.weight
    assert torch.equal(mixer.wide.conv.weight, largest[: mixer.split[0], :, :, 3:8])
