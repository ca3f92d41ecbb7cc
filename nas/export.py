"""Export bundles: a chosen subnet with trained weights, runnable without this package."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.artifacts import ArtifactError, ArtifactStore
from nas.assignment import latest_assignment, member_of
from nas.settings import Settings, get_settings
from nas.store import Database, crud
from nas.store.models import Artifact
from predictors import get_profile

log = logging.getLogger(__name__)
BUNDLE_FORMAT = 1
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: bundles carry no build time


class ExportError(LookupError):
    """The subnet cannot be exported; the message says why."""


def _torchscript(model: nn.Module, example: torch.Tensor) -> bytes:
    try:
        scripted = torch.jit.script(model)
    except Exception:  # scripting rejects some Python constructs; tracing a static net is equivalent
        scripted = torch.jit.trace(model, example, check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    return buf.getvalue()


def _onnx(model: nn.Module, example: torch.Tensor) -> bytes | None:
    """ONNX with a dynamic batch axis; None (and a log line) if the exporter cannot handle the model."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with warnings.catch_warnings():
                # The TorchScript-based exporter handles these static convnets well and fast.
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    model,
                    (example,),
                    str(path),
                    input_names=["images"],
                    output_names=["logits"],
                    dynamo=False,
                    dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                )
        except Exception:
            log.exception("ONNX export failed; the bundle ships TorchScript only")
            return None
        return path.read_bytes()


def _bits_line(arch: dict[str, Any], metrics: dict[str, Any]) -> str:
    bits = [s.get("bits") for s in arch["stages"]]
    if all(b is None for b in bits):
        return "- bit-widths: float (no quantization)"
    shown = ", ".join("float" if b is None or b >= 32 else f"{b}-bit" for b in bits)
    size = metrics.get("size_bytes")
    size_s = f"; weights {size:,} bytes at these bit-widths" if size is not None else ""
    return (
        f"- bit-widths per stage (weights and activations): {shown}{size_s}. `model.ts` is the"
        " fake-quantized float model; `model_int8.ts` runs the integer stages on PyTorch's int8 CPU"
        " kernels (oneDNN, x86) and `model_int8.onnx` is the same model with QuantizeLinear/"
        "DequantizeLinear nodes that onnxruntime runs with its default graph optimizations (each"
        " conv's bias is a separate Add, which onnxruntime's QDQ rewrites leave in float); sub-8-bit"
        " stages are int8 carrying the lower-bit values"
    )


def _model_card(arch: dict[str, Any], metrics: dict[str, Any], job_name: str) -> str:
    c, h, w = metrics["input"]["shape"][1:]
    lat = "\n".join(
        f"| {p} | {v['median_ms']:.3f} | {v['p10_ms']:.3f}-{v['p90_ms']:.3f} "
        f"| {v['batch']} | {v['precision']} |"
        for p, v in metrics["latency"].items()
    )
    acc_test = metrics.get("accuracy_test")
    acc_test_s = f"{acc_test:.4f}" if acc_test is not None else "not measured"
    return f"""# Subnet {metrics["arch_hash"]} of job "{job_name}"

Found by neural architecture search over the `{arch["family"]}` once-for-all search space:
a supernet was trained once, subnets were measured for real (accuracy after BatchNorm
recalibration; latency with warm-up and repeated runs, median reported), predictors guided
the multi-objective search, and this subnet lies on the job's Pareto front.

## Metrics

- validation accuracy: {metrics["accuracy_val"]:.4f}; test accuracy: {acc_test_s}
- parameters: {metrics["params"]:,}; FLOPs: {metrics["flops"]:,}; input resolution {arch["resolution"]}
{_bits_line(arch, metrics)}

| hardware | median ms | p10-p90 ms | batch | precision |
|---|---|---|---|---|
{lat}

## Use

The model takes float images in [0, 1], shape (N, {c}, {h}, {w}), and does its own
normalisation and resizing. It returns class logits.

```python
import torch
model = torch.jit.load("model.ts")
logits = model(images)          # images: float32 (N, {c}, {h}, {w}) in [0, 1]
```

or with onnxruntime: `onnxruntime.InferenceSession("model.onnx").run(None, {{"images": x}})`.

{_mixture_note(metrics)}`state_dict.pt` holds the same weights for fine-tuning with this project's
`kernels` package; `arch.json` the architecture; `SHA256SUMS` the checksums of every file.
"""


