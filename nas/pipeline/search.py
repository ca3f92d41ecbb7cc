"""Stages 3-6: measure an initial sample, fit predictors, search with them, verify the final front."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from nas.pareto import Constraint, Objective, ParetoFront, metric_key, reference_point
from nas.pipeline.evaluate import deploy_subnet, measure_subnets
from nas.pipeline.predictors import fit_predictors, score_predictions
from nas.pipeline.state import JobState, SubnetRecord
from nas.search import ExactCostPredictor, MeasuredPoint, PredictorLike, RoundResult, refine_search
from nas.store import crud
from nas.store.models import ParetoFront as FrontRow
from supernets import Arch, ProductSpace

INITIAL_SHARE = 0.5  # of measure_budget spent on the random initial sample when searching
EXHAUSTIVE_UP_TO = 64  # enumerable spaces this small (or within the budget) are measured whole


def objectives_of(state: JobState) -> list[Objective]:
    return [Objective.from_spec(o) for o in state.ctx.spec.objectives]


def constraints_of(state: JobState) -> list[Constraint]:
    return [Constraint.from_spec(c) for c in state.ctx.spec.constraints]


def target_constraints(state: JobState) -> dict[str, list[Constraint]]:
    """Per named target of the spec: the job's constraints plus the target's own."""
    job = constraints_of(state)
    return {t.name: job + [Constraint.from_spec(c) for c in t.constraints] for t in state.ctx.spec.targets}


def metric_keys(state: JobState) -> list[str]:
    keys = [o.key for o in objectives_of(state)] + [c.key for c in constraints_of(state)]
    keys += [c.key for cons in target_constraints(state).values() for c in cons]
    keys += [metric_key("latency_ms", p) for p in state.ctx.spec.hardware]
    return list(dict.fromkeys(["accuracy", *keys]))


def values_of(record: SubnetRecord, keys: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in keys:
        metric, _, hardware = key.partition("@")
        out[key] = record.objective(metric, hardware or None)
    return out


def initial_sample_size(state: JobState) -> int:
    search = state.ctx.spec.search
    if search.rounds <= 0:
        return search.measure_budget
    return max(4, min(search.measure_budget, int(search.measure_budget * INITIAL_SHARE)))


def measured_records(state: JobState) -> list[SubnetRecord]:
    """Everything this job has measured so far (read back, measuring nothing new)."""
    with state.ctx.db.read() as s:
        rows = crud.list_subnets(s, job_id=state.ctx.job_id)
        archs = [Arch.from_dict(r.arch) for r in rows if r.accuracy_val is not None]
    return measure_subnets(state, archs, source="sample", stage="measure") if archs else []


def save_front(
    state: JobState,
    records: list[SubnetRecord],
    *,
    round_no: int,
    reference: list[float],
    final: bool,
    predicted: dict[str, dict[str, float]] | None = None,
    target: str | None = None,
) -> ParetoFront:
    """Compute the front of ``records`` and store it (with predicted values where known).

    ``target`` names one of the spec's targets: its constraints replace the job's own.
    """
    keys = metric_keys(state)
    objectives = objectives_of(state)
    constraints = constraints_of(state) if target is None else target_constraints(state)[target]
    values = [values_of(r, keys) for r in records]
    front = ParetoFront.from_points(
        values, objectives=objectives, reference=reference, constraints=constraints
    )
    predicted = predicted or {}
    points = [
        (records[i].subnet_id, values[i], predicted.get(records[i].arch.arch_hash)) for i in front.indices
    ]
    with state.ctx.db.session() as s:
        crud.save_front(
            s,
            job_id=state.ctx.job_id,
            hardware=",".join(state.ctx.spec.hardware),
            round=round_no,
            objectives=[{"metric": o.metric, "hardware": o.hardware, "goal": o.goal} for o in objectives],
            reference_point=list(reference),
            hypervolume=front.hypervolume,
            points=points,
            final=final,
            target=target,
        )
    state.ctx.emit(
        "front",
        {
            "round": round_no,
            "hypervolume": front.hypervolume,
            "size": len(points),
            "final": final,
            "target": target,
        },
        stage="verify" if final else "search",
    )
    return front


def run_measure(state: JobState) -> None:
    """Stage 3: measure a seeded random sample (always including the largest and smallest subnets)."""
    space, spec = state.space, state.ctx.spec
    n = initial_sample_size(state)
    rng = np.random.default_rng(spec.seed)
    archs: dict[str, Arch] = {}
    if isinstance(space, ProductSpace) and space.size() <= max(spec.search.measure_budget, EXHAUSTIVE_UP_TO):
        # a space this small is searched exhaustively: every architecture is measured
        archs = {a.arch_hash: a for a in space.enumerate_archs()}
        n = len(archs)
    for arch in [space.largest(), space.smallest()]:
        archs.setdefault(arch.arch_hash, arch)
    tries = 0
    while len(archs) < n and tries < 50 * n:
        arch = space.sample(rng)
        archs.setdefault(arch.arch_hash, arch)
        tries += 1
    records = measure_subnets(state, list(archs.values())[:n], source="sample", stage="measure")
    with state.ctx.db.read() as s:
        done = s.scalar(select(FrontRow.id).where(FrontRow.job_id == state.ctx.job_id, FrontRow.round == 0))
    if done is None:
        save_front(state, records, round_no=0, reference=reference_for(state, records), final=False)


def reference_for(state: JobState, records: list[SubnetRecord]) -> list[float]:
    """The job's fixed reference point: from the constraints and the initial sample only."""
    keys = metric_keys(state)
    return reference_point(
        objectives_of(state), constraints=constraints_of(state), initial=[values_of(r, keys) for r in records]
    )


