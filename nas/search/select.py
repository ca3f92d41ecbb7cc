"""Choosing which candidates to measure (or keep): NSGA-II order on the predicted values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.pareto import Constraint, Objective, crowding_distance, non_dominated_ranks
from nas.search.candidate import Candidate


def select_candidates(
    candidates: Sequence[Candidate],
    *,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    k: int,
) -> list[Candidate]:
    """Up to ``k`` candidates: predicted-feasible by rank, then crowding; then least violation."""
    if k <= 0 or not candidates:
        return []
    goals = [o.goal for o in objectives]
    feasible = [c for c in candidates if all(con.satisfied(c.predicted) for con in constraints)]
    chosen: list[Candidate] = []
    if feasible:
        pts = np.array([[c.predicted[o.key] for o in objectives] for c in feasible])
        ranks = non_dominated_ranks(pts, goals)
        for r in range(int(ranks.max()) + 1):
            idx = np.flatnonzero(ranks == r)
            if len(chosen) + idx.size > k:
                idx = idx[np.argsort(-crowding_distance(pts[idx], goals), kind="stable")[: k - len(chosen)]]
            chosen.extend(feasible[i] for i in idx)
            if len(chosen) >= k:
                break
    if len(chosen) < k:
        rest = [c for c in candidates if c not in feasible]
        rest.sort(key=lambda c: sum(max(con.violation(c.predicted), 0.0) for con in constraints))
        chosen.extend(rest[: k - len(chosen)])
    return chosen
