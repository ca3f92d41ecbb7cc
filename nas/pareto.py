"""Pareto fronts, exact hypervolume and the fixed reference point of a job's objectives.

Objective values travel as ``{key: value}`` mappings where ``key`` is ``metric`` or
``metric@hardware`` (``Objective.key``), so one measured point serves every objective,
constraint and hardware profile of a job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Goal = Literal["max", "min"]
_GOALS = ("max", "min")


def metric_key(metric: str, hardware: str | None = None) -> str:
    """The key of a metric in a values mapping: ``latency_ms@cpu-fp32``, or ``accuracy``."""
    return metric if hardware is None else f"{metric}@{hardware}"


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


@dataclass(frozen=True)
class Objective:
    """One objective of a job: a metric (on a hardware profile, for latency) to maximise or minimise."""

    metric: str
    goal: Goal
    hardware: str | None = None

    def __post_init__(self) -> None:
        if self.goal not in _GOALS:
            raise ValueError(f"objective {self.metric!r}: goal must be 'max' or 'min', got {self.goal!r}")

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.hardware)

    @classmethod
    def from_spec(cls, item: Any) -> Objective:
        """From a job-spec entry (a pydantic model or a dict with ``metric``, ``goal``, ``hardware``)."""
        goal = _field(item, "goal")
        return cls(
            metric=str(_field(item, "metric")),
            goal=getattr(goal, "value", goal),
            hardware=_field(item, "hardware"),
        )


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric: feasible when ``min <= value <= max`` (either bound may be absent)."""

    metric: str
    hardware: str | None = None
    max: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if self.max is None and self.min is None:
            raise ValueError(
                f"constraint on {self.key!r} has neither 'max' nor 'min'; give at least one bound"
            )
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"constraint on {self.key!r}: min {self.min} exceeds max {self.max}")

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.hardware)

    def violation(self, values: Mapping[str, float]) -> float:
        """How far ``values`` are outside the bound; <= 0 means satisfied (Optuna's convention)."""
        v = float(values[self.key])
        over = v - self.max if self.max is not None else -np.inf
        under = self.min - v if self.min is not None else -np.inf
        return float(max(over, under))

    def satisfied(self, values: Mapping[str, float]) -> bool:
        return self.violation(values) <= 0.0

    @classmethod
    def from_spec(cls, item: Any) -> Constraint:
        """From a job-spec entry with ``metric``, ``hardware`` and ``max`` and/or ``min``."""
        hi, lo = _field(item, "max"), _field(item, "min")
        return cls(
            metric=str(_field(item, "metric")),
            hardware=_field(item, "hardware"),
            max=None if hi is None else float(hi),
            min=None if lo is None else float(lo),
        )


def _as_minimisation(points: Any, goals: Sequence[str]) -> np.ndarray:
    """Points as a float (n, d) array in which every objective is minimised."""
    for g in goals:
        if g not in _GOALS:
            raise ValueError(f"goal must be 'max' or 'min', got {g!r}")
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, len(goals))
    if arr.ndim != 2 or arr.shape[1] != len(goals):
        raise ValueError(f"points have shape {arr.shape}; expected (n, {len(goals)}), one column per goal")
    sign = np.array([-1.0 if g == "max" else 1.0 for g in goals])
    return arr * sign


def _non_dominated_min(pts: np.ndarray) -> np.ndarray:
    """Indices of points no other point dominates (all objectives minimised)."""
    if len(pts) == 0:
        return np.zeros(0, dtype=int)
    # In lexicographic order a point can only be dominated by an earlier one.
    order = np.lexsort(pts.T[::-1])
    front: list[int] = []
    for i in order:
        if front:
            f = pts[front]
            if np.any(np.all(f <= pts[i], axis=1) & np.any(f < pts[i], axis=1)):
                continue
        front.append(int(i))
    return np.sort(np.array(front, dtype=int))


def non_dominated(points: Any, goals: Sequence[str]) -> list[int]:
    """Indices (ascending) of the points that no other point dominates; equal points are all kept."""
    return [int(i) for i in _non_dominated_min(_as_minimisation(points, goals))]


def non_dominated_ranks(points: Any, goals: Sequence[str]) -> np.ndarray:
    """Rank of every point in non-dominated sorting: 0 for the front, 1 for the front without it, ..."""
    pts = _as_minimisation(points, goals)
    n = len(pts)
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)
    ranks = np.full(n, -1, dtype=int)
    rank = 0
    current = np.flatnonzero(count == 0)
    while current.size:
        ranks[current] = rank
        count = count - dominates[current].sum(axis=0)
        count[ranks >= 0] = -1
        current = np.flatnonzero(count == 0)
        rank += 1
    return ranks


def crowding_distance(points: Any, goals: Sequence[str]) -> np.ndarray:
    """NSGA-II crowding distance of each point within its set; extremes get infinity."""
    pts = _as_minimisation(points, goals)
    n, d = pts.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(d):
        order = np.argsort(pts[:, k], kind="stable")
        col = pts[order, k]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def _hv_2d(pts: np.ndarray, ref: np.ndarray) -> float:
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    x, y = pts[order, 0], pts[order, 1]
    best_y = np.minimum.accumulate(y)
    before = np.concatenate([[ref[1]], best_y[:-1]])
    return float(np.sum((ref[0] - x) * np.clip(before - y, 0.0, None)))


