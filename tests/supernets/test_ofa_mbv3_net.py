"""The ofa-mbv3 supernet: subnet extraction equals the supernet, deploys, traces and exports."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from supernets import Arch, OfaMbv3Space, Supernet
from tests.supernets.conftest import MEAN, STD


def _settled_supernet(space: OfaMbv3Space, x: torch.Tensor, seed: int = 0) -> Supernet:
    """A supernet whose BatchNorm statistics are no longer the initial ones (a few train-mode passes)."""
    torch.manual_seed(seed)
    net = space.build_supernet(mean=MEAN, std=STD)
    rng = np.random.default_rng(seed)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net.set_active(space.sample(rng))
            net(x)
    return net.eval()


def _archs(space: OfaMbv3Space) -> list[Arch]:
    rng = np.random.default_rng(5)
    return [space.largest(), space.smallest(), space.sample(rng), space.sample(rng)]


def test_extracted_subnet_equals_supernet(spec_space: OfaMbv3Space) -> None:
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    net = _settled_supernet(spec_space, x)
    for arch in _archs(spec_space):
        net.set_active(arch)
        with torch.no_grad():
            expected = net(x)
            model = net.extract(arch).eval()
            torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
            Supernet.deploy(model)
            assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
            torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)
        assert all(not type(m).__module__.startswith("supernets") for m in model.modules())
        assert net.active_arch == arch  # extraction leaves the active subnet alone


def test_forward_shapes_and_backward(tiny_space: OfaMbv3Space) -> None:
    net = tiny_space.build_supernet(mean=MEAN, std=STD)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for arch in [tiny_space.largest(), tiny_space.smallest()]:
        net.set_active(arch)
        out = net(x)
        assert out.shape == (3, 10)
        out.sum().backward()
    assert net.stem.conv.weight.grad is not None


def test_set_active_rejects_foreign_arch(spec_space: OfaMbv3Space, tiny_space: OfaMbv3Space) -> None:
    net = spec_space.build_supernet(mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="not in this ofa-mbv3 space"):
        net.set_active(tiny_space.largest())


def test_sort_channels_keeps_the_largest_subnet(spec_space: OfaMbv3Space) -> None:
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    net = _settled_supernet(spec_space, x)
    net.set_active(spec_space.largest())
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        torch.testing.assert_close(net(x), before, rtol=1e-4, atol=1e-4)


def test_extracted_model_traces_scripts_and_exports_to_onnx(spec_space: OfaMbv3Space) -> None:
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    net = _settled_supernet(spec_space, x)
    arch = spec_space.sample(np.random.default_rng(9))
    model = Supernet.deploy(net.extract(arch))
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(x), expected)
        scripted = torch.jit.script(model)
        torch.testing.assert_close(scripted(x), expected)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["images"], output_names=["logits"], dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": x.numpy()})
    np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-4, atol=1e-4)
