"""One contract over every registered block: shapes, backward, deploy form equal to training form."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

import kernels
from kernels import BlockConfig, get_block, list_blocks, measure_macs, reparameterize_model

# (largest config, active sub-config) pairs: the full block, and a smaller one of every elastic choice.
# A residual block (equal channels, stride 1) keeps equal active channels, so its shortcut survives.
CASES = {
    "full-s1": (BlockConfig(16, 16, 7, 4, 1), BlockConfig(16, 16, 7, 4, 1)),
    "sub-s1": (BlockConfig(16, 24, 7, 4, 1), BlockConfig(8, 12, 5, 2, 1)),
    "sub-residual": (BlockConfig(16, 16, 7, 4, 1), BlockConfig(12, 12, 3, 3, 1)),
    "sub-s2": (BlockConfig(16, 24, 7, 6, 2), BlockConfig(8, 16, 3, 3, 2)),
}
HW = (9, 9)
TOLERANCE = 1e-4


def _build(name: str, case: str) -> tuple[kernels.ElasticBlock, BlockConfig]:
    max_config, active = CASES[case]
    block = get_block(name)(max_config)
    block.set_active(active)
    return block, active


def _out_hw(stride: int) -> tuple[int, int]:
    return (HW[0] - 1) // stride + 1, (HW[1] - 1) // stride + 1


def test_the_library_registers_its_blocks() -> None:
    assert {"fused_mbconv", "inception_dw", "large_kernel_dw"} <= set(list_blocks())


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list_blocks())
def test_output_shape_and_backward(name: str, case: str, gen: torch.Generator) -> None:
    block, a = _build(name, case)
    block.train()
    x = torch.randn(2, a.in_channels, *HW, generator=gen, requires_grad=True)
    y = block(x)
    assert y.shape == (2, a.out_channels, *_out_hw(a.stride))
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grads = [p.grad for p in block.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list_blocks())
def test_deploy_form_equals_training_form(
    name: str, case: str, gen: torch.Generator, randomize_bn: Callable[[nn.Module], None]
) -> None:
    block, a = _build(name, case)
    randomize_bn(block)
    block.eval()
    x = torch.randn(3, a.in_channels, *HW, generator=gen)
    with torch.no_grad():
        expected = block(x)
        static = block.extract().eval()
        assert (static(x) - expected).abs().max().item() < TOLERANCE
        reparameterize_model(static)
        once = static(x)
        reparameterize_model(static)
        twice = static(x)
    assert (once - expected).abs().max().item() < TOLERANCE
    assert torch.equal(once, twice)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in static.modules())


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list_blocks())
def test_cost_matches_the_deploy_form(name: str, case: str) -> None:
    block, a = _build(name, case)
    static = reparameterize_model(block.extract().eval())
    cost = block.cost(HW)
    assert cost.macs == measure_macs(static, (a.in_channels, *HW))
    assert cost.params == sum(p.numel() for p in static.parameters())
    # Every byte count includes at least reading the input and writing the output once.
    out_elems = a.out_channels * _out_hw(a.stride)[0] * _out_hw(a.stride)[1]
    assert cost.bytes_moved >= 4 * (a.in_channels * HW[0] * HW[1] + out_elems + cost.params)


@pytest.mark.parametrize("name", list_blocks())
def test_extract_copies_weights(name: str) -> None:
    block, _ = _build(name, "sub-s1")
    before = copy.deepcopy(block.state_dict())
    static = block.extract()
    with torch.no_grad():
        for p in static.parameters():
            p.add_(1.0)
    after = block.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", list_blocks())
def test_too_large_config_is_rejected(name: str) -> None:
    block = get_block(name)(BlockConfig(16, 16, 7, 4, 1))
    with pytest.raises(ValueError, match="exceed"):
        block.set_active(BlockConfig(32, 16, 7, 4, 1))
    with pytest.raises(ValueError, match="exceed"):
        block.set_active(BlockConfig(16, 16, 9, 4, 1))
    with pytest.raises(ValueError, match="stride"):
        block.set_active(BlockConfig(16, 16, 7, 4, 2))
    with pytest.raises(ValueError, match="residual"):
        block.set_active(BlockConfig(16, 12, 7, 4, 1))


@pytest.mark.parametrize("name", list_blocks())
def test_deploy_matches_after_training_on_fashion_mnist(
    name: str, fmnist_images: torch.Tensor, gen: torch.Generator
) -> None:
    """A stem + block trained a few steps on real images: BatchNorm statistics come from data."""
    stem = kernels.ConvBNAct(1, 16, 3, stride=2)
    block = get_block(name)(BlockConfig(16, 16, 7, 4, 1))
    block.set_active(BlockConfig(16, 16, 5, 3, 1))
    model = nn.Sequential(stem, block)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(3):
        idx = torch.randperm(32, generator=gen)[:16]
        loss = model(fmnist_images[idx]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss), f"loss diverged at step {step}"
    model.eval()
    deployed = reparameterize_model(nn.Sequential(copy.deepcopy(stem), block.extract()).eval())
    with torch.no_grad():
        diff = (deployed(fmnist_images) - model(fmnist_images)).abs().max().item()
    assert diff < TOLERANCE
