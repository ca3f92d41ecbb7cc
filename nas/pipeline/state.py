"""What a job's stages share in memory within one run; every piece can be rebuilt from storage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from nas.data import DatasetSplits, load_dataset
from nas.pipeline.context import JobContext
from nas.sources import SourcePolicy
from nas.store import crud
from supernets import Arch, SearchSpace, Supernet, make_space

CHECKPOINT = "checkpoint"


@dataclass
class SubnetRecord:
    """One measured subnet: its row id, accuracy and latency per hardware profile."""

    subnet_id: int
    arch: Arch
    accuracy_val: float
    latency_ms: dict[str, float]
    params: int
    macs: int
    accuracy_test: float | None = None
    predicted: dict[str, float] | None = None
    size_bytes: int = 0  # weights at their bit-widths (supernets.bits.size_bytes)

    def objective(self, metric: str, hardware: str | None = None) -> float:
        if metric == "accuracy":
            return self.accuracy_val
        if metric == "latency_ms":
            assert hardware is not None
            return self.latency_ms[hardware]
        if metric == "params":
            return float(self.params)
        if metric == "flops":
            return float(2 * self.macs)
        if metric == "size_bytes":
            return float(self.size_bytes)
        raise ValueError(f"unknown metric {metric!r}")


@dataclass
class JobState:
    """Lazily loaded data, search space and supernet of one job."""

    ctx: JobContext
    _supernet: Supernet | None = field(default=None, repr=False)

    @cached_property
    def splits(self) -> DatasetSplits:
        return load_dataset(
            self.ctx.spec.dataset.model_dump(),
            data_dir=self.ctx.settings.data_dir,
            seed=self.ctx.spec.seed,
            sources=SourcePolicy.from_settings(self.ctx.settings),
        )

    @cached_property
    def space(self) -> SearchSpace:
        return make_space(
            self.ctx.spec.search_space.model_dump(),
            in_channels=self.splits.channels,
            num_classes=self.splits.num_classes,
            image_size=self.splits.image_size,
        )

    @cached_property
    def space_key(self) -> str:
        """Identifies the space's geometry: latency measurements are shared only within one."""
        text = json.dumps(self.space.describe(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def calibration_images(self) -> torch.Tensor:
        return self.splits.calibration_images(
            self.ctx.spec.training.bn_calibration_images, seed=self.ctx.spec.seed
        )

    def new_supernet(self) -> Supernet:
        torch.manual_seed(self.ctx.spec.seed)
        return self.space.build_supernet(mean=self.splits.mean, std=self.splits.std)

    def latest_checkpoint(self) -> Any | None:
        with self.ctx.db.read() as s:
            rows = crud.list_artifacts(s, job_id=self.ctx.job_id, kind=CHECKPOINT)
            if not rows:
                return None
            best = max(rows, key=lambda r: int((r.meta or {}).get("epoch", 0)))
            s.expunge(best)
            return best

    def trained_supernet(self) -> Supernet:
        """The supernet with the weights of the last checkpoint (training must be complete)."""
        if self._supernet is None:
            ckpt = self.latest_checkpoint()
            if ckpt is None:
                raise RuntimeError(
                    f"job {self.ctx.job_id} has no supernet checkpoint; the train stage must run first"
                )
            state = self.ctx.store.get_torch(ckpt.uri)
            assert isinstance(state, dict)
            net = self.new_supernet()
            net.load_state_dict(state["model"])
            net.eval()
            self._supernet = net
        return self._supernet

    def measurement_hash(self, arch: Arch) -> str:
        """Key of an arch's latency in the shared measurement table: the arch within this geometry."""
        return hashlib.sha256(f"{self.space_key}:{arch.arch_hash}".encode()).hexdigest()[:16]
