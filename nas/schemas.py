"""The job spec users submit and the public shapes the API returns (pydantic v2)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HARDWARE_PROFILES = ("cpu-fp32", "cpu-int8", "cuda-fp32", "cuda-fp16")
METRICS = ("accuracy", "latency_ms", "params", "flops", "size_bytes")
# Metrics measured per hardware profile; the others are properties of the architecture.
HARDWARE_METRICS = ("latency_ms",)
# Hard ceilings of the schema itself; the service's own (lower, configurable) limits are
# ``nas.settings.Limits``, checked at submission.
MAX_SEED = 2**63 - 1
MAX_LIST = 1024
# Bit-widths ``search_space.bits`` may list (32 = float); supernets/bits.py holds the same set.
QUANT_BITS = (4, 6, 8, 32)


class JobStatus(enum.StrEnum):
    """Where a job is in its life; the last three are final."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class _Spec(BaseModel):
    """Spec parts reject unknown keys so that typos are caught at submission, and NaN or infinities."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DatasetSpec(_Spec):
    """Where the images come from: a built-in set, an ``.npz`` file, or a folder of class folders."""

    kind: Literal["builtin", "npz", "image-folder"] = "builtin"
    name: str | None = Field(default=None, min_length=1, max_length=64)
    uri: str | None = Field(default=None, min_length=1, max_length=4096)
    limit: int | None = Field(
        default=None, ge=1, le=2**31, description="cap on images per split (tiny jobs, tests)"
    )

    @model_validator(mode="after")
    def _source_named(self) -> DatasetSpec:
        if self.kind == "builtin" and not self.name:
            raise ValueError("dataset.name is required for kind 'builtin' (e.g. name: fashion-mnist)")
        if self.kind != "builtin" and not self.uri:
            raise ValueError(f"dataset.uri is required for kind {self.kind!r} (a path or fsspec URL)")
        return self


class SearchSpaceSpec(BaseModel):
    """The family and its choices; fields other than ``family`` are validated by the family itself."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    family: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _bits_known(self) -> SearchSpaceSpec:
        bits = (self.model_extra or {}).get("bits")
        if bits is None:
            return self
        rule = f"a non-empty list of distinct bit-widths from {list(QUANT_BITS)} (32 = float)"
        if not isinstance(bits, list) or not bits or any(isinstance(b, bool) for b in bits):
            raise ValueError(f"search_space.bits must be {rule}, got {bits!r}")
        bad = [b for b in bits if b not in QUANT_BITS]
        if bad or len(set(bits)) != len(bits):
            raise ValueError(f"search_space.bits {bits!r} is not {rule}")
        return self

    def options(self) -> dict[str, Any]:
        """The family's own settings (everything but ``family``)."""
        return {k: v for k, v in self.model_dump().items() if k != "family"}


class TrainingSpec(_Spec):
    """How the supernet is trained; knobs not given keep the trainer's defaults."""

    schedule: Literal["sandwich", "progressive-shrinking", "deps", "standalone", "balanced-mixture"] = Field(
        default="sandwich",
        description="when omitted: the family's default "
        "(sandwich; balanced-mixture for pooling-mixture-resnet)",
    )
    epochs: int = Field(default=30, ge=1, le=100_000)
    batch_size: int = Field(default=256, ge=1, le=1 << 20)
    lr: float = Field(default=0.1, gt=0, le=100)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=3e-5, ge=0, le=10)
    warmup_epochs: int = Field(default=0, ge=0, le=100_000)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    num_random_subnets: int = Field(
        default=2, ge=0, le=1024, description="random subnets per step (sandwich)"
    )
    distill_weight: float = Field(
        default=1.0, ge=0, le=1000, description="in-place distillation from the largest"
    )
    label_weight: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="labels' cross-entropy beside the distillation for the other subnets",
    )
    grad_clip: float | None = Field(default=None, gt=0, le=1e6)
    bn_calibration_images: int = Field(default=2000, ge=1, le=1 << 24)

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainingSpec:
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            raise ValueError(
                f"training.warmup_epochs ({self.warmup_epochs}) must be below training.epochs ({self.epochs})"
            )
        return self


class ObjectiveSpec(_Spec):
    """One objective of the search; latency objectives name the hardware they are measured on."""

    metric: Literal["accuracy", "latency_ms", "params", "flops", "size_bytes"]
    goal: Literal["max", "min"]
    hardware: str | None = Field(default=None, max_length=32)

    @property
    def key(self) -> str:
        """A column name for this objective, e.g. ``accuracy`` or ``latency_ms@cpu-fp32``."""
        return self.metric if self.hardware is None else f"{self.metric}@{self.hardware}"