def _hv_min(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of points that all strictly dominate ``ref`` (minimisation)."""
    n, d = pts.shape
    if n == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - pts[:, 0].min())
    pts = pts[_non_dominated_min(pts)]
    if d == 2:
        return _hv_2d(pts, ref)
    # Slice along the last objective: between consecutive levels the dominated region is a
    # prism over the (d-1)-dimensional hypervolume of the points at or below that level.
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    levels = np.append(pts[:, -1], ref[-1])
    total = 0.0
    for i in range(len(pts)):
        height = levels[i + 1] - levels[i]
        if height > 0:
            total += height * _hv_min(pts[: i + 1, :-1], ref[:-1])
    return total


def hypervolume(points: Any, reference: Sequence[float], goals: Sequence[str]) -> float:
    """Exact volume dominated by ``points`` and bounded by ``reference``; points not better than it add 0."""
    pts = _as_minimisation(points, goals)
    ref = _as_minimisation([list(reference)], goals)[0]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.all(pts < ref, axis=1)]
    return _hv_min(pts, ref)


def reference_point(
    objectives: Sequence[Objective],
    *,
    constraints: Sequence[Constraint] = (),
    initial: Sequence[Mapping[str, float]] = (),
) -> list[float]:
    """The job's fixed hypervolume reference, from what is known before the search starts.

    Per objective: the constraint bound on the same metric where there is one (the
    tightest ``max`` for a minimised metric, ``min`` for a maximised one); otherwise
    the worst value in the initial sample pushed away by its own magnitude, i.e.
    ``2 * worst`` for a positive minimised metric (latency, params, flops) and ``0``
    for a non-negative maximised one. Accuracy's reference is always 0.
    """
    ref: list[float] = []
    for obj in objectives:
        if obj.goal == "min":
            highs = [c.max for c in constraints if c.key == obj.key and c.max is not None]
            if highs:
                ref.append(float(min(highs)))
                continue
        else:
            lows = [c.min for c in constraints if c.key == obj.key and c.min is not None]
            if lows:
                ref.append(float(max(lows)))
                continue
        if obj.metric == "accuracy" and obj.goal == "max":
            ref.append(0.0)
            continue
        seen = [float(v[obj.key]) for v in initial if obj.key in v]
        if not seen:
            raise ValueError(
                f"no reference for objective {obj.key!r}: "
                "give a constraint on it or an initial sample that measures it"
            )
        worst = max(seen) if obj.goal == "min" else min(seen)
        ref.append(worst + abs(worst) if obj.goal == "min" else worst - abs(worst))
    return ref


@dataclass(frozen=True)
class ParetoFront:
    """The non-dominated feasible points of a pool, ordered by the first objective, and their hypervolume."""

    objectives: tuple[Objective, ...]
    reference: tuple[float, ...]
    indices: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]
    hypervolume: float

    @property
    def goals(self) -> list[str]:
        return [o.goal for o in self.objectives]

    @classmethod
    def from_points(
        cls,
        pool: Sequence[Mapping[str, float]],
        *,
        objectives: Sequence[Objective],
        reference: Sequence[float],
        constraints: Sequence[Constraint] = (),
    ) -> ParetoFront:
        """The front of the points of ``pool`` that satisfy every constraint; indices refer to ``pool``."""
        if len(reference) != len(objectives):
            raise ValueError(f"reference has {len(reference)} values for {len(objectives)} objectives")
        goals = [o.goal for o in objectives]
        feasible = [i for i, v in enumerate(pool) if all(c.satisfied(v) for c in constraints)]
        pts = np.array([[float(pool[i][o.key]) for o in objectives] for i in feasible]).reshape(
            -1, len(objectives)
        )
        keep = [feasible[i] for i in non_dominated(pts, goals)]
        first = objectives[0]
        keep.sort(key=lambda i: (-1 if first.goal == "max" else 1) * float(pool[i][first.key]))
        values = tuple(tuple(float(pool[i][o.key]) for o in objectives) for i in keep)
        return cls(
            objectives=tuple(objectives),
            reference=tuple(float(r) for r in reference),
            indices=tuple(keep),
            values=values,
            hypervolume=hypervolume(list(values), reference, goals),
        )


def fronts_per_constraint_set(
    pool: Sequence[Mapping[str, float]],
    *,
    objectives: Sequence[Objective],
    constraint_sets: Mapping[str, Sequence[Constraint]],
    initial: Sequence[Mapping[str, float]],
) -> dict[str, ParetoFront]:
    """One front per named constraint set (e.g. latency budgets 1, 2, 4 ms) from one pool of measured points.

    Each set gets its own reference: ``reference_point(objectives, constraints=set, initial=initial)``.
    """
    return {
        name: ParetoFront.from_points(
            pool,
            objectives=objectives,
            reference=reference_point(objectives, constraints=cons, initial=initial),
            constraints=cons,
        )
        for name, cons in constraint_sets.items()
    }
