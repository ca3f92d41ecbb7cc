"""Large-kernel depthwise conv: branch merging into one kernel, elastic branch selection."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from kernels import BlockConfig, ConvBNAct, ElasticLargeKernelDW, RepLargeKernelDW
from kernels.large_kernel import default_branches, extent


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel_size", [3, 5, 7, 9, 11, 13])
def test_merged_kernel_equals_branches(
    kernel_size: int, stride: int, gen: torch.Generator, randomize_bn: Callable[[nn.Module], None]
) -> None:
    mixer = RepLargeKernelDW(6, kernel_size=kernel_size, stride=stride)
    randomize_bn(mixer)
    mixer.eval()
    x = torch.randn(2, 6, 15, 15, generator=gen)
    with torch.no_grad():
        expected = mixer(x)
        mixer.reparameterize()
        merged = mixer(x)
    assert len(mixer.branches) == 0
    assert mixer.large.conv.kernel_size == (kernel_size, kernel_size)
    assert (merged - expected).abs().max().item() < 1e-4


def test_every_default_branch_fits_its_large_kernel() -> None:
    for k in (3, 5, 7, 9, 11, 13):
        assert all(extent(bk, d) <= k for bk, d in default_branches(k))


def test_unknown_kernel_and_misfit_branch_are_rejected() -> None:
    with pytest.raises(ValueError, match="kernel size must be one of"):
        RepLargeKernelDW(4, kernel_size=15)
    with pytest.raises(ValueError, match="must be odd and fit"):
        RepLargeKernelDW(4, kernel_size=5, branches=((3, 3),))


def test_smaller_active_kernel_keeps_only_fitting_branches() -> None:
    block = ElasticLargeKernelDW(BlockConfig(8, 8, 13, 2, 1))
    block.set_active(BlockConfig(8, 8, 7, 2, 1))
    mixer = block.extract().mixer
    assert isinstance(mixer, RepLargeKernelDW)
    kept = [(b.conv.kernel_size[0], b.conv.dilation[0]) for b in mixer.branches if isinstance(b, ConvBNAct)]
    assert kept == [(5, 1), (3, 3)]
    assert mixer.large.conv.kernel_size == (7, 7)


def test_even_active_kernel_is_rejected() -> None:
    block = ElasticLargeKernelDW(BlockConfig(8, 8, 7, 2, 1))
    with pytest.raises(ValueError, match="odd"):
        block.set_active(BlockConfig(8, 8, 6, 2, 1))