class ConstraintSpec(_Spec):
    """A bound a subnet on the front must satisfy."""

    metric: Literal["accuracy", "latency_ms", "params", "flops", "size_bytes"]
    hardware: str | None = Field(default=None, max_length=32)
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> ConstraintSpec:
        if self.max is None and self.min is None:
            raise ValueError(f"constraint on {self.metric!r} needs 'max' or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"constraint on {self.metric!r}: min {self.min} is above max {self.max}")
        return self


class TargetSpec(_Spec):
    """A named deployment target: its own constraints (e.g. a tighter latency budget) and its own front.

    Every target's front is drawn from the job's one pool of measured subnets, so several
    budgets or profiles cost one supernet and one set of measurements.
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
    constraints: list[ConstraintSpec] = Field(min_length=1, max_length=MAX_LIST)


class SearchSpec(_Spec):
    """The multi-objective search over the predictors, and how many real measurements it may spend."""

    algorithm: Literal["nsga2", "tpe", "random"] = "nsga2"
    engine: Literal["optuna", "vectorised"] = Field(
        default="optuna", description="'vectorised' runs NSGA-II on arrays, much faster than Optuna's trials"
    )
    measure_budget: int = Field(
        default=200, ge=1, le=1 << 24, description="real measurements, initial sample included"
    )
    rounds: int = Field(
        default=4, ge=0, le=10_000, description="search-measure-refit rounds (0: the initial sample only)"
    )
    population: int = Field(default=64, ge=2, le=1 << 20)
    generations: int = Field(
        default=10, ge=1, le=100_000, description="generations per round on the predictors"
    )

    @model_validator(mode="after")
    def _engine_fits(self) -> SearchSpec:
        if self.engine == "vectorised" and self.algorithm != "nsga2":
            raise ValueError(
                f"search.engine 'vectorised' runs nsga2 only, not {self.algorithm!r}; use engine: optuna"
            )
        if self.engine == "vectorised" and self.population < 4:
            raise ValueError(f"search.population must be >= 4 for engine 'vectorised', got {self.population}")
        return self


class JobSpec(_Spec):
    """Everything a search job needs: data, space, training, hardware, objectives, search."""

    name: str = Field(min_length=1, max_length=200)
    dataset: DatasetSpec
    search_space: SearchSpaceSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    hardware: list[str] = Field(
        default_factory=lambda: ["cpu-fp32"], min_length=1, max_length=len(HARDWARE_PROFILES)
    )
    objectives: list[ObjectiveSpec] = Field(min_length=1, max_length=64)
    constraints: list[ConstraintSpec] = Field(default_factory=list, max_length=MAX_LIST)
    targets: list[TargetSpec] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="extra fronts under their own constraints, e.g. latency budgets 1, 2 and 4 ms",
    )
    search: SearchSpec = Field(default_factory=SearchSpec)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value: list[str]) -> list[str]:
        unknown = [h for h in value if h not in HARDWARE_PROFILES]
        if unknown:
            raise ValueError(f"unknown hardware profile(s) {unknown}; choose from {list(HARDWARE_PROFILES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"hardware lists a profile twice: {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        named = [("objectives", i, o.metric, o.hardware) for i, o in enumerate(self.objectives)]
        named += [("constraints", i, c.metric, c.hardware) for i, c in enumerate(self.constraints)]
        named += [
            (f"targets[{t}].constraints", i, c.metric, c.hardware)
            for t, target in enumerate(self.targets)
            for i, c in enumerate(target.constraints)
        ]
        for field, i, metric, hardware in named:
            where = f"{field}[{i}]"
            if metric in HARDWARE_METRICS and hardware is None:
                raise ValueError(f"{where}.hardware is required for {metric!r}; use one of {self.hardware}")
            if metric not in HARDWARE_METRICS and hardware is not None:
                raise ValueError(f"{where}.hardware must be omitted: {metric!r} does not depend on hardware")
            if hardware is not None and hardware not in self.hardware:
                raise ValueError(
                    f"{where}.hardware {hardware!r} is not listed in hardware {self.hardware}; add it there"
                )
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"targets repeat a name: {names}; give each target its own name")
        keys = [o.key for o in self.objectives]
        if len(set(keys)) != len(keys):
            raise ValueError(f"objectives repeat a metric: {keys}")
        if len(self.objectives) < 2:
            raise ValueError(
                "objectives needs at least 2 entries (e.g. accuracy max and latency_ms min): "
                "a Pareto search trades one objective against another"
            )
        return self


class JobPublic(BaseModel):
    """A job as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: JobStatus
    stage: str | None
    progress: float
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]


class JobList(BaseModel):
    items: list[JobPublic]
    count: int


class EventPublic(BaseModel):
    """One entry of a job's event log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ts: datetime
    kind: str
    stage: str | None
    payload: dict[str, Any]


class LatencyPublic(BaseModel):
    median_ms: float
    p10_ms: float | None
    p90_ms: float | None
    n: int
    node: dict[str, Any] | None = Field(
        default=None,
        description="where it was timed: hostname, CPU model, pid and, on Ray, ray_node_id and node_ip",
    )


class SubnetPublic(BaseModel):
    """A measured subnet; ``latency`` maps a hardware profile to its measurement."""

    id: int
    arch_hash: str
    arch: dict[str, Any]
    params: int
    flops: int
    accuracy_val: float | None
    accuracy_test: float | None
    latency: dict[str, LatencyPublic]
    on_front: bool
    source: str
    predicted: dict[str, Any] | None


class HypervolumePoint(BaseModel):
    round: int
    hypervolume: float | None


class ParetoPublic(BaseModel):
    """The job's latest Pareto front and how its hypervolume grew over the rounds."""

    job_id: str
    target: str | None = Field(
        default=None, description="the spec target this front answers; None: the job's"
    )
    targets: list[str] = Field(default_factory=list, description="targets with a front of their own")
    objectives: list[Any]
    reference_point: list[float] | None
    hypervolume: float | None
    history: list[HypervolumePoint]
    points: list[SubnetPublic]


class ArtifactPublic(BaseModel):
    id: str
    kind: str
    sha256: str
    size_bytes: int
    download_url: str


class TokenCreated(BaseModel):
    user: str
    token: str
