"""BatchNorm recalibration: exact image-weighted statistics, on plain and supernet models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from supernets import OfaMbv3Space, recalibrate_bn
from tests.supernets.conftest import MEAN, STD


def test_statistics_are_the_average_over_all_images() -> None:
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, bias=False)
    model = nn.Sequential(conv, nn.BatchNorm2d(4))
    images = torch.rand(10, 1, 8, 8, generator=gen) * 3 + 1
    recalibrate_bn(model, images, batch_size=4)  # batches of 4, 4 and 2 images
    bn = model[1]
    assert isinstance(bn, nn.BatchNorm2d) and not model.training
    with torch.no_grad():
        feats = conv(images)
    assert bn.running_mean is not None and bn.running_var is not None
    torch.testing.assert_close(bn.running_mean, feats.mean(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    # the running variance is the image-weighted average of per-batch unbiased variances
    expected_var = (
        sum(
            feats[i : i + 4].var(dim=(0, 2, 3), unbiased=True) * feats[i : i + 4].shape[0]
            for i in range(0, 10, 4)
        )
        / 10
    )
    torch.testing.assert_close(bn.running_var, expected_var, rtol=1e-5, atol=1e-5)
    assert bn.momentum == 0.1  # restored


def test_supernet_and_extracted_model_recalibrate_alike(tiny_space: OfaMbv3Space) -> None:
    torch.manual_seed(0)
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    images = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    arch = tiny_space.smallest()
    net.set_active(arch)
    model = net.extract(arch)
    recalibrate_bn(net, images, batch_size=16)
    recalibrate_bn(model, images, batch_size=16)
    with torch.no_grad():
        torch.testing.assert_close(model(images[:4]), net(images[:4]), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="non-empty"):
        recalibrate_bn(model, images[:0])
