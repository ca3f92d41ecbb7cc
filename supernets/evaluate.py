"""Top-1 accuracy of a model on a labelled tensor dataset."""

from __future__ import annotations

import torch
from torch import nn


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
