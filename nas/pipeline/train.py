"""Stage 2: train the supernet by the job's schedule, checkpointing every epoch, resuming from the last."""

from __future__ import annotations

from typing import Any

from nas.assignment import save_assignment
from nas.pipeline.state import CHECKPOINT, JobState
from nas.store import crud
from supernets import Supernet
from supernets.evaluate import score_subnet
from supernets.training import TrainConfig, TrainingStoppedError, make_trainer

STAGE = "train"
EPOCH_EVAL_IMAGES = 1000
EPOCH_CALIB_IMAGES = 500


def _quick_accuracy(state: JobState, supernet: Supernet, which: str) -> float:
    """Validation accuracy of the largest or smallest subnet on a slice, for the training curve."""
    space = state.space
    arch = space.largest() if which == "largest" else space.smallest()
    splits = state.splits
    return score_subnet(
        supernet,
        arch,
        state.calibration_images[:EPOCH_CALIB_IMAGES],
        splits.val_x[:EPOCH_EVAL_IMAGES],
        splits.val_y[:EPOCH_EVAL_IMAGES],
    )


def run_train(state: JobState) -> None:
    ctx = state.ctx
    spec = ctx.spec.training
    config: TrainConfig = spec.train_config()
    loaded = state.load_checkpoint()  # verified by sha256; a corrupt newest falls back an epoch
    done_epochs = int((loaded[0].meta or {}).get("epoch", 0)) if loaded is not None else 0
    if done_epochs >= config.epochs:
        return
    if spec.schedule not in type(state.space).schedules:
        raise ValueError(
            f"training.schedule {spec.schedule!r} cannot train family {state.space.family}; "
            f"use one of {list(type(state.space).schedules)}"
        )
    supernet = state.new_supernet()
    extra: dict[str, Any] = {}
    if spec.schedule == "standalone":
        extra["arch"] = state.space.largest()
    trainer = make_trainer(
        spec.schedule, supernet=supernet, space=state.space, config=config, seed=ctx.spec.seed, **extra
    )
    if loaded is not None:
        trainer.load_state_dict(loaded[1])
        ctx.emit("log", {"message": f"resumed training after epoch {done_epochs}"}, stage=STAGE)
    splits = state.splits
    total = config.epochs
    while trainer.epoch < total:
        epoch = trainer.epoch
        steps_per_epoch = max(1, -(-len(splits.train_x) // config.batch_size))

        def on_step(step: int, steps: int, loss: float, epoch: int = epoch) -> None:
            ctx.progress(STAGE, epoch * steps + step, total * steps, loss=loss, epoch=epoch + 1)

        try:
            metrics = trainer.train_epoch(
                splits.train_x, splits.train_y, on_step=on_step, should_stop=ctx.should_stop
            )
        except TrainingStoppedError:
            ctx.check_cancel()
            raise
        obj = ctx.store.put_torch(
            f"jobs/{ctx.job_id}/checkpoints/epoch-{trainer.epoch:04d}.pt", trainer.state_dict()
        )
        with ctx.db.session() as s:
            crud.add_artifact(
                s,
                job_id=ctx.job_id,
                owner_id=None,
                kind=CHECKPOINT,
                uri=obj.uri,
                sha256=obj.sha256,
                size_bytes=obj.size_bytes,
                meta={"epoch": trainer.epoch, "schedule": spec.schedule},
            )
        payload = {
            "epoch": trainer.epoch,
            "loss": float(metrics.get("loss", float("nan"))),
            "lr": float(metrics.get("lr", float("nan"))),
            "val_acc_largest": _quick_accuracy(state, supernet, "largest"),
            "val_acc_smallest": _quick_accuracy(state, supernet, "smallest"),
            "steps": steps_per_epoch,
        }
        payload |= {k: float(v) for k, v in metrics.items() if k in ("temperature", "max_member_share")}
        report = getattr(trainer, "assignment_report", None)  # mixtures: configurations x members
        if callable(report):
            save_assignment(ctx.db, ctx.store, ctx.job_id, report(), epoch=trainer.epoch)
        ctx.emit("epoch", payload, stage=STAGE)
    state.hand_on(supernet)  # the next stages use it as it is; only a resumed run loads the checkpoint
