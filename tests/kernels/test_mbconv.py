"""ElasticMBConv: subconfigurations, static extraction, re-parameterisation, channel sorting, cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kernels._registry import get_block
from kernels.base import BlockConfig
from kernels.bottleneck import hidden_channels
from kernels.fuse import reparameterize_model
from kernels.mbconv import ElasticMBConv, MBConv

MAX = BlockConfig(in_channels=8, out_channels=8, kernel_size=7, expand_ratio=6, stride=1)
CONFIGS = [
    MAX,
    BlockConfig(in_channels=8, out_channels=8, kernel_size=5, expand_ratio=4, stride=1),
    BlockConfig(in_channels=6, out_channels=6, kernel_size=3, expand_ratio=3, stride=1),
]


def _trained_like(block: nn.Module, gen: torch.Generator) -> None:
    """Give BatchNorm non-trivial statistics and transforms non-identity values, as training would."""
    with torch.no_grad():
        for name, p in block.named_parameters():
            if "transform" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("use_se", [False, True])
@pytest.mark.parametrize("config", CONFIGS)
def test_extracted_block_matches_elastic_and_after_reparameterize(
    config: BlockConfig, use_se: bool, gen: torch.Generator
) -> None:
    block = ElasticMBConv(MAX, kernel_sizes=(3, 5, 7), use_se=use_se, act_layer=nn.Hardswish)
    _trained_like(block, gen)
    block.set_active(config)
    block.eval()
    x = torch.randn(2, config.in_channels, 9, 9, generator=gen)
    with torch.no_grad():
        expected = block(x)
        static = block.extract().eval()
        assert isinstance(static, MBConv)
        torch.testing.assert_close(static(x), expected, rtol=1e-5, atol=1e-5)
        reparameterize_model(static)
        reparameterize_model(static)  # idempotent
        torch.testing.assert_close(static(x), expected, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in static.modules())


def test_stride_two_block_changes_channels_and_halves_size(gen: torch.Generator) -> None:
    block = ElasticMBConv(BlockConfig(8, 16, 5, 4, stride=2), use_se=True)
    block.set_active(BlockConfig(6, 12, 3, 3, stride=2))
    x = torch.randn(2, 6, 9, 9, generator=gen)
    out = block(x)
    assert out.shape == (2, 12, 5, 5)
    out.sum().backward()
    assert block.depthwise.weight.grad is not None and block.kernel_transforms["5to3"].grad is not None
    assert not block.has_residual
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block.extract().eval()(x), block(x))


def test_kernel_transform_starts_as_centre_crop() -> None:
    block = ElasticMBConv(MAX)
    assert block.kernel_sizes == (7, 5, 3)
    k3 = block.active_kernel(3, 4)
    torch.testing.assert_close(k3, block.depthwise.weight[:4, :, 2:5, 2:5])


def test_sort_channels_keeps_full_output_and_orders_importance(gen: torch.Generator) -> None:
    block = ElasticMBConv(MAX, use_se=True)
    _trained_like(block, gen)
    block.eval()
    x = torch.randn(2, 8, 7, 7, generator=gen)
    with torch.no_grad():
        before = block(x)
        block.sort_channels()
        torch.testing.assert_close(block(x), before, rtol=1e-5, atol=1e-5)
    importance = block.project.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_bad_configs_are_rejected() -> None:
    block = ElasticMBConv(MAX, kernel_sizes=(3, 7))
    with pytest.raises(ValueError, match="kernel 5"):
        block.set_active(BlockConfig(8, 8, 5, 6, 1))
    with pytest.raises(ValueError, match="residual"):
        block.set_active(BlockConfig(8, 6, 3, 6, 1))
    with pytest.raises(ValueError, match="exceed"):
        block.set_active(BlockConfig(8, 8, 3, 8, 1))
    with pytest.raises(ValueError, match="kernel_sizes"):
        ElasticMBConv(MAX, kernel_sizes=(3, 4))


@pytest.mark.parametrize("use_se", [False, True])
def test_cost_counts_the_deploy_form(use_se: bool) -> None:
    block = ElasticMBConv(BlockConfig(8, 16, 5, 4, stride=2), use_se=use_se)
    config = BlockConfig(6, 12, 3, 3, stride=2)
    block.set_active(config)
    static = reparameterize_model(block.extract())
    cost = block.cost((9, 9))
    assert cost.params == sum(p.numel() for p in static.parameters())
    hid = hidden_channels(6, 3)
    conv_macs = 81 * 6 * hid + 25 * hid * 9 + 25 * hid * 12
    assert cost.macs >= conv_macs
    assert cost.bytes_moved > 4 * cost.params


def test_registered_as_mbconv() -> None:
    assert get_block("mbconv") is ElasticMBConv


def test_a_checkpoint_with_the_old_tensor_names_loads(gen: torch.Generator) -> None:
    """Checkpoints written when the block held its own conv weights and BatchNorms still load."""
    block = ElasticMBConv(MAX, use_se=True)
    _trained_like(block, gen)
    renames = {
        "expand.weight": "expand_weight",
        "expand.bn.": "expand_bn.",
        "depthwise.weight": "dw_weight",
        "depthwise.bn.": "dw_bn.",
        "project.weight": "project_weight",
        "project.bn.": "project_bn.",
    }
    old = {}
    for key, value in block.state_dict().items():
        for new, legacy in renames.items():
            key = key.replace(new, legacy) if key.startswith(new) else key
        old[key] = value
    assert "dw_weight" in old and "dw_bn.running_var" in old
    fresh = ElasticMBConv(MAX, use_se=True)
    fresh.load_state_dict(old)
    want = block.state_dict()
    assert all(torch.equal(value, want[key]) for key, value in fresh.state_dict().items())
