"""`nas download` end to end: a real subnet exported by the pipeline's exporter, fetched, verified, run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from api.cli import app
from nas.artifacts import ArtifactStore
from nas.schemas import JobStatus
from nas.settings import Settings
from nas.store import Database, crud

FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
runner = CliRunner()


def _fmnist_images(n: int) -> torch.Tensor:
    """The first ``n`` Fashion-MNIST test images as floats in [0, 1], shape (n, 1, 28, 28)."""
    raw = gzip.decompress(FMNIST.read_bytes())
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16)[: n * 28 * 28]
    return torch.from_numpy(pixels.reshape(n, 1, 28, 28).astype(np.float32) / 255.0)


def _finished_job_with_a_subnet(env: Settings, job_id: str, spec: dict[str, Any]) -> int:
    """Write what a finished job leaves behind: the verified subnet's weights, row, latency and front."""
    from supernets import make_space

    torch.manual_seed(0)
    space = make_space(spec["search_space"], in_channels=1, num_classes=10, image_size=28)
    arch = space.smallest()
    model = space.build_supernet(mean=(0.286,), std=(0.353,)).extract(arch).eval()
    obj = ArtifactStore(env.artifact_root).put_torch(
        f"jobs/{job_id}/subnets/{arch.arch_hash}/model.pt", model
    )
    cost = space.total_cost(arch)
    db = Database(env.database_url)
    with db.session() as s:
        crud.add_artifact(
            s, kind="weights", uri=obj.uri, sha256=obj.sha256, size_bytes=obj.size_bytes, job_id=job_id,
            meta={"arch_hash": arch.arch_hash},
        )  # fmt: skip
        sub = crud.upsert_subnet(
            s, job_id=job_id, arch_hash=arch.arch_hash, arch=arch.to_dict(), params=cost.params,
            flops=2 * cost.macs, source="verify", accuracy_val=0.5, accuracy_test=0.49,
        )  # fmt: skip
        crud.put_measurement(
            s, profile="cpu-fp32", arch_hash=arch.arch_hash, resolution=arch.resolution, batch=1,
            stats={"median_ms": 0.4, "p10_ms": 0.38, "p90_ms": 0.45, "n": 20},
        )  # fmt: skip
        crud.save_front(
            s, job_id=job_id, hardware="cpu-fp32", round=2, objectives=spec["objectives"],
            reference_point=[0, 5], hypervolume=0.1, points=[(sub.id, {"accuracy": 0.5}, None)], final=True,
        )  # fmt: skip
        crud.finish_job(s, job_id=job_id, status=JobStatus.succeeded)
        sid = sub.id
    db.dispose()
    return sid


@pytest.mark.integration
@pytest.mark.skipif(
    not FMNIST.is_file(), reason="Fashion-MNIST is not installed (Debian dataset-fashion-mnist)"
)
def test_download_exports_verifies_and_the_model_runs(
    server: str, env: Settings, tmp_path: Path, spec: dict[str, Any]
) -> None:
    pytest.importorskip("supernets.training", reason="the exporter imports the pipeline, which needs it")
    torch.set_num_threads(1)
    assert runner.invoke(app, ["token", "create", "gus"]).exit_code == 0
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    submitted = runner.invoke(app, ["--url", server, "submit", str(spec_file)])
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.output.strip().splitlines()[-1]
    sid = _finished_job_with_a_subnet(env, job_id, spec)

    out = tmp_path / "out"
    result = runner.invoke(app, ["--url", server, "download", job_id, str(sid), "-o", str(out)])
    assert result.exit_code == 0, result.output
    folder = out
    names = {p.name for p in folder.iterdir()}
    assert {"arch.json", "model.ts", "metrics.json", "SHA256SUMS"} <= names
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["latency"]["cpu-fp32"]["median_ms"] == 0.4 and metrics["subnet_id"] == sid

    images = _fmnist_images(4)
    scripted = torch.jit.load(str(folder / "model.ts"))
    with torch.inference_mode():
        logits = scripted(images)
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()

    again = runner.invoke(app, ["--url", server, "download", job_id, str(sid), "-o", str(tmp_path / "again")])
    assert again.exit_code == 0  # the second export reuses the stored bundle
    assert (tmp_path / "again" / f"subnet-{sid}.zip").read_bytes() == (out / f"subnet-{sid}.zip").read_bytes()
