"""Elastic conv + BatchNorm: weight slicing, shared running statistics, export."""

from __future__ import annotations

import pytest
import torch

from kernels import ElasticConvBN


def test_training_updates_only_the_active_channels_statistics(gen: torch.Generator) -> None:
    layer = ElasticConvBN(8, 16, 3).train()
    assert layer.bn.running_mean is not None
    before = layer.bn.running_mean.clone()
    layer(torch.randn(4, 8, 6, 6, generator=gen) + 3.0, 10, (3, 3))
    changed = (layer.bn.running_mean != before).nonzero().flatten().tolist()
    assert changed == list(range(10))


def test_kernel_is_centre_cropped() -> None:
    layer = ElasticConvBN(4, 4, 7, depthwise=True)
    w = layer.active_weight(4, 4, (3, 3))
    assert torch.equal(w, layer.weight[:, :, 2:5, 2:5])
    with pytest.raises(ValueError, match="must be odd"):
        layer.active_weight(4, 4, (4, 4))


def test_export_matches_in_eval_mode(gen: torch.Generator) -> None:
    layer = ElasticConvBN(8, 12, 5, stride=2).train()
    x = torch.randn(4, 6, 9, 9, generator=gen)
    layer(x, 10, (5, 5))  # one training step gives the statistics non-trivial values
    layer.eval()
    static = layer.export(6, 10, (3, 3), act_layer=None).eval()
    with torch.no_grad():
        assert torch.allclose(static(x), layer(x, 10, (3, 3)), atol=1e-5)


def test_bad_construction_is_rejected() -> None:
    with pytest.raises(ValueError, match="depthwise needs equal channels"):
        ElasticConvBN(4, 8, 3, depthwise=True)
    with pytest.raises(ValueError, match="odd"):
        ElasticConvBN(4, 8, 4)


def test_momentum_none_gives_a_cumulative_average(gen: torch.Generator) -> None:
    layer = ElasticConvBN(4, 4, 1).train()
    layer.bn.momentum = None
    with torch.no_grad():
        layer.weight.copy_(torch.eye(4).reshape(4, 4, 1, 1))
    batches = [torch.randn(8, 4, 3, 3, generator=gen) + i for i in range(3)]
    for b in batches:
        layer(b, 4, (1, 1))
    assert layer.bn.running_mean is not None
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(layer.bn.running_mean, expected, atol=1e-5)
