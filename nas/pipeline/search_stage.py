"""Stage 5: search on the predictors, measure the best candidates, refit, for the configured rounds."""

from __future__ import annotations

from sqlalchemy import select

from nas.pipeline.evaluate import measure_subnets
from nas.pipeline.objectives import (
    constraints_of,
    job_front,
    metric_keys,
    objectives_of,
    save_front,
    values_of,
)
from nas.pipeline.predict import fit_predictors, score_predictions
from nas.pipeline.state import JobState
from nas.search import ExactCostPredictor, MeasuredPoint, PredictorLike, RoundResult, refine_search
from nas.search.study import attempt_prefix
from nas.store import crud
from nas.store.models import ParetoFront as FrontRow
from supernets import Arch

STAGE = "search"
EXACT_METRICS = ("params", "flops", "size_bytes")


def rounds_done(state: JobState) -> int:
    """Search rounds an earlier attempt completed (each stored its front)."""
    with state.ctx.db.read() as s:
        last = s.scalar(
            select(FrontRow.round)
            .where(FrontRow.job_id == state.ctx.job_id, FrontRow.final.is_(False))
            .order_by(FrontRow.round.desc())
            .limit(1)
        )
    return last or 0


def run_search(state: JobState) -> None:
    """Search with the predict stage's predictors on the job's pool; each round's front is stored."""
    ctx, spec = state.ctx, state.ctx.spec
    if spec.search.rounds <= 0:
        return
    pool = state.pool
    records = list(pool.values())
    done_before = rounds_done(state)
    rounds_left = spec.search.rounds - done_before
    if rounds_left <= 0 or len(records) >= min(spec.search.measure_budget, state.space.size()):
        return  # the budget is spent, or every architecture is measured
    if state.reference is None or not state.predictors:
        raise RuntimeError("the search stage needs the measure and predict stages of this run before it")
    reference = state.reference
    keys = metric_keys(state)
    predictors: dict[str, PredictorLike] = dict(state.predictors)
    for metric in EXACT_METRICS:
        if metric in keys:
            predictors[metric] = ExactCostPredictor(space=state.space, metric=metric)
    start, budget = len(pool), spec.search.measure_budget

    def measure(archs: list[Arch]) -> list[dict[str, float]]:
        base = len(pool) - start

        def progress(done: int, total: int) -> None:
            ctx.progress(STAGE, min(base + done, budget - start), budget - start)

        new = measure_subnets(state, archs, source="search", stage=STAGE, progress=progress)
        return [values_of(r, keys) for r in new]

    def refit(points: list[MeasuredPoint]) -> None:
        # Latency predictors learn from every measurement of this geometry, as in the predict stage.
        predictors.update(fit_predictors(state, list(pool.values()), store_quality=False))

    def on_round(result: RoundResult) -> None:
        round_no = done_before + result.round
        with ctx.db.session() as s:
            for p in result.measured:
                pool[p.arch.arch_hash].predicted = p.predicted
                cost = state.space.total_cost(p.arch)
                crud.upsert_subnet(
                    s,
                    job_id=ctx.job_id,
                    arch_hash=p.arch.arch_hash,
                    arch=p.arch.to_dict(),
                    params=cost.params,
                    flops=cost.flops,
                    source="search",
                    predicted=p.predicted,
                )
        score_predictions(state, list(result.measured), round_no=round_no)
        measured = list(pool.values())
        save_front(
            state,
            measured,
            job_front(state, measured, reference),
            round_no=round_no,
            final=False,
            stage=STAGE,
        )

    refine_search(
        space=state.space,
        objectives=objectives_of(state),
        constraints=constraints_of(state),
        predictors=predictors,
        measure=measure,
        initial=[(r.arch, values_of(r, keys)) for r in records],
        measure_budget=budget,
        rounds=rounds_left,
        population=spec.search.population,
        generations=spec.search.generations,
        algorithm=spec.search.algorithm,
        engine=spec.search.engine,
        seed=spec.seed,
        storage_url=ctx.settings.database_url,
        study_prefix=attempt_prefix(f"job-{ctx.job_id}", ctx.attempt),  # fenced: see nas/search/study.py
        reference=reference,
        fitted=True,
        refit=refit,
        on_round=on_round,
    )
