"""BatchNorm slicing: the elastic forward on the first channels, slice copies, reordering."""

from __future__ import annotations

import torch
from torch import nn

from kernels.bn import copy_bn_slice, elastic_batch_norm, permute_bn


def _bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.copy_(torch.arange(1.0, channels + 1))
        bn.bias.copy_(torch.arange(channels) * 0.1)
        bn.running_mean.copy_(torch.arange(channels) * 0.5)  # type: ignore[union-attr]
        bn.running_var.copy_(torch.arange(1.0, channels + 1))  # type: ignore[union-attr]
    return bn


def test_elastic_forward_is_a_small_bn_with_the_first_channels() -> None:
    wide, small = _bn(6), nn.BatchNorm2d(4)
    copy_bn_slice(wide, small, 4)
    x = torch.randn(2, 4, 3, 3)
    wide.eval(), small.eval()
    torch.testing.assert_close(elastic_batch_norm(wide, x), small(x))
    wide.train(), small.train()
    torch.testing.assert_close(elastic_batch_norm(wide, x), small(x))
    # training updated the wide statistics' first channels only, as the small BN's own
    torch.testing.assert_close(wide.running_mean[:4], small.running_mean)  # type: ignore[index]
    assert wide.running_mean[4:].tolist() == [2.0, 2.5]  # type: ignore[index]


def test_copy_carries_the_batch_count_only_when_asked() -> None:
    wide = _bn(6)
    wide.num_batches_tracked.fill_(7)  # type: ignore[union-attr]
    counted, uncounted = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    copy_bn_slice(wide, counted, 3)
    copy_bn_slice(wide, uncounted, 3, with_count=False)
    assert int(counted.num_batches_tracked) == 7 and int(uncounted.num_batches_tracked) == 0  # type: ignore[arg-type]
    assert counted.weight.tolist() == [1.0, 2.0, 3.0]


def test_permute_reorders_affine_and_statistics() -> None:
    bn = _bn(3)
    permute_bn(bn, torch.tensor([2, 0, 1]))
    assert bn.weight.tolist() == [3.0, 1.0, 2.0]
    assert bn.running_mean.tolist() == [1.0, 0.0, 0.5]  # type: ignore[union-attr]
