"""The job spec users submit and the public shapes the API returns (pydantic v2)."""

from __future__ import annotations

import enum
import functools
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The stages of a job in the order they run: the runner runs them by these names, the CLI and the
# dashboard (through GET /v1/meta) show them.
JOB_STAGES = ("data", "train", "measure", "predict", "search", "verify")
Metric = Literal["accuracy", "latency_ms", "params", "flops", "size_bytes"]
METRICS: tuple[str, ...] = get_args(Metric)
# Metrics measured per hardware profile; the others are properties of the architecture.
HARDWARE_METRICS = ("latency_ms",)
# Hard ceilings of the schema itself; the service's own (lower, configurable) limits are
# ``nas.settings.Limits``, checked at submission.
MAX_SEED = 2**63 - 1
MAX_LIST = 1024
# Bit-widths ``search_space.bits`` may list (32 = float); supernets/bits.py holds the same set.
QUANT_BITS = (4, 6, 8, 32)


def hardware_profiles() -> tuple[str, ...]:
    """Names of the hardware profiles (``predictors.hardware.PROFILES``, imported on use: it loads torch)."""
    from predictors.hardware import PROFILES

    return tuple(PROFILES)


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
    val_fraction: float = Field(
        default=0.1,
        ge=0.02,
        le=0.5,
        description="share of the training images held out (seeded) as the validation split every "
        "measured subnet is scored on: more images, less noise in the accuracies the predictor learns",
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


@functools.cache
def _trainer_defaults() -> dict[str, Any]:
    """``TrainConfig``'s defaults, the one place they live (imported on use: it loads torch)."""
    from supernets.training import TrainConfig

    return {k: list(v) if isinstance(v, tuple) else v for k, v in TrainConfig().to_dict().items()}


def _default(name: str) -> Any:
    """A field's default: ``TrainConfig``'s, looked up when a spec leaves the knob out."""
    return Field(default_factory=lambda: _trainer_defaults()[name])


def _schedules() -> tuple[str, ...]:
    """The trainer registry's schedules (imported on use: it loads torch)."""
    from supernets.training import SCHEDULES

    return SCHEDULES


class TrainingSpec(_Spec):
    """How the supernet is trained: the schedule and every knob of ``TrainConfig``.

    A knob left out takes ``TrainConfig``'s default (filled in at validation, so the stored
    spec shows it; ``TrainConfig`` is the one place of the defaults). The bounds here are the
    door's; ``TrainConfig`` checks the rest (e.g. that the progressive-shrinking shares sum to
    1), and a refusal names the field.
    """

    schedule: str = Field(
        default="sandwich",
        min_length=1,
        max_length=64,
        description="a schedule of the trainer registry (GET /v1/meta); when omitted: the family's "
        "default (sandwich; balanced-mixture for pooling-mixture-resnet)",
    )
    epochs: Annotated[int, Field(ge=1, le=100_000)] = _default("epochs")
    batch_size: Annotated[int, Field(ge=1, le=1 << 20)] = _default("batch_size")
    lr: Annotated[float, Field(gt=0, le=100)] = _default("lr")
    momentum: Annotated[float, Field(ge=0, lt=1)] = _default("momentum")
    weight_decay: Annotated[float, Field(ge=0, le=10)] = _default("weight_decay")
    warmup_epochs: Annotated[int, Field(ge=0, le=100_000)] = _default("warmup_epochs")
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = _default("label_smoothing")
    num_random_subnets: Annotated[
        int, Field(ge=0, le=1024, description="random subnets per step (sandwich, DεpS)")
    ] = _default("num_random_subnets")
    distill: Annotated[bool, Field(description="in-place distillation from the largest")] = _default(
        "distill"
    )
    distill_weight: Annotated[float, Field(ge=0, le=1000, description="weight of that distillation")] = (
        _default("distill_weight")
    )
    label_weight: Annotated[
        float,
        Field(
            ge=0, le=1000, description="labels' cross-entropy beside the distillation for the other subnets"
        ),
    ] = _default("label_weight")
    grad_clip: Annotated[float | None, Field(gt=0, le=1e6, description="null: no clipping")] = _default(
        "grad_clip"
    )
    ps_phase_fractions: Annotated[
        list[Annotated[float, Field(ge=0, le=1)]],
        Field(
            min_length=4,
            max_length=4,
            description="progressive shrinking: shares of the epochs of its phases full, kernel, depth, "
            "expand/width (sum 1)",
        ),
    ] = _default("ps_phase_fractions")
    ps_phase_lr_scales: Annotated[
        list[Annotated[float, Field(gt=0, le=100)]],
        Field(min_length=4, max_length=4, description="progressive shrinking: LR scale per phase"),
    ] = _default("ps_phase_lr_scales")
    deps_full_fraction: Annotated[
        float, Field(ge=0, lt=1, description="DεpS: share of steps that train only the full model")
    ] = _default("deps_full_fraction")
    deps_ramp_fraction: Annotated[
        float, Field(gt=0, le=1, description="DεpS: share of steps over which the subnets' scale ramps up")
    ] = _default("deps_ramp_fraction")
    channels_last: Annotated[bool, Field(description="train in NHWC layout (faster on CPU)")] = _default(
        "channels_last"
    )
    anchors: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="sandwich, DεpS: the subnets every step trains and distils from, an anchor "
            "policy of the trainer registry (sandwich: largest + smallest; largest: the largest only)",
        ),
    ] = _default("anchors")
    sampler: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=64,
            description="how a step's subnets are drawn, a sampler of the trainer registry that the "
            "schedule can use (GET /v1/meta); sandwich, DεpS: its random subnets (uniform: every "
            "dimension uniformly; flops-stratified: one per FLOPs stratum, the whole complexity range "
            "every step); balanced-mixture (the only one of that schedule): a configuration uniformly, "
            "then its member from the balanced p(member | configuration); when omitted: the schedule's "
            "default (uniform; balanced-mixture for the balanced mixture)",
        ),
    ] = _default("sampler")
    bn_calibration_images: int = Field(default=2000, ge=1, le=1 << 24)

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        known = _schedules()
        if value not in known:
            raise ValueError(f"unknown training.schedule {value!r}; choose one of {list(known)}")
        return value

    @field_validator("anchors")
    @classmethod
    def _known_anchors(cls, value: str) -> str:
        from supernets.training import anchor_policies

        if value not in anchor_policies():
            raise ValueError(f"unknown training.anchors {value!r}; choose one of {list(anchor_policies())}")
        return value

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str | None) -> str | None:
        from supernets.training import samplers

        if value is not None and value not in samplers():
            raise ValueError(f"unknown training.sampler {value!r}; choose one of {list(samplers())}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSpec:
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            raise ValueError(
                f"training.warmup_epochs ({self.warmup_epochs}) must be below training.epochs ({self.epochs})"
            )
        try:
            self.train_config()
        except ValueError as exc:  # TrainConfig's own checks: "TrainConfig: <field> must ..."
            raise ValueError(f"training.{str(exc).removeprefix('TrainConfig: ')}") from None
        return self

    def knobs(self) -> dict[str, Any]:
        """The ``TrainConfig`` fields of this spec."""
        names = _trainer_defaults()
        return {k: v for k, v in self.model_dump().items() if k in names}

    def train_config(self) -> Any:
        """The trainer's ``TrainConfig`` for this spec (typed ``Any``: the schemas do not import torch)."""
        from supernets.training import TrainConfig

        return TrainConfig(**self.knobs())


class ObjectiveSpec(_Spec):
    """One objective of the search; latency objectives name the hardware they are measured on."""

    metric: Metric
    goal: Literal["max", "min"]
    hardware: str | None = Field(default=None, max_length=32)

    @property
    def key(self) -> str:
        """A column name for this objective, e.g. ``accuracy`` or ``latency_ms@cpu-fp32``."""
        return self.metric if self.hardware is None else f"{self.metric}@{self.hardware}"


class ConstraintSpec(_Spec):
    """A bound a subnet on the front must satisfy."""

    metric: Metric
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
    initial_sample: Literal["flops-stratified", "uniform"] = Field(
        default="flops-stratified",
        description="how the measure stage draws its initial sample (after the largest and smallest): "
        "'flops-stratified', one subnet per stratum of log-FLOPs, so the predictors are fitted and "
        "cross-validated over the whole complexity range; 'uniform', each choice uniformly (most "
        "subnets then crowd the middle of the range)",
    )
    engine: Literal["optuna", "vectorised"] = Field(
        default="optuna", description="'vectorised' runs NSGA-II on arrays, much faster than Optuna's trials"
    )
    measure_budget: int = Field(
        default=200, ge=1, le=1 << 24, description="real measurements, initial sample included"
    )
    initial_measurements: int | None = Field(
        default=None,
        ge=2,
        le=1 << 24,
        description="how many of measure_budget the initial sample spends (the largest and the "
        "smallest subnet included) before the search rounds; the predictors are fitted and "
        "cross-validated on these. Default: half the budget (all of it with rounds: 0)",
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
        if self.initial_measurements is not None and self.initial_measurements > self.measure_budget:
            raise ValueError(
                f"search.initial_measurements ({self.initial_measurements}) is more than "
                f"search.measure_budget ({self.measure_budget}); lower it or raise the budget"
            )
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
    hardware: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=lambda: ["cpu-fp32"],
        min_length=1,
        max_length=64,
        description="hardware profiles to measure on (GET /v1/meta lists them), each once",
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
        known = hardware_profiles()
        unknown = [h for h in value if h not in known]
        if unknown:
            raise ValueError(f"unknown hardware profile(s) {unknown}; choose from {list(known)}")
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