def stored_reference(state: JobState) -> list[float] | None:
    with state.ctx.db.read() as s:
        row = s.scalar(
            select(FrontRow).where(FrontRow.job_id == state.ctx.job_id, FrontRow.round == 0).limit(1)
        )
        return list(row.reference_point) if row is not None and row.reference_point is not None else None


def run_predict(state: JobState) -> None:
    """Stage 4: fit one predictor per objective and hardware on what was measured; store their quality."""
    fit_predictors(state, measured_records(state))


def run_search(state: JobState) -> None:
    """Stage 5: search on the predictors, measure the best candidates, refit, for the configured rounds."""
    ctx, spec = state.ctx, state.ctx.spec
    if spec.search.rounds <= 0:
        return
    records = measured_records(state)
    with ctx.db.read() as s:
        rounds_done = (
            s.scalar(
                select(FrontRow.round)
                .where(FrontRow.job_id == ctx.job_id, FrontRow.final.is_(False))
                .order_by(FrontRow.round.desc())
                .limit(1)
            )
            or 0
        )
    rounds_left = spec.search.rounds - rounds_done
    if rounds_left <= 0 or len(records) >= min(spec.search.measure_budget, state.space.size()):
        return  # the budget is spent, or every architecture is measured
    keys = metric_keys(state)
    predictors: dict[str, PredictorLike] = dict(fit_predictors(state, records, store_quality=False))
    for metric in ("params", "flops", "size_bytes"):
        if metric in keys:
            predictors[metric] = ExactCostPredictor(space=state.space, metric=metric)
    reference = stored_reference(state) or reference_for(state, records)
    by_hash: dict[str, SubnetRecord] = {r.arch.arch_hash: r for r in records}

    def measure(archs: list[Arch]) -> list[dict[str, float]]:
        new = measure_subnets(state, archs, source="search", stage="search")
        by_hash.update({r.arch.arch_hash: r for r in new})
        return [values_of(r, keys) for r in new]

    def on_round(result: RoundResult) -> None:
        predicted = {p.arch.arch_hash: p.predicted for p in result.measured if p.predicted}
        with ctx.db.session() as s:
            for p in result.measured:
                crud.upsert_subnet(
                    s,
                    job_id=ctx.job_id,
                    arch_hash=p.arch.arch_hash,
                    arch=p.arch.to_dict(),
                    params=0,
                    flops=0,
                    source="search",
                    predicted=p.predicted,
                )
        score_predictions(state, list(result.measured), round_no=rounds_done + result.round)
        save_front(
            state,
            list(by_hash.values()),
            round_no=rounds_done + result.round,
            reference=reference,
            final=False,
            predicted=predicted,
        )

    refine_search(
        space=state.space,
        objectives=objectives_of(state),
        constraints=constraints_of(state),
        predictors=predictors,
        measure=measure,
        initial=[(r.arch, values_of(r, keys)) for r in records],
        measure_budget=spec.search.measure_budget,
        rounds=rounds_left,
        population=spec.search.population,
        generations=spec.search.generations,
        algorithm=spec.search.algorithm,
        engine=spec.search.engine,
        seed=spec.seed,
        storage_url=ctx.settings.database_url,
        study_prefix=f"job-{ctx.job_id}",
        reference=reference,
        on_round=on_round,
    )


