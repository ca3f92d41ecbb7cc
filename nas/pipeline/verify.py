"""Stage 6: verify the final fronts for real, on the test split too, save their weights, store them."""

from __future__ import annotations

from torch import nn

from nas.pipeline.evaluate import deploy_subnet, measure_subnets
from nas.pipeline.objectives import job_front, save_front, target_fronts
from nas.pipeline.state import JobState, SubnetRecord
from nas.store import crud

STAGE = "verify"
WEIGHTS = "weights"


def _saved_weights(state: JobState) -> set[str]:
    """Arch hashes whose deployed weights an earlier attempt saved."""
    with state.ctx.db.read() as s:
        rows = crud.list_artifacts(s, job_id=state.ctx.job_id, kind=WEIGHTS)
        return {str((r.meta or {}).get("arch_hash")) for r in rows}


def _save_weights(state: JobState, rec: SubnetRecord, model: nn.Module) -> None:
    ctx = state.ctx
    key = f"jobs/{ctx.job_id}/subnets/{rec.arch.arch_hash}/model.pt"
    obj = ctx.store.put_torch(key, model)
    with ctx.db.session() as s:
        crud.add_artifact(
            s,
            kind=WEIGHTS,
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
            job_id=ctx.job_id,
            meta={"arch_hash": rec.arch.arch_hash, "subnet_id": rec.subnet_id},
        )


def run_verify(state: JobState) -> None:
    """Measure every point of the job's front and of each target's front on the test split; store them.

    All fronts are drawn from the job's one pool; every point of any of them is verified once,
    from the one model deployed to score it (that model's weights are saved). The job's own
    final front is stored last, so that its presence means the stage finished.
    """
    ctx = state.ctx
    pool = list(state.pool.values())
    if state.reference is None:
        raise RuntimeError("the verify stage needs the measure stage of this run before it")
    # Verification adds test accuracy only: the fronts, drawn on validation values, stay as they are.
    own = job_front(state, pool, state.reference)
    targets = target_fronts(state, pool)
    on_any: dict[str, SubnetRecord] = {}
    for front in [own, *targets.values()]:
        for i in front.indices:
            on_any.setdefault(pool[i].arch.arch_hash, pool[i])
    saved = _saved_weights(state)

    def keep_weights(rec: SubnetRecord, model: nn.Module) -> None:
        if rec.arch.arch_hash not in saved:
            _save_weights(state, rec, model)
            saved.add(rec.arch.arch_hash)

    verified = measure_subnets(
        state,
        [r.arch for r in on_any.values()],
        source="verify",
        stage=STAGE,
        test_split=True,
        on_deployed=keep_weights,
    )
    for rec in verified:  # verified by an earlier attempt that stopped before saving its weights
        if rec.arch.arch_hash not in saved:
            keep_weights(rec, deploy_subnet(state, rec.arch))
    pool = list(state.pool.values())
    final_round = ctx.spec.search.rounds + 1
    for name, front in targets.items():
        save_front(state, pool, front, round_no=final_round, final=True, stage=STAGE, target=name)
    save_front(state, pool, own, round_no=final_round, final=True, stage=STAGE)
