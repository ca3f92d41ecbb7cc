"""Service settings, read from the environment (prefix ``NAS_``) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Limits(BaseModel):
    """Upper bounds on what one job may ask for, checked at submission (``NAS_LIMITS__EPOCHS=50``...)."""

    epochs: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=8192, ge=1)
    warmup_epochs: int = Field(default=100, ge=0)
    num_random_subnets: int = Field(default=64, ge=0)
    bn_calibration_images: int = Field(default=100_000, ge=1)
    population: int = Field(default=4096, ge=4)
    generations: int = Field(default=1000, ge=1)
    rounds: int = Field(default=100, ge=0)
    measure_budget: int = Field(default=20_000, ge=1)
    objectives: int = Field(default=8, ge=2)
    constraints: int = Field(default=32, ge=0)
    targets: int = Field(default=32, ge=0)
    constraints_per_target: int = Field(default=16, ge=1)
    dataset_limit: int = Field(default=10_000_000, ge=1)
    name_length: int = Field(default=200, ge=1, le=200, description="job names (the column holds 200)")
    space_choices: int = Field(default=16, ge=1, description="entries of one search_space choice list")
    space_stages: int = Field(default=16, ge=1)
    space_int: int = Field(default=4096, ge=1, description="largest number in the family's options")
    body_bytes: int = Field(default=1 << 20, ge=1024, description="largest request body")
    dataset_bytes: int = Field(default=4 << 30, ge=1, description="largest dataset file a job may name")


class Settings(BaseSettings):
    """Where the service keeps its state and how it schedules work."""

    model_config = SettingsConfigDict(env_prefix="NAS_", extra="ignore", env_nested_delimiter="__")

    database_url: str = Field(default="sqlite:///./var/nas.db", description="SQLAlchemy URL")
    artifact_root: str = Field(default="./var/artifacts", description="fsspec URL or local directory")
    data_dir: Path = Field(default=Path("/usr/share/datasets"), description="where built-in datasets live")
    upload_dir: Path = Field(
        default=Path("./var/data"), description="a data root for users' own datasets (npz files, folders)"
    )
    data_roots: list[Path] = Field(
        default_factory=list, description="more folders a dataset path may point into (JSON list)"
    )
    dataset_schemes: list[str] = Field(
        default_factory=lambda: ["file"],
        description="URL schemes a dataset URI may use; default local files only "
        '(e.g. \'["file", "s3"]\'; chained URLs need every scheme of the chain)',
    )
    limits: Limits = Field(default_factory=Limits)
    scheduler: Literal["ray", "none"] = Field(
        default="ray",
        description="'ray' runs jobs on Ray (embedded local Ray unless RAY_ADDRESS is set); "
        "'none' only accepts jobs and leaves them queued for a worker node",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    ray_num_cpus: int | None = Field(default=None, description="CPUs for the embedded Ray (default: all)")
    ray_temp_dir: Path | None = Field(
        default=None, description="Ray's temp folder for the embedded Ray (default: Ray's, /tmp/ray)"
    )
    max_concurrent_jobs: int = Field(default=1, ge=1, description="jobs trained at once per node")
    train_threads: int = Field(default=0, ge=0, description="torch threads for training (0: all cores)")
    train_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="niceness of the process training a job: on a machine it shares with the API "
        "(the embedded form) requests are served first, and training takes the idle CPU",
    )
    telemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry (spans, metrics, logs) for the global providers",
    )
    gc_freeze: bool = Field(
        default=True,
        description="freeze the API's start-up heap out of full garbage collections (gc.freeze): they "
        "scanned torch, Ray and the app each time, a pause of every request (see api.app)",
    )

    # Leases and retries: every job runs exactly once, and survives crashed workers and lost databases.
    lease_s: float = Field(
        default=120.0, gt=0, description="a running job's lease; a worker renews it about once a second"
    )
    max_attempts: int = Field(default=3, ge=1, description="attempts per job (crashes and transient errors)")
    reaper_interval_s: float = Field(
        default=15.0, gt=0, description="how often the scheduler requeues jobs whose lease expired"
    )
    retry_backoff_s: float = Field(
        default=2.0, ge=0, description="first wait before retrying a transient error (doubles each time)"
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
