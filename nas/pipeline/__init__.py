"""The job pipeline: data -> train -> measure -> predict -> search -> verify, resumable stage by stage."""

from __future__ import annotations

from nas.pipeline.context import JobCancelledError, JobContext, LatencyMeasurer
from nas.pipeline.runner import STAGES, run_job

__all__ = ["STAGES", "JobCancelledError", "JobContext", "LatencyMeasurer", "run_job"]
