"""Service settings, read from the environment (prefix ``NAS_``) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the service keeps its state and how it schedules work."""

    model_config = SettingsConfigDict(env_prefix="NAS_", extra="ignore")

    database_url: str = Field(default="sqlite:///./var/nas.db", description="SQLAlchemy URL")
    artifact_root: str = Field(default="./var/artifacts", description="fsspec URL or local directory")
    data_dir: Path = Field(default=Path("/usr/share/datasets"), description="where built-in datasets live")
    scheduler: Literal["ray", "none"] = Field(
        default="ray",
        description="'ray' runs jobs on Ray (embedded local Ray unless RAY_ADDRESS is set); "
        "'none' only accepts jobs and leaves them queued for a worker node",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    ray_num_cpus: int | None = Field(default=None, description="CPUs for the embedded Ray (default: all)")
    max_concurrent_jobs: int = Field(default=1, ge=1, description="jobs trained at once per node")
    train_threads: int = Field(default=0, ge=0, description="torch threads for training (0: all cores)")

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
