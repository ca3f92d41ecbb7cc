"""Preprocess: normalisation and resizing that every exported model carries, in eager, TorchScript, ONNX."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from kernels.preprocess import Preprocess


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(3, 2, 28, 28, generator=torch.Generator().manual_seed(0))


def test_normalises_then_resizes(images: torch.Tensor) -> None:
    pre = Preprocess(mean=(0.5, 0.25), std=(0.2, 0.4), resolution=20)
    out = pre(images)
    mean = torch.tensor([0.5, 0.25]).reshape(1, 2, 1, 1)
    std = torch.tensor([0.2, 0.4]).reshape(1, 2, 1, 1)
    expected = F.interpolate((images - mean) / std, size=(20, 20), mode="bilinear", align_corners=False)
    assert out.shape == (3, 2, 20, 20)
    torch.testing.assert_close(out, expected)
    same = Preprocess(mean=(0.5, 0.25), std=(0.2, 0.4), resolution=28)
    torch.testing.assert_close(same(images), (images - mean) / std)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="one value per image channel"):
        Preprocess(mean=(0.5,), std=(0.2, 0.3), resolution=28)
    with pytest.raises(ValueError, match="std must be positive"):
        Preprocess(mean=(0.5,), std=(0.0,), resolution=28)
    with pytest.raises(ValueError, match="resolution"):
        Preprocess(mean=(0.5,), std=(0.2,), resolution=0)


def test_scripts_and_exports_to_onnx(images: torch.Tensor) -> None:
    pre = Preprocess(mean=(0.5, 0.25), std=(0.2, 0.4), resolution=24).eval()
    expected = pre(images)
    torch.testing.assert_close(torch.jit.script(pre)(images), expected)
    buffer = io.BytesIO()
    torch.onnx.export(pre, (images,), buffer, input_names=["images"], dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"images": images.numpy()})
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-5, atol=1e-5)
