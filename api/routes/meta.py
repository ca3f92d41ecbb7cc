"""What the service offers: search-space families, hardware, fitted predictors, and a health check."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import CurrentUser, DatabaseDep, SchedulerDep, SessionDep
from nas.schemas import HARDWARE_METRICS, JOB_STAGES, METRICS
from nas.store import StoreError, crud

log = logging.getLogger(__name__)
router = APIRouter(tags=["meta"])
public_router = APIRouter(tags=["meta"])

# The geometry the default space size is reported for (Fashion-MNIST).
DEFAULT_GEOMETRY = {"in_channels": 1, "num_classes": 10, "image_size": 28}


class SearchSpaceFamily(BaseModel):
    family: str
    version: int
    config_schema: dict[str, Any]
    default_size: int | None
    default_config: dict[str, Any] | None
    schedules: list[str] = Field(
        default_factory=list,
        description="training schedules that can train the family; the first is its default",
    )


class HardwareProfile(BaseModel):
    profile: str
    nodes: list[str] = Field(description="addresses of the nodes serving the profile")
    node_ids: list[str] = Field(default_factory=list, description="their Ray node ids")
    measurement_nodes: list[str] = Field(
        default_factory=list, description="ids of those that only measure (no job slots); latency goes there"
    )


class ProfilePublic(BaseModel):
    """A hardware profile: what one latency measurement means."""

    name: str
    device: str
    precision: str
    batch_size: int
    threads: int
    runtime: str


class ServiceMeta(BaseModel):
    """The service's facts, each from its one source, for the dashboard, the CLI and clients."""

    stages: list[str] = Field(description="a job's stages in the order they run")
    metrics: list[str] = Field(description="metrics objectives and constraints may name")
    hardware_metrics: list[str] = Field(description="metrics measured per hardware profile")
    hardware_profiles: list[ProfilePublic]
    schedules: list[str] = Field(description="training schedules of the trainer registry")
    anchor_policies: list[str] = Field(
        description="training.anchors values (sandwich, DεpS) of the trainer registry; the first is "
        "the default"
    )
    samplers: list[str] = Field(description="training.sampler values of the trainer registry")
    schedule_samplers: dict[str, list[str]] = Field(
        description="per schedule, the samplers it can draw with; the first is its default"
    )
    training_defaults: dict[str, Any] = Field(description="every training knob's default (TrainConfig)")


class PredictorPublic(BaseModel):
    id: int
    kind: str
    target: str
    space_key: str
    version: int
    n_samples: int
    metrics: dict[str, Any]
    artifact_id: str | None
    job_id: str | None


def describe_families() -> list[SearchSpaceFamily]:
    """Every registered family with its config schema and the size of its default space."""
    import supernets  # imports torch: only when asked

    out = []
    for name in supernets.list_families():
        cls = supernets.get_space_class(name)
        size: int | None = None
        default: dict[str, Any] | None = None
        try:
            space = supernets.make_space({"family": name}, **DEFAULT_GEOMETRY)
            size = int(space.size())
            default = space.describe()
        except ValueError as exc:  # a family without defaults for this geometry
            log.info("family %s has no default space for %s: %s", name, DEFAULT_GEOMETRY, exc)
        out.append(
            SearchSpaceFamily(
                family=name,
                version=int(cls.version),
                config_schema=cls.config_json_schema(),
                default_size=size,
                default_config=default,
                schedules=list(cls.schedules),
            )
        )
    return out


@router.get("/search-spaces", response_model=list[SearchSpaceFamily])
def search_spaces(user: CurrentUser) -> list[SearchSpaceFamily]:
    return describe_families()


def service_meta() -> ServiceMeta:
    """Stages, metrics, profiles, schedules, trainer hooks and training defaults, read from where each
    is defined."""
    from predictors.hardware import PROFILES  # imports torch: only when asked
    from supernets.training import SCHEDULES, TrainConfig, anchor_policies, samplers, schedule_samplers

    return ServiceMeta(
        stages=list(JOB_STAGES),
        metrics=list(METRICS),
        hardware_metrics=list(HARDWARE_METRICS),
        hardware_profiles=[ProfilePublic.model_validate(p.to_dict()) for p in PROFILES.values()],
        schedules=list(SCHEDULES),
        anchor_policies=list(anchor_policies()),
        samplers=list(samplers()),
        schedule_samplers={name: list(schedule_samplers(name)) for name in SCHEDULES},
        training_defaults=TrainConfig().to_dict(),
    )


@router.get("/meta", response_model=ServiceMeta)
def meta(user: CurrentUser) -> ServiceMeta:
    return service_meta()


@router.get("/hardware", response_model=list[HardwareProfile])
def hardware(user: CurrentUser, scheduler: SchedulerDep) -> list[HardwareProfile]:
    """Hardware profiles the cluster's nodes serve right now."""
    return [HardwareProfile.model_validate(h) for h in scheduler.hardware()]


@router.get("/predictors", response_model=list[PredictorPublic])
def predictors(
    s: SessionDep,
    user: CurrentUser,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[PredictorPublic]:
    """Fitted predictors of the user's jobs and shared ones, newest first, with their quality metrics."""
    rows = crud.list_predictors(s, kind=kind, target=target, job_id=job_id, owner_id=user.id)
    return [PredictorPublic.model_validate(r, from_attributes=True) for r in rows]


@public_router.get("/healthz")
def healthz(db: DatabaseDep) -> dict[str, str]:
    """Liveness and database reachability; needs no token."""
    try:
        with db.read() as s:
            s.execute(text("SELECT 1"))
    except StoreError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"database unreachable: {exc}"
        ) from exc
    return {"status": "ok"}
