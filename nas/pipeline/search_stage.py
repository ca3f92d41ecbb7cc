"""Stage 5: search on the predictors, measure the best candidates, refit, for the configured rounds.

Resume: a round's front row marks it done; each round's choice of candidates is stored (an event
of kind ``candidates``) before any of them is measured, so a round resumed after a crash measures
that same list, and later rounds keep the uninterrupted run's numbers (seeds, study names, shares).
"""

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
from nas.search import (
    Candidate,
    ExactCostPredictor,
    MeasuredPoint,
    PredictorLike,
    RoundResult,
    refine_search,
)
from nas.search.study import attempt_prefix
from nas.store import crud
from nas.store.models import JobEvent
from supernets import Arch

STAGE = "search"
EXACT_METRICS = ("params", "flops", "size_bytes")
CHOSEN = "candidates"  # the event that records a round's choice before it is measured


def rounds_done(state: JobState) -> int:
    """Search rounds an earlier attempt completed (each stored its front)."""
    with state.ctx.db.read() as s:
        fronts = crud.front_history(s, job_id=state.ctx.job_id)
        return max((f.round for f in fronts if not f.final), default=0)


def store_choice(state: JobState, round_no: int, chosen: list[Candidate]) -> None:
    """Record a round's chosen candidates (before measuring them): a resumed round measures these."""
    payload = {
        "round": round_no,
        "candidates": [{"arch": c.arch.to_dict(), "predicted": dict(c.predicted)} for c in chosen],
    }
    state.ctx.emit(CHOSEN, payload, stage=STAGE)


def stored_choice(state: JobState, round_no: int) -> list[Candidate] | None:
    """The candidates an earlier attempt chose for ``round_no`` and did not finish, if it chose any."""
    with state.ctx.db.read() as s:
        payload = s.scalar(
            select(JobEvent.payload)
            .where(JobEvent.job_id == state.ctx.job_id, JobEvent.kind == CHOSEN)
            .order_by(JobEvent.id.desc())
            .limit(1)
        )
    if payload is None or payload.get("round") != round_no:
        return None
    return [
        Candidate(arch=Arch.from_dict(c["arch"]), predicted={k: float(v) for k, v in c["predicted"].items()})
        for c in payload["candidates"]
    ]


def run_search(state: JobState) -> None:
    """Search with the predict stage's predictors on the job's pool; each round's front is stored."""
    ctx, spec = state.ctx, state.ctx.spec
    if spec.search.rounds <= 0:
        return
    pool = state.pool
    first_round = rounds_done(state) + 1
    if first_round > spec.search.rounds:
        return
    chosen_before = stored_choice(state, first_round)
    # What was measured before this round (a resumed round's own measurements are redone from its choice).
    pending = {c.arch.arch_hash for c in chosen_before or ()}
    records = [r for r in pool.values() if r.arch.arch_hash not in pending]
    if len(records) >= min(spec.search.measure_budget, state.space.size()):
        return  # the budget is spent, or every architecture is measured
    if state.reference is None or not state.predictors:
        raise RuntimeError("the search stage needs the measure and predict stages of this run before it")
    reference = state.reference
    keys = metric_keys(state)
    predictors: dict[str, PredictorLike] = dict(state.predictors)
    for metric in EXACT_METRICS:
        if metric in keys:
            predictors[metric] = ExactCostPredictor(space=state.space, metric=metric)
    start, budget = len(records), spec.search.measure_budget

    def measure(archs: list[Arch]) -> list[dict[str, float]]:
        these = {a.arch_hash for a in archs}
        base = sum(1 for h in pool if h not in these) - start

        def progress(done: int, total: int) -> None:
            ctx.progress(STAGE, min(base + done, budget - start), budget - start)

        new = measure_subnets(state, archs, source="search", stage=STAGE, progress=progress)
        return [values_of(r, keys) for r in new]

    def refit(points: list[MeasuredPoint]) -> None:
        # Latency predictors learn from every measurement of this geometry, as in the predict stage.
        predictors.update(fit_predictors(state, list(pool.values()), store_quality=False))

    def on_round(result: RoundResult) -> None:
        round_no = result.round
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
        rounds=spec.search.rounds,
        first_round=first_round,
        chosen_before=chosen_before,
        on_chosen=lambda round_no, chosen: store_choice(state, round_no, chosen),
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
