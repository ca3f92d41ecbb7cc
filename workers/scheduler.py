"""The scheduler contract the API talks to: it runs queued jobs somewhere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Scheduler(ABC):
    """Starts, cancels and reports on jobs; one per API process."""

    @abstractmethod
    def start(self) -> None:
        """Connect to the cluster and resubmit jobs a crash left queued or running."""

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """Run the queued job ``job_id``; returns at once."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stop ``job_id``; the job ends 'cancelled' and keeps what it finished."""

    @abstractmethod
    def hardware(self) -> list[dict[str, Any]]:
        """Hardware profiles served by the cluster's nodes: ``[{profile, nodes: [...]}, ...]``."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release the cluster connection (and the embedded Ray, if this process started it)."""
