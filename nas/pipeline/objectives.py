"""The job's objectives, constraints and targets, and its Pareto fronts over measured subnets."""

from __future__ import annotations

from nas.pareto import (
    Constraint,
    Objective,
    ParetoFront,
    fronts_per_constraint_set,
    metric_key,
    reference_point,
)
from nas.pipeline.state import JobState, SubnetRecord
from nas.store import crud


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


def reference_for(state: JobState, records: list[SubnetRecord]) -> list[float]:
    """The job's fixed reference point: from the constraints and the initial sample only."""
    keys = metric_keys(state)
    return reference_point(
        objectives_of(state), constraints=constraints_of(state), initial=[values_of(r, keys) for r in records]
    )


def job_front(state: JobState, records: list[SubnetRecord], reference: list[float]) -> ParetoFront:
    """The front of ``records`` under the job's own constraints."""
    keys = metric_keys(state)
    return ParetoFront.from_points(
        [values_of(r, keys) for r in records],
        objectives=objectives_of(state),
        reference=reference,
        constraints=constraints_of(state),
    )


def target_fronts(state: JobState, records: list[SubnetRecord]) -> dict[str, ParetoFront]:
    """One front per spec target, each with the reference its own bounds give (``nas.pareto``)."""
    keys = metric_keys(state)
    values = [values_of(r, keys) for r in records]
    return fronts_per_constraint_set(
        values, objectives=objectives_of(state), constraint_sets=target_constraints(state), initial=values
    )


def save_front(
    state: JobState,
    records: list[SubnetRecord],
    front: ParetoFront,
    *,
    round_no: int,
    final: bool,
    stage: str,
    target: str | None = None,
) -> None:
    """Store ``front`` (indices into ``records``), with each point's predicted values where known."""
    keys = metric_keys(state)
    points = [
        (records[i].subnet_id, values_of(records[i], keys), records[i].predicted) for i in front.indices
    ]
    with state.ctx.db.session() as s:
        crud.save_front(
            s,
            job_id=state.ctx.job_id,
            hardware=",".join(state.ctx.spec.hardware),
            round=round_no,
            objectives=[
                {"metric": o.metric, "hardware": o.hardware, "goal": o.goal} for o in front.objectives
            ],
            reference_point=list(front.reference),
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
        stage=stage,
    )
