"""The compiled (fused) deploy path: deploy copies, the CPU fallback, compiled outputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from kernels import BlockConfig, get_block, list_blocks
from kernels.compiled import compile_deploy, deploy, fuse_block, triton_available


def test_deploy_copies_and_leaves_the_block_alone(
    gen: torch.Generator, randomize_bn: Callable[[nn.Module], None]
) -> None:
    block = get_block("large_kernel_dw")(BlockConfig(8, 8, 7, 2, 1)).extract()
    randomize_bn(block)
    block.eval()
    deployed = deploy(block)
    assert any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    x = torch.randn(2, 8, 7, 7, generator=gen)
    with torch.no_grad():
        assert (deployed(x) - block(x)).abs().max().item() < 1e-4


def test_fuse_block_falls_back_to_torch_compile_without_a_gpu() -> None:
    if triton_available():
        pytest.skip("a CUDA device with Triton is present; the fallback is not taken")
    fused = fuse_block(get_block("fused_mbconv")(BlockConfig(8, 8, 3, 2, 1)).extract())
    assert isinstance(fused, torch._dynamo.eval_frame.OptimizedModule)


@pytest.mark.slow
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("name", list_blocks())
def test_compiled_equals_eager_deploy(
    name: str, channels_last: bool, gen: torch.Generator, randomize_bn: Callable[[nn.Module], None]
) -> None:
    torch._dynamo.reset()  # blocks share forward code; keep each compile off the recompile limit
    block = get_block(name)(BlockConfig(8, 8, 5, 3, 1)).extract()
    randomize_bn(block)
    block.eval()
    x = torch.randn(2, 8, 7, 7, generator=gen)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    compiled = compile_deploy(block, channels_last=channels_last)
    with torch.no_grad():
        assert (compiled(x) - block(x)).abs().max().item() < 1e-4
