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


def _randomise_bn(module: torch.nn.Module, gen: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_deploy_form_agrees_on_both_paths(stride: int, channels_last: bool, gen: torch.Generator) -> None:
    # Small inputs take the merged single-kernel path, large ones the three branches; both must
    # give the training form's outputs, at any stride and layout.
    trained = InceptionDWConv(48, band_kernel=11, stride=stride).eval()
    _randomise_bn(trained, gen)
    deployed = InceptionDWConv(48, band_kernel=11, stride=stride).eval()
    deployed.load_state_dict(trained.state_dict())
    deployed.reparameterize()
    deployed.reparameterize()  # safe to call twice
    assert deployed.merged and deployed.merged_weight.shape == (18, 1, 11, 11)
    small = torch.randn(1, 48, 14, 14, generator=gen)
    large = torch.randn(16, 48, 14, 14, generator=gen)
    assert small[0].numel() // 48 <= deployed.merge_max_pixels < large.shape[0] * 14 * 14
    for x in (small, large):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            torch.testing.assert_close(deployed(x), trained(x), rtol=1e-4, atol=1e-4)
    scripted = torch.jit.script(deployed)
    with torch.no_grad():
        torch.testing.assert_close(scripted(small), trained(small), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(scripted(large), trained(large), rtol=1e-4, atol=1e-4)
