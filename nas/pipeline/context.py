"""What every stage of a job gets: the spec, the database, the artifact store, progress and cancel."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nas.artifacts import ArtifactStore
from nas.schemas import JobSpec
from nas.settings import Settings
from nas.store import Database, crud
from predictors.measure import LatencyStats

# Times a list of (model, input shape) on one hardware profile, wherever that hardware is.
LatencyMeasurer = Callable[[list[tuple[nn.Module, tuple[int, ...]]], str], list[LatencyStats]]


class JobCancelledError(Exception):
    """The job's owner cancelled it; raised at the next safe point."""


@dataclass
class JobContext:
    """Shared state of one job run; stages read and write through it."""

    job_id: str
    spec: JobSpec
    settings: Settings
    db: Database
    store: ArtifactStore
    measure_latency: LatencyMeasurer
    attempt: int = 0  # the lease's attempt this run holds (names its Optuna studies)
    cancel_poll_s: float = 1.0
    progress_every_s: float = 1.0
    _last_poll: float = field(default=0.0, repr=False)
    _cancelled: bool = field(default=False, repr=False)
    _last_progress: dict[str, float] = field(default_factory=dict, repr=False)

    def emit(self, kind: str, payload: dict[str, Any], *, stage: str | None = None) -> None:
        """Record an event (the dashboard and `nas submit --wait` read them)."""
        with self.db.session() as s:
            crud.add_event(s, job_id=self.job_id, kind=kind, stage=stage, payload=payload)

    def progress(self, stage: str, done: int, total: int, **extra: Any) -> None:
        """Report progress within a stage, at most once per ``progress_every_s`` (and always at the end)."""
        now = time.monotonic()
        if done < total and now - self._last_progress.get(stage, 0.0) < self.progress_every_s:
            return
        self._last_progress[stage] = now
        with self.db.session() as s:
            crud.update_job(s, job_id=self.job_id, stage=stage, progress=done / max(total, 1))
            crud.add_event(
                s,
                job_id=self.job_id,
                kind="progress",
                stage=stage,
                payload={"stage": stage, "done": done, "total": total, **extra},
            )

    def should_stop(self) -> bool:
        """True once the owner asked to cancel; reads the database at most once per second."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_poll >= self.cancel_poll_s:
            self._last_poll = now
            # A write session: on a leased run its fence renews the lease (the heartbeat), and
            # raises LeaseLostError once another attempt owns the job.
            with self.db.session() as s:
                job = crud.get_job(s, job_id=self.job_id)
                self._cancelled = bool(job is None or job.cancel_requested)
        return self._cancelled

    def check_cancel(self) -> None:
        if self.should_stop():
            raise JobCancelledError(self.job_id)
