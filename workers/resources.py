"""What a node advertises to Ray: one custom resource per hardware profile it serves."""

from __future__ import annotations

from predictors.hardware import detect_profiles, resource_name

JOB_SLOT = "nas_job_slot"


def node_resources(*, job_slots: int) -> dict[str, float]:
    """Custom resources for this node: ``hw:<profile>`` for each profile, plus job slots."""
    resources: dict[str, float] = {resource_name(p): 1.0 for p in detect_profiles()}
    resources[JOB_SLOT] = float(job_slots)
    return resources
