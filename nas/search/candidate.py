"""A point the search on predictors proposes: an architecture and its predicted metrics."""

from __future__ import annotations

from dataclasses import dataclass

from supernets.arch import Arch


@dataclass(frozen=True)
class Candidate:
    """An architecture the search on predictors found, with the predicted value of every metric."""

    arch: Arch
    predicted: dict[str, float]