def _mixture_note(metrics: dict[str, Any]) -> str:
    mix = metrics.get("mixture")
    if not mix:
        return ""
    return (
        f"## Mixture\n\nThe weights are those of member {mix['member']} of a mixture of {mix['members']} "
        f"supernets trained by `{mix.get('schedule')}`; configuration `{mix['config']}` was assigned to it "
        f"(p = {mix['p_member']:.3f} at temperature {mix['temperature']:.1f}, epoch {mix['epoch']}).\n\n"
    )


def build_bundle(
    model: nn.Module,
    *,
    arch: dict[str, Any],
    metrics: dict[str, Any],
    job_name: str,
    int8: nn.Module | None = None,
) -> bytes:
    """The zip bundle of one deployed subnet.

    With ``int8`` (the integer model of a quantized subnet): ``model_int8.ts`` and ``model_int8.onnx``
    (QuantizeLinear/DequantizeLinear around every integer convolution, runs in onnxruntime).
    """
    model = model.eval()
    shape = metrics["input"]["shape"]
    example = torch.rand(*shape, generator=torch.Generator().manual_seed(0))  # tracing input, fixed
    files: dict[str, bytes] = {
        "arch.json": json.dumps(arch, indent=2, sort_keys=True).encode(),
        "state_dict.pt": _save_state_dict(model),
        "model.ts": _torchscript(model, example),
        "metrics.json": json.dumps(metrics, indent=2, sort_keys=True).encode(),
        "README.md": _model_card(arch, metrics, job_name).encode(),
    }
    if int8 is not None:
        from supernets.int8 import qdq_form

        # a copy: the int8 layers' prepacked weights (built on first use) cannot be saved
        files["model_int8.ts"] = _torchscript(copy.deepcopy(int8).eval(), example)
        int8_onnx = _onnx(qdq_form(int8).eval(), example)
        if int8_onnx is not None:
            files["model_int8.onnx"] = int8_onnx
    onnx_bytes = _onnx(model, example)
    if onnx_bytes is not None:
        files["model.onnx"] = onnx_bytes
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode()
    return _zip(files)


