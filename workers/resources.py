"""What a node advertises to Ray: one custom resource per hardware profile it serves, job slots,
and, on a measurement-only node, the ``nas_measure`` resource latency tasks ask for."""

from __future__ import annotations

from collections.abc import Sequence

from predictors.hardware import HardwareProfile, detect_profiles, get_profile, resource_name

JOB_SLOT = "nas_job_slot"
# Held by a node that serves profiles and trains nothing (0 job slots). Where such a node serves a
# profile, its latency tasks go there only, so no measurement shares a CPU with training.
MEASURE = "nas_measure"


def served_profiles(names: Sequence[str] | None = None) -> list[HardwareProfile]:
    """The profiles a node serves: ``names`` (each checked against what this node can measure),
    or every profile detected here when ``names`` is None."""
    detected = detect_profiles()
    if names is None:
        return detected
    profiles = [get_profile(n) for n in names]  # unknown names: ValueError listing the known ones
    here = {p.name for p in detected}
    missing = [p.name for p in profiles if p.name not in here]
    if missing:
        raise ValueError(
            f"this node cannot serve {', '.join(missing)}: it can serve {', '.join(sorted(here))} "
            "(cuda profiles need a CUDA device, int8 a quantized CPU engine)"
        )
    return list({p.name: p for p in profiles}.values())


def node_resources(*, job_slots: int, profiles: Sequence[str] | None = None) -> dict[str, float]:
    """Custom resources for this node: ``hw:<profile>`` for each profile it serves (detected when
    ``profiles`` is None), ``nas_job_slot`` when it trains jobs, ``nas_measure`` when it only measures."""
    if job_slots < 0:
        raise ValueError(f"job_slots must be >= 0, got {job_slots}")
    served = served_profiles(profiles)
    resources: dict[str, float] = {resource_name(p): 1.0 for p in served}
    if job_slots > 0:
        resources[JOB_SLOT] = float(job_slots)
    elif served:
        resources[MEASURE] = 1.0
    return resources
