"""What a job's stages share in memory within one run; every piece can be rebuilt from storage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from nas.artifacts import ArtifactError
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

    def load_checkpoint(self) -> tuple[Any, dict[str, Any]] | None:
        """The newest checkpoint whose bytes match their recorded sha256, with its loaded state.

        A newest checkpoint that is missing or corrupt (a torn write, a bad disk) is dropped, with
        an event saying so, and the one of the epoch before is tried: training then redoes the
        dropped epoch from there instead of loading bad weights.
        """
        with self.ctx.db.read() as s:
            rows = crud.list_artifacts(s, job_id=self.ctx.job_id, kind=CHECKPOINT)
            for row in rows:
                s.expunge(row)
        # Newest epoch first; of two rows for one epoch (redone after a fallback) the later one.
        rows.sort(key=lambda r: (int((r.meta or {}).get("epoch", 0)), r.created_at, r.id), reverse=True)
        for row in rows:
            try:
                state = self.ctx.store.get_torch(row.uri, sha256=row.sha256)
            except ArtifactError as exc:
                epoch = int((row.meta or {}).get("epoch", 0))
                with self.ctx.db.session() as s:
                    crud.delete_artifact(s, artifact_id=row.id)
                    crud.add_event(
                        s,
                        job_id=self.ctx.job_id,
                        kind="log",
                        stage="train",
                        payload={
                            "message": f"checkpoint of epoch {epoch} is unusable ({exc}); "
                            "falling back to the previous epoch's",
                            "checkpoint_epoch": epoch,
                        },
                    )
                continue
            assert isinstance(state, dict)
            return row, state
        return None

    def trained_supernet(self) -> Supernet:
        """The supernet with the weights of the last checkpoint (training must be complete)."""
        if self._supernet is None:
            loaded = self.load_checkpoint()
            if loaded is None:
                raise RuntimeError(
                    f"job {self.ctx.job_id} has no supernet checkpoint; the train stage must run first"
                )
            net = self.new_supernet()
            net.load_state_dict(loaded[1]["model"])
            net.eval()
            self._supernet = net
        return self._supernet

    def measurement_hash(self, arch: Arch) -> str:
        """Key of an arch's latency in the shared measurement table: the arch within this geometry."""
        return hashlib.sha256(f"{self.space_key}:{arch.arch_hash}".encode()).hexdigest()[:16]
