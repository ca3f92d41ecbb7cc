"""The Ray tasks: one runs a whole job's pipeline, the other times a model on a node's hardware."""

from __future__ import annotations

import io
import os
from typing import Any

import ray
import torch
from torch import nn

from nas.pipeline import run_job
from nas.settings import Settings
from predictors.hardware import get_profile, resource_name
from predictors.measure import LatencyStats, measure_latency


class HardwareUnavailableError(RuntimeError):
    """No node of the cluster serves the hardware profile a job asked for."""


@ray.remote(num_cpus=0, max_retries=0)
def measure_latency_task(
    model_bytes: bytes, input_shape: tuple[int, ...], profile_name: str
) -> dict[str, Any]:
    """Time one model with the measurement protocol on this node (which holds the profile's resource)."""
    model = torch.load(io.BytesIO(model_bytes), map_location="cpu", weights_only=False)
    stats = measure_latency(model, input_shape=input_shape, profile=get_profile(profile_name))
    return stats.to_dict()


def ray_latency_measurer(
    items: list[tuple[nn.Module, tuple[int, ...]]], profile_name: str
) -> list[LatencyStats]:
    """Measure models on nodes advertising ``hw:<profile>``, one at a time per node."""
    key = resource_name(get_profile(profile_name))
    available = ray.cluster_resources()
    if available.get(key, 0) <= 0:
        served = sorted(k for k in available if k.startswith("hw:")) or ["none"]
        raise HardwareUnavailableError(
            f"no node serves hardware profile {profile_name!r}; the cluster serves: {', '.join(served)}. "
            "Start a worker on such hardware or remove the profile from the job's 'hardware'."
        )
    refs = []
    for model, shape in items:
        buf = io.BytesIO()
        torch.save(model, buf)
        refs.append(
            measure_latency_task.options(resources={key: 1}).remote(buf.getvalue(), shape, profile_name)
        )
    return [LatencyStats.from_dict(d) for d in ray.get(refs)]


@ray.remote(num_cpus=0, max_retries=2, retry_exceptions=False)
def run_job_task(job_id: str, settings_data: dict[str, Any]) -> str:
    """Run (or resume) the pipeline of ``job_id``; Ray retries it on another node if this one dies."""
    settings = Settings(**settings_data)
    threads = settings.train_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return run_job(job_id, settings=settings, measure_latency=ray_latency_measurer)
