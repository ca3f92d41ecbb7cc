"""BatchNorm recalibration: re-estimate running statistics of a (sub)network on training images."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> None:
    """Reset every BatchNorm's statistics to the average over ``images``, then leave ``model`` in eval mode.

    Works on a supernet with an active subnet and on extracted models: weight-shared
    statistics are wrong for any subnet but the one trained last, so every evaluated
    subnet is recalibrated first. Each batch is weighted by its number of images.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"recalibrate_bn needs a non-empty (N, C, H, W) batch of images, got {tuple(images.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
    device = next((p.device for p in model.parameters()), images.device)
    model.train()
    seen = 0
    try:
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device)
            seen += batch.shape[0]
            # An explicit momentum n_batch / n_seen gives the image-weighted cumulative average
            # whether a module honours momentum=None or not.
            for m in norms:
                m.momentum = batch.shape[0] / seen
            model(batch)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
