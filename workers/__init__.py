"""Runs pipeline stages on Ray; the API talks to a :class:`Scheduler`."""

from __future__ import annotations

from nas.settings import Settings
from workers.scheduler import Scheduler


def make_scheduler(settings: Settings) -> Scheduler:
    """The scheduler the settings name: 'ray' (embedded or RAY_ADDRESS) or 'none' (queue only)."""
    if settings.scheduler == "ray":
        from workers.ray_scheduler import RayScheduler

        return RayScheduler(settings)
    from workers.queue_only import QueueOnlyScheduler

    return QueueOnlyScheduler(settings)


__all__ = ["Scheduler", "make_scheduler"]
