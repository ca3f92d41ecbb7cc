"""Scoring a subnet: the one protocol the pipeline and every benchmark use, and top-1 accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from kernels.fuse import reparameterize_model
from supernets.bn import recalibrate_bn

if TYPE_CHECKING:
    from supernets.arch import Arch
    from supernets.supernet import Supernet


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> float:
    """Share of ``x`` (float [0, 1], N x C x H x W) that ``model`` in eval mode classifies as ``y``."""
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"need as many labels as images (and at least one), got {x.shape[0]} and {y.shape[0]}"
        )
    model.eval()
    device = next((p.device for p in model.parameters()), x.device)
    correct = 0
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start : start + batch_size].to(device))
            correct += int((logits.argmax(dim=1).cpu() == y[start : start + batch_size].cpu()).sum())
    return correct / x.shape[0]


def calibrated_subnet(supernet: Supernet, arch: Arch, calibration: torch.Tensor) -> nn.Module:
    """The static subnet of ``arch`` extracted from the supernet, BatchNorm recalibrated on
    ``calibration`` images, in eval mode, not yet reparameterized (what ``to_int8`` converts)."""
    model = supernet.extract(arch)
    recalibrate_bn(model, calibration)
    return model.eval()


def deployed_subnet(supernet: Supernet, arch: Arch, calibration: torch.Tensor) -> nn.Module:
    """The static subnet of ``arch`` as it is scored and deployed: :func:`calibrated_subnet`,
    reparameterized (BatchNorm folded, multi-branch blocks merged)."""
    return reparameterize_model(calibrated_subnet(supernet, arch, calibration))


def score_subnet(
    supernet: Supernet, arch: Arch, calibration: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> float:
    """Top-1 accuracy on ``(x, y)`` of ``arch``'s deployed subnet (:func:`deployed_subnet`)."""
    return evaluate_accuracy(deployed_subnet(supernet, arch, calibration), x, y)
