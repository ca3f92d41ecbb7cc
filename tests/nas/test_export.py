from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import onnxruntime as ort
import torch

from kernels.fuse import reparameterize_model
from nas.export import build_bundle
from supernets import make_space, recalibrate_bn
from tests.nas.conftest import SMALL_SPACE

SPACE = SMALL_SPACE


def test_bundle_runs_without_the_project_and_agrees_across_runtimes() -> None:
    torch.manual_seed(0)
    space = make_space(SPACE, in_channels=1, num_classes=10, image_size=28)
    net = space.build_supernet(mean=(0.3,), std=(0.35,))
    arch = space.sample(np.random.default_rng(1))
    arch = type(arch)(family=arch.family, resolution=20, stages=arch.stages)  # resizing path exercised
    model = net.extract(arch)
    recalibrate_bn(model, torch.rand(64, 1, 28, 28))
    model = reparameterize_model(model.eval())
    metrics = {
        "arch_hash": arch.arch_hash,
        "accuracy_val": 0.5,
        "accuracy_test": 0.5,
        "params": 1,
        "flops": 2,
        "latency": {
            "cpu-fp32": {"median_ms": 1.0, "p10_ms": 0.9, "p90_ms": 1.1, "batch": 1, "precision": "fp32"}
        },
        "input": {"shape": [1, 1, 28, 28]},
    }
    blob = build_bundle(model, arch=arch.to_dict(), metrics=metrics, job_name="t")
    zf = zipfile.ZipFile(io.BytesIO(blob))
    names = set(zf.namelist())
    assert {
        "arch.json",
        "state_dict.pt",
        "model.ts",
        "model.onnx",
        "metrics.json",
        "README.md",
        "SHA256SUMS",
    } == names
    for line in zf.read("SHA256SUMS").decode().splitlines():
        digest, name = line.split()
        assert hashlib.sha256(zf.read(name)).hexdigest() == digest
    assert json.loads(zf.read("arch.json"))["resolution"] == 20
    assert "torch.jit.load" in zf.read("README.md").decode()

    x = torch.rand(5, 1, 28, 28)
    with torch.inference_mode():
        expected = model(x)
        scripted = torch.jit.load(io.BytesIO(zf.read("model.ts")))
        torch.testing.assert_close(scripted(x), expected, rtol=1e-5, atol=1e-5)
    session = ort.InferenceSession(zf.read("model.onnx"))
    (onnx_out,) = session.run(None, {"images": x.numpy()})
    np.testing.assert_allclose(onnx_out, expected.numpy(), rtol=1e-4, atol=1e-4)
    state = torch.load(io.BytesIO(zf.read("state_dict.pt")))
    assert set(state) == set(model.state_dict())
