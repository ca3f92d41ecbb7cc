"""Small keyword-only operations on the tables; each takes the caller's session and never commits.

The code lives in private modules by topic; this module is the one place callers import from.
"""

from __future__ import annotations

from nas.schemas import JobStatus
from nas.store._accounts import (
    TOKEN_TOUCH_INTERVAL,
    create_token,
    create_user,
    get_or_create_user,
    get_user,
    hash_token,
    live_token,
    revoke_token,
    token_touch_due,
    user_for_token,
)
from nas.store._artifacts import (
    ARTIFACT_KINDS,
    PREDICTOR_KINDS,
    add_artifact,
    add_predictor,
    get_artifact,
    list_artifacts,
    list_predictors,
)
from nas.store._fronts import front_history, front_points, front_targets, latest_front, save_front
from nas.store._jobs import (
    add_event,
    count_jobs,
    create_job,
    finish_job,
    get_job,
    list_events,
    list_jobs,
    request_cancel,
    unfinished_job_ids,
    update_job,
)
from nas.store._measured import (
    MEASUREMENT_STATS,
    get_measurement,
    get_subnet,
    get_subnet_by_hash,
    latency_by_key,
    list_subnets,
    put_measurement,
    upsert_subnet,
)

__all__ = [
    "ARTIFACT_KINDS",
    "MEASUREMENT_STATS",
    "PREDICTOR_KINDS",
    "TOKEN_TOUCH_INTERVAL",
    "JobStatus",
    "add_artifact",
    "add_event",
    "add_predictor",
    "count_jobs",
    "create_job",
    "create_token",
    "create_user",
    "finish_job",
    "front_history",
    "front_points",
    "front_targets",
    "get_artifact",
    "get_job",
    "get_measurement",
    "get_or_create_user",
    "get_subnet",
    "get_subnet_by_hash",
    "get_user",
    "hash_token",
    "latency_by_key",
    "latest_front",
    "list_artifacts",
    "list_events",
    "list_jobs",
    "list_predictors",
    "list_subnets",
    "live_token",
    "put_measurement",
    "request_cancel",
    "revoke_token",
    "save_front",
    "token_touch_due",
    "unfinished_job_ids",
    "update_job",
    "upsert_subnet",
    "user_for_token",
]
