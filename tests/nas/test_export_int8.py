"""Bundles of quantized subnets: the fake-quantized model, the int8 TorchScript (loads in a clean process)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from kernels.fuse import reparameterize_model
from nas.export import build_bundle
from supernets import Arch, make_space, recalibrate_bn
from supernets.bits import with_bits
from supernets.int8 import Int8Conv, to_int8
from tests.nas.test_export import SPACE


def quantized_bundle(
    *, seed: int, largest: bool, bits: list[int]
) -> tuple[Arch, nn.Module, nn.Module, bytes]:
    """A subnet of random weights with its stages at ``bits``, BatchNorm recalibrated: its folded model,
    its int8 model, and the bundle built from both."""
    torch.manual_seed(seed)
    space = make_space(SPACE | {"bits": [4, 8, 32]}, in_channels=1, num_classes=10, image_size=28)
    net = space.build_supernet(mean=(0.3,), std=(0.35,))
    base = space.largest() if largest else space.smallest()
    arch = with_bits(base, bits[: len(base.stages)])
    model = net.extract(arch)
    images = torch.rand(64, 1, 28, 28)
    recalibrate_bn(model, images)
    int8 = to_int8(model, images)
    model = reparameterize_model(model.eval())
    metrics = {
        "arch_hash": arch.arch_hash,
        "accuracy_val": 0.5,
        "accuracy_test": None,
        "params": 1,
        "flops": 2,
        "size_bytes": 3,
        "latency": {},
        "input": {"shape": [1, 1, 28, 28]},
    }
    blob = build_bundle(model, arch=arch.to_dict(), metrics=metrics, job_name="q", int8=int8)
    return arch, model, int8, blob


def test_quantized_bundle_carries_bits_and_an_int8_model_that_loads_anywhere(tmp_path: Path) -> None:
    arch, model, int8, blob = quantized_bundle(seed=0, largest=True, bits=[8, 4, 32, 8])
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert {"model.ts", "model_int8.ts", "model_int8.onnx", "arch.json", "state_dict.pt"} <= set(
        zf.namelist()
    )
    assert [s["bits"] for s in json.loads(zf.read("arch.json"))["stages"]] == [s.bits for s in arch.stages]
    card = zf.read("README.md").decode()
    assert "bit-widths per stage" in card and "8-bit" in card and "model_int8.ts" in card
    x = torch.rand(5, 1, 28, 28)
    with torch.inference_mode():
        fake = torch.jit.load(io.BytesIO(zf.read("model.ts")))
        torch.testing.assert_close(fake(x), model(x), rtol=1e-4, atol=1e-4)
        expected = int8(x)
    (tmp_path / "model_int8.ts").write_bytes(zf.read("model_int8.ts"))
    torch.save(x, tmp_path / "x.pt")
    script = (
        "import torch\n"
        "def kinds(block):\n"  # node kinds, nested blocks (if/else bodies) included
        "    return {k for n in block.nodes() for k in {n.kind()}.union(*map(kinds, n.blocks()))}\n"
        "m = torch.jit.load('model_int8.ts'); x = torch.load('x.pt')\n"
        "names = kinds(m.inlined_graph)\n"
        "assert 'onednn::qconv2d_pointwise' in names, names\n"
        "torch.save(m(x), 'y.pt')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, env={"PATH": "/usr/bin:/bin"})
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=1e-4, atol=1e-4)


def test_int8_onnx_has_qdq_nodes_and_onnxruntime_matches_the_int8_model(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    _, _, int8, blob = quantized_bundle(seed=1, largest=False, bits=[8, 4, 8, 32])
    data = zipfile.ZipFile(io.BytesIO(blob)).read("model_int8.onnx")
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    convs = sum(isinstance(m, Int8Conv) for m in int8.modules())
    assert ops.count("QuantizeLinear") >= convs and ops.count("DequantizeLinear") >= convs > 0
    x = torch.rand(7, 1, 28, 28)
    with torch.inference_mode():
        expected = int8(x)
    # the graph as exported and with onnxruntime's default rewrites (which quantize a conv's float
    # bias input to int32; the QDQ form adds the bias after the conv, else the logits moved by 12-54%)
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"images": x.numpy()})
        # the same integers; a value within float rounding of a half step may round the other way
        assert float((torch.from_numpy(got) - expected).abs().max()) <= 1e-2 * float(expected.abs().max())
