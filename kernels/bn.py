"""BatchNorm over the first channels of a wider one: the elastic forward, slice copies, reordering."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def elastic_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn`` on the first ``x.shape[1]`` channels; training updates the shared statistics in place."""
    c = x.shape[1]
    assert bn.running_mean is not None and bn.running_var is not None
    momentum = 0.0
    if bn.training and bn.track_running_stats:
        assert bn.num_batches_tracked is not None
        bn.num_batches_tracked.add_(1)
        # momentum None means a cumulative average, as in nn.BatchNorm2d (used by BN recalibration).
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    return F.batch_norm(
        x,
        bn.running_mean[:c],
        bn.running_var[:c],
        bn.weight[:c],
        bn.bias[:c],
        training=bn.training or not bn.track_running_stats,
        momentum=momentum,
        eps=bn.eps,
    )


@torch.no_grad()
def copy_bn_slice(src: nn.BatchNorm2d, dst: nn.Module, channels: int, *, with_count: bool = True) -> None:
    """Copy the first ``channels`` of ``src`` (affine, statistics, eps, momentum) into ``dst``.

    ``with_count`` also copies ``num_batches_tracked`` (what a later cumulative-average
    recalibration of ``dst`` starts from).
    """
    assert isinstance(dst, nn.BatchNorm2d)
    assert src.running_mean is not None and src.running_var is not None
    assert dst.running_mean is not None and dst.running_var is not None
    dst.weight.copy_(src.weight[:channels])
    dst.bias.copy_(src.bias[:channels])
    dst.running_mean.copy_(src.running_mean[:channels])
    dst.running_var.copy_(src.running_var[:channels])
    if with_count and src.num_batches_tracked is not None and dst.num_batches_tracked is not None:
        dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dst.eps, dst.momentum = src.eps, src.momentum


@torch.no_grad()
def permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    """Reorder the channels of ``bn`` (affine and statistics) by ``order``."""
    assert bn.running_mean is not None and bn.running_var is not None
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        t.copy_(t[order])
