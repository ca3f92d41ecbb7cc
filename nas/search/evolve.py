"""A numpy-vectorised NSGA-II over the flat choice encoding, for large searches on predictors.

Optuna costs about 2 ms per trial here, so 20,000 predictor evaluations take ~40 s
through it; this evolves whole populations at once and calls the predictors once
per generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nas.pareto import Constraint, Objective, crowding_distance, non_dominated_ranks
from nas.search.candidate import Candidate
from nas.search.protocols import PredictorLike, SpaceLike, predict_values
from supernets.arch import Arch


class _Codec:
    """Maps between architectures and integer genomes (one choice index per dimension)."""

    def __init__(self, space: SpaceLike) -> None:
        self.space = space
        dims = space.choices()
        self.names = list(dims)
        self.values = [list(dims[n]) for n in self.names]
        self.sizes = np.array([len(v) for v in self.values])

    def decode(self, genome: np.ndarray) -> Arch:
        return self.space.arch_from_choices(
            {n: self.values[j][int(genome[j])] for j, n in enumerate(self.names)}
        )

    def encode(self, arch: Arch) -> np.ndarray:
        chosen = self.space.choices_of(arch)
        return np.array([self.values[j].index(chosen[n]) for j, n in enumerate(self.names)])


def _survivors(minimised: np.ndarray, violation: np.ndarray, keep: int) -> np.ndarray:
    """NSGA-II survival: feasible fronts in order, the last one cut by crowding; then least violation."""
    goals = ["min"] * minimised.shape[1]
    feasible = np.flatnonzero(violation <= 0)
    chosen: list[int] = []
    if feasible.size:
        ranks = non_dominated_ranks(minimised[feasible], goals)
        for r in range(int(ranks.max()) + 1):
            front = feasible[ranks == r]
            if len(chosen) + front.size <= keep:
                chosen.extend(front.tolist())
                continue
            crowd = crowding_distance(minimised[front], goals)
            chosen.extend(front[np.argsort(-crowd, kind="stable")[: keep - len(chosen)]].tolist())
            break
    if len(chosen) < keep:
        infeasible = np.flatnonzero(violation > 0)
        chosen.extend(
            infeasible[np.argsort(violation[infeasible], kind="stable")[: keep - len(chosen)]].tolist()
        )
    return np.array(chosen, dtype=int)


def evolve_on_predictors(
    *,
    space: SpaceLike,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    predictors: Mapping[str, PredictorLike],
    population: int,
    generations: int,
    rng: np.random.Generator,
    seeds: Sequence[Arch] = (),
) -> tuple[list[Candidate], int]:
    """Evolve ``population`` genomes for ``generations``; returns final population, evaluation count.

    ``seeds`` (e.g. the measured architectures) start in the first population. The count
    is of genomes evaluated; a genome seen before is looked up rather than predicted again.
    """
    if population < 4 or generations < 1:
        raise ValueError(f"population must be >= 4 and generations >= 1; got {population} and {generations}")
    codec = _Codec(space)
    keys = list(dict.fromkeys([o.key for o in objectives] + [c.key for c in constraints]))
    sign = np.array([-1.0 if o.goal == "max" else 1.0 for o in objectives])
    n_dims = len(codec.sizes)

    # Converging populations repeat genomes; each distinct one is decoded and predicted once.
    known: dict[bytes, tuple[Arch, np.ndarray]] = {}

    def evaluate(genomes: np.ndarray) -> tuple[list[Arch], dict[str, np.ndarray], np.ndarray, np.ndarray]:
        fresh: dict[bytes, Arch] = {}
        for g in genomes:
            key = g.tobytes()
            if key not in known and key not in fresh:
                fresh[key] = codec.decode(g)
        if fresh:
            new = predict_values(predictors, list(fresh.values()), keys)
            for i, (key, arch) in enumerate(fresh.items()):
                known[key] = (arch, np.array([new[k][i] for k in keys]))
        rows = [known[g.tobytes()] for g in genomes]
        archs = [r[0] for r in rows]
        table = np.array([r[1] for r in rows]).reshape(len(rows), len(keys))
        pred = {k: table[:, j] for j, k in enumerate(keys)}
        minimised = np.stack([pred[o.key] for o in objectives], axis=1) * sign
        violation = np.zeros(len(archs))
        for c in constraints:
            hi = pred[c.key] - c.max if c.max is not None else np.full(len(archs), -np.inf)
            lo = c.min - pred[c.key] if c.min is not None else np.full(len(archs), -np.inf)
            violation += np.clip(np.maximum(hi, lo), 0.0, None)
        return archs, pred, minimised, violation

    start = [codec.encode(a) for a in seeds][:population]
    fresh = rng.integers(0, codec.sizes, size=(population - len(start), n_dims))
    genomes = np.vstack([np.array(start).reshape(-1, n_dims), fresh]).astype(int)
    archs, pred, minimised, violation = evaluate(genomes)
    evaluations = len(genomes)
    # The population is kept in survivor order (feasible first, rank, crowding), so a binary
    # tournament picks the lower index.
    order = _survivors(minimised, violation, len(genomes))
    genomes, minimised, violation = genomes[order], minimised[order], violation[order]
    archs = [archs[i] for i in order]
    pred = {k: v[order] for k, v in pred.items()}
    for _ in range(generations - 1):
        a, b = rng.integers(0, len(genomes), size=(2, population, 2))
        parents = np.minimum(a, b)
        mask = rng.random((population, n_dims)) < 0.5
        children = np.where(mask, genomes[parents[:, 0]], genomes[parents[:, 1]])
        mutate = rng.random((population, n_dims)) < 1.0 / n_dims
        children = np.where(mutate, rng.integers(0, codec.sizes, size=(population, n_dims)), children)
        c_archs, c_pred, c_min, c_viol = evaluate(children)
        evaluations += population
        genomes = np.vstack([genomes, children])
        archs = archs + c_archs
        pred = {k: np.concatenate([pred[k], c_pred[k]]) for k in keys}
        minimised = np.vstack([minimised, c_min])
        violation = np.concatenate([violation, c_viol])
        keep = _survivors(minimised, violation, population)
        genomes, minimised, violation = genomes[keep], minimised[keep], violation[keep]
        archs = [archs[i] for i in keep]
        pred = {k: v[keep] for k, v in pred.items()}
    seen: dict[str, Candidate] = {}
    for i, arch in enumerate(archs):
        seen.setdefault(arch.arch_hash, Candidate(arch=arch, predicted={k: float(pred[k][i]) for k in keys}))
    return list(seen.values()), evaluations