def _front_of(
    state: JobState, records: list[SubnetRecord], constraints: list[Constraint], reference: list[float]
) -> list[int]:
    keys = metric_keys(state)
    front = ParetoFront.from_points(
        [values_of(r, keys) for r in records],
        objectives=objectives_of(state),
        reference=reference,
        constraints=constraints,
    )
    return list(front.indices)


def _save_weights(state: JobState, rec: SubnetRecord) -> None:
    ctx = state.ctx
    key = f"jobs/{ctx.job_id}/subnets/{rec.arch.arch_hash}/model.pt"
    obj = ctx.store.put_torch(key, deploy_subnet(state, rec.arch))
    with ctx.db.session() as s:
        crud.add_artifact(
            s,
            kind="weights",
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
            job_id=ctx.job_id,
            meta={"arch_hash": rec.arch.arch_hash, "subnet_id": rec.subnet_id},
        )


def run_verify(state: JobState) -> None:
    """Stage 6: measure the final fronts for real, on the test split too, and store them as final.

    The job's own front and one front per spec target are drawn from the same measured
    subnets; every point of any of them is verified once. The job's own final front is
    stored last, so that its presence means the stage finished.
    """
    ctx = state.ctx
    records = measured_records(state)
    reference = stored_reference(state) or reference_for(state, records)
    targets = target_constraints(state)
    on_any: dict[str, SubnetRecord] = {}
    for constraints in [constraints_of(state), *targets.values()]:
        for i in _front_of(state, records, constraints, reference):
            on_any.setdefault(records[i].arch.arch_hash, records[i])
    verified = measure_subnets(
        state, [r.arch for r in on_any.values()], source="verify", stage="verify", test_split=True
    )
    for rec in verified:
        _save_weights(state, rec)
    with ctx.db.read() as s:
        predicted = {
            r.arch.arch_hash: row.predicted
            for r in verified
            if (row := crud.get_subnet(s, job_id=ctx.job_id, subnet_id=r.subnet_id)) and row.predicted
        }
    by_hash = {r.arch.arch_hash: r for r in records} | {r.arch.arch_hash: r for r in verified}
    keys = metric_keys(state)
    pool = list(by_hash.values())
    # Each target's reference comes from its own bounds; the job's own front comes last.
    fronts: list[tuple[str | None, list[float]]] = [
        (
            name,
            reference_point(
                objectives_of(state), constraints=cons, initial=[values_of(r, keys) for r in pool]
            ),
        )
        for name, cons in targets.items()
    ]
    for name, ref in [*fronts, (None, reference)]:
        save_front(
            state,
            pool,
            round_no=ctx.spec.search.rounds + 1,
            reference=ref,
            final=True,
            predicted=predicted,
            target=name,
        )


__all__ = ["MeasuredPoint", "run_measure", "run_predict", "run_search", "run_verify"]
