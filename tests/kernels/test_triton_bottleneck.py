"""The Triton block kernel against the eager deploy form (needs a CUDA device and Triton)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from kernels import BlockConfig, get_block
from kernels.compiled import deploy, fuse_block, triton_available

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not triton_available(), reason="needs a CUDA device and Triton")
@pytest.mark.parametrize("config", [BlockConfig(16, 16, 7, 4, 1), BlockConfig(24, 40, 13, 3, 1)])
def test_triton_block_equals_eager_deploy(
    config: BlockConfig, gen: torch.Generator, randomize_bn: Callable[[nn.Module], None]
) -> None:
    from kernels.triton_bottleneck import TritonBottleneck, supports

    block = get_block("large_kernel_dw")(config).extract()
    randomize_bn(block)
    eager = deploy(block).cuda()
    assert supports(eager)
    fused = fuse_block(block.cuda())
    assert isinstance(fused, TritonBottleneck)
    x = torch.randn(3, config.in_channels, 14, 14, generator=gen).cuda()
    with torch.no_grad():
        assert (fused(x) - eager(x)).abs().max().item() < 1e-4
