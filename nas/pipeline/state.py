"""What a job's stages hand on to each other within one run; every piece can be rebuilt from storage.

Within one run each stage takes what the previous one produced (the trained supernet, the pool of
measured subnets, the fitted predictors, the reference point) from here; storage is read back only
for what an earlier attempt produced (a resume).
"""

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
from predictors import Predictor, get_profile
from supernets import Arch, SearchSpace, Supernet, make_space
from supernets.bits import size_bytes

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
    """Data, search space and supernet of one job, and what its stages produced in this run."""

    ctx: JobContext
    _supernet: Supernet | None = field(default=None, repr=False)
    _pool: dict[str, SubnetRecord] | None = field(default=None, repr=False)
    # Set by the predict stage: one fitted predictor per learned metric key.
    predictors: dict[str, Predictor] = field(default_factory=dict, repr=False)
    # Set by the measure stage: the job's fixed hypervolume reference point.
    reference: list[float] | None = None

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

    def hand_on(self, supernet: Supernet) -> None:
        """Keep the supernet the train stage just trained for the next stages (no reload).

        Put in the layout and mode a load from its checkpoint gives, so that what follows is
        the same whether this run trained it or a resumed run loads it.
        """
        supernet.zero_grad(set_to_none=True)
        supernet.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        supernet.eval()
        self._supernet = supernet

    def trained_supernet(self) -> Supernet:
        """The trained supernet: the one the train stage handed on, else its last checkpoint (a resume)."""
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

    @property
    def pool(self) -> dict[str, SubnetRecord]:
        """Every subnet this job measured, by arch hash in measurement order; stages add to it.

        Read from storage once per run (what earlier attempts measured), then kept in memory.
        """
        if self._pool is None:
            self._pool = {r.arch.arch_hash: r for r in self._stored_records()}
        return self._pool

    def record(
        self,
        *,
        subnet_id: int,
        arch: Arch,
        accuracy_val: float,
        latency_ms: dict[str, float],
        accuracy_test: float | None = None,
        predicted: dict[str, float] | None = None,
    ) -> SubnetRecord:
        """A measured subnet with the costs its arch implies."""
        cost = self.space.total_cost(arch)
        return SubnetRecord(
            subnet_id,
            arch,
            float(accuracy_val),
            latency_ms,
            cost.params,
            cost.macs,
            None if accuracy_test is None else float(accuracy_test),
            predicted=predicted,
            size_bytes=size_bytes(self.space, arch),
        )

    def stored_latency(self, arch: Arch, profiles: list[str]) -> dict[str, float]:
        """The shared table's latencies of ``arch`` in this geometry, for the profiles measured."""
        mhash = self.measurement_hash(arch)
        with self.ctx.db.read() as s:
            rows = {
                p: crud.get_measurement(
                    s, profile=p, arch_hash=mhash, resolution=arch.resolution, batch=get_profile(p).batch_size
                )
                for p in profiles
            }
        return {p: m.median_ms for p, m in rows.items() if m is not None}

    def _stored_records(self) -> list[SubnetRecord]:
        """What earlier attempts of this job measured completely (accuracy and every latency)."""
        profiles = list(self.ctx.spec.hardware)
        with self.ctx.db.read() as s:
            rows = [
                (r.id, r.arch, r.accuracy_val, r.accuracy_test, r.predicted)
                for r in crud.list_subnets(s, job_id=self.ctx.job_id)
                if r.accuracy_val is not None
            ]
        out: list[SubnetRecord] = []
        for sid, data, acc_val, acc_test, predicted in rows:
            arch = Arch.from_dict(data)
            latency = self.stored_latency(arch, profiles)
            if len(latency) == len(profiles):
                out.append(
                    self.record(
                        subnet_id=sid,
                        arch=arch,
                        accuracy_val=acc_val,
                        latency_ms=latency,
                        accuracy_test=acc_test,
                        predicted=predicted,
                    )
                )
        return out