def _zip(files: dict[str, bytes]) -> bytes:
    """A deterministic zip: names sorted, one fixed timestamp and mode, so equal files give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    return buf.getvalue()


def _save_state_dict(model: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def _deployed_model(
    db: Database, store: ArtifactStore, job_id: str, arch_hash: str, settings: Settings
) -> nn.Module:
    """The exact model the job measured (saved at verification), else rebuilt the same way."""
    with db.session() as s:
        saved = [
            a
            for a in crud.list_artifacts(s, job_id=job_id, kind="weights")
            if a.meta.get("arch_hash") == arch_hash
        ]
        stored = (saved[-1].uri, saved[-1].sha256) if saved else None
    if stored is not None:
        try:
            model = store.get_torch(stored[0], sha256=stored[1])
        except ArtifactError:  # corrupt or gone: rebuilt below from the (verified) checkpoint
            log.warning("saved weights %s are unusable; rebuilding the subnet", stored[0], exc_info=True)
        else:
            assert isinstance(model, nn.Module)
            return model
    from nas.pipeline.context import JobContext
    from nas.pipeline.evaluate import deploy_subnet
    from nas.pipeline.state import JobState
    from nas.schemas import JobSpec
    from supernets import Arch

    with db.session() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None
        spec = JobSpec.model_validate(job.spec)
        sub = crud.get_subnet_by_hash(s, job_id=job_id, arch_hash=arch_hash)
        assert sub is not None
        arch = Arch.from_dict(sub.arch)

    def no_measuring(items: Any, profile: str) -> Any:
        raise RuntimeError("export does not measure")

    ctx = JobContext(
        job_id=job_id, spec=spec, settings=settings, db=db, store=store, measure_latency=no_measuring
    )
    return deploy_subnet(JobState(ctx), arch)


def export_subnet(
    *, db: Database, store: ArtifactStore, job_id: str, subnet_id: int, settings: Settings | None = None
) -> Artifact:
    """Build (or reuse) the download bundle of a measured subnet; returns its artifact row."""
    settings = settings or get_settings()
    with db.session() as s:
        job = crud.get_job(s, job_id=job_id)
        sub = crud.get_subnet(s, job_id=job_id, subnet_id=subnet_id)
        if job is None or sub is None:
            raise ExportError(f"job {job_id} has no subnet {subnet_id}")
        built = _stored_bundle(s, store, job_id, subnet_id)
        if built is not None:
            return built
        if crud.latest_front(s, job_id=job_id) is None and job.status.value != "succeeded":
            raise ExportError(f"job {job_id} has not measured any subnet yet; wait for its measure stage")
        spec = job.spec
        latency: dict[str, Any] = {}
        for profile in spec.get("hardware", []):
            m = crud.get_measurement(
                s,
                profile=profile,
                arch_hash=sub.measurement_key,
                resolution=int(sub.arch["resolution"]),
                batch=get_profile(profile).batch_size,
            )
            if m is not None:
                latency[profile] = {
                    "median_ms": m.median_ms,
                    "p10_ms": m.p10_ms,
                    "p90_ms": m.p90_ms,
                    "mean_ms": m.mean_ms,
                    "n": m.n,
                    "batch": m.batch,
                    "precision": profile.rsplit("-", 1)[-1],
                    "device": profile.split("-")[0],
                }
        arch, arch_hash, job_name, owner_id = dict(sub.arch), sub.arch_hash, job.name, job.owner_id
        metrics: dict[str, Any] = {
            "arch_hash": arch_hash,
            "job_id": job_id,
            "subnet_id": subnet_id,
            "accuracy_val": sub.accuracy_val,
            "accuracy_test": sub.accuracy_test,
            "params": sub.params,
            "flops": sub.flops,
            "latency": latency,
            "dataset_hash": job.dataset_hash,
            "bundle_format": BUNDLE_FORMAT,
        }
    assignment = latest_assignment(db, store, job_id)
    mixture = member_of(assignment, arch_hash) if assignment is not None else None
    if mixture is not None:
        metrics["mixture"] = mixture | {"schedule": spec.get("training", {}).get("schedule")}
    model = _deployed_model(db, store, job_id, arch_hash, settings)
    image = _input_shape(spec, settings)
    metrics["input"] = {"shape": [1, *image], "dtype": "float32", "range": [0.0, 1.0], "layout": "NCHW"}
    int8 = _int8_model(model, arch, spec, settings)
    if int8 is not None:
        from supernets import Arch, make_space
        from supernets.bits import size_bytes

        space = make_space(
            spec["search_space"], in_channels=image[0], num_classes=_classes(model), image_size=image[1]
        )
        metrics["size_bytes"] = size_bytes(space, Arch.from_dict(arch))
    data = build_bundle(model, arch=arch, metrics=metrics, job_name=job_name, int8=int8)
    obj = store.put_bytes(f"jobs/{job_id}/bundles/subnet-{subnet_id}-{arch_hash}.zip", data)
    with db.session() as s:
        built = _stored_bundle(s, store, job_id, subnet_id)  # a concurrent request stored it first
        if built is not None:
            return built
        art = crud.add_artifact(
            s,
            kind="bundle",
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
            job_id=job_id,
            owner_id=owner_id,
            meta={"subnet_id": subnet_id, "arch_hash": arch_hash},
        )
        s.flush()
        s.expunge(art)
    return art


def _stored_bundle(s: Any, store: ArtifactStore, job_id: str, subnet_id: int) -> Artifact | None:
    """The subnet's bundle built earlier, if its bytes still verify (a corrupt one is forgotten)."""
    for art in crud.list_artifacts(s, job_id=job_id, kind="bundle"):
        if art.meta.get("subnet_id") != subnet_id:
            continue
        try:
            store.verify(art.uri, art.sha256)
        except ArtifactError:
            log.warning("bundle %s of subnet %s is unusable; building it again", art.id, subnet_id)
            crud.delete_artifact(s, artifact_id=art.id)
            continue
        s.expunge(art)
        return art
    return None


def _classes(model: nn.Module) -> int:
    """Number of classes: the width of the subnet's last linear layer (its classifier)."""
    return int([m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features)


def _int8_model(
    model: nn.Module, arch: dict[str, Any], spec: dict[str, Any], settings: Settings
) -> nn.Module | None:
    """The integer model of a subnet with quantized stages (its learned steps; no calibration), else None."""
    if all(s.get("bits") is None or s["bits"] >= 32 for s in arch["stages"]):
        return None
    from nas.data import load_dataset
    from supernets.int8 import to_int8

    splits = load_dataset(
        {**spec["dataset"], "limit": 256}, data_dir=settings.data_dir, seed=int(spec.get("seed", 0))
    )
    return to_int8(model, splits.calibration_images(256, seed=int(spec.get("seed", 0))))


def _input_shape(spec: dict[str, Any], settings: Settings) -> tuple[int, int, int]:
    from nas.data import load_dataset
    from nas.sources import SourcePolicy

    splits = load_dataset(
        {**spec["dataset"], "limit": 1},
        data_dir=settings.data_dir,
        seed=int(spec.get("seed", 0)),
        sources=SourcePolicy.from_settings(settings),
    )
    return (splits.channels, splits.image_size, splits.image_size)
