"""Stage 4: fit the job's predictors, score them on held-out subnets, store both, and hand them on."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from nas.pipeline.state import JobState, SubnetRecord
from nas.search import MeasuredPoint
from nas.store import crud
from nas.store.models import Measurement, Subnet
from predictors import Predictor, XGBAccuracyPredictor, XGBLatencyPredictor, evaluate_predictions
from supernets import Arch

STAGE = "predict"
CV_FOLDS = 4
PRETRAIN_ARCHS = 500


def _make(state: JobState, key: str) -> Predictor:
    metric, _, hardware = key.partition("@")
    if metric == "accuracy":
        return XGBAccuracyPredictor(space=state.space, n_pretrain=PRETRAIN_ARCHS, seed=state.ctx.spec.seed)
    if metric == "latency_ms":
        return XGBLatencyPredictor(space=state.space, profile=hardware, seed=state.ctx.spec.seed)
    raise ValueError(f"no learned predictor for {key!r}")


def shared_latency_data(state: JobState, profile: str) -> tuple[list[Arch], list[float]]:
    """Every subnet of this geometry measured on ``profile`` by any job: the predictor grows with use."""
    with state.ctx.db.read() as s:
        rows = s.execute(
            select(Subnet.arch, Measurement.median_ms, Subnet.measurement_key)
            .join(Measurement, Measurement.arch_hash == Subnet.measurement_key)
            .where(Measurement.profile == profile, Measurement.batch == 1)
        ).all()
    seen: dict[str, tuple[Arch, float]] = {}
    for arch_data, median, key in rows:
        if key in seen:
            continue
        # Only this geometry's rows: another family's arch may not even parse, and one of this family
        # in another geometry (widths, classes, image size...) has another measurement key.
        try:
            arch = Arch.from_dict(arch_data)
        except (KeyError, TypeError, ValueError):
            continue
        if state.measurement_hash(arch) == key:
            seen[key] = (arch, float(median))
    return [a for a, _ in seen.values()], [v for _, v in seen.values()]


def _cross_validated(state: JobState, key: str, archs: list[Arch], y: np.ndarray) -> dict[str, float | int]:
    """Quality on held-out folds: each subnet predicted by a predictor that never saw it."""
    n = len(archs)
    if n < 2 * CV_FOLDS:
        return {}
    order = np.random.default_rng(state.ctx.spec.seed).permutation(n)
    pred = np.empty(n)
    for fold in np.array_split(order, CV_FOLDS):
        train = np.setdiff1d(order, fold)
        model = _make(state, key).fit([archs[i] for i in train], y[train])
        pred[fold] = model.predict([archs[i] for i in fold])
    return evaluate_predictions(y, pred).to_dict()


def _store(
    state: JobState, key: str, model: Predictor, metrics: dict[str, float | int], *, source: str
) -> None:
    ctx = state.ctx
    model.metadata.metrics = dict(metrics)
    kind = "accuracy" if key == "accuracy" else "latency"
    obj = ctx.store.put_bytes(
        f"predictors/{state.space_key}/{key}/{ctx.job_id}-{source}.bin", model.to_bytes()
    )
    with ctx.db.session() as s:
        art = crud.add_artifact(
            s,
            kind="predictor",
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
            job_id=ctx.job_id,
            meta={"target": key, "source": source},
        )
        crud.add_predictor(
            s,
            kind=kind,
            target=key,
            space_key=state.space_key,
            n_samples=model.metadata.n_samples,
            metrics={**metrics, "evaluated_on": source},
            artifact_id=art.id,
            job_id=ctx.job_id,
        )
    ctx.emit(
        "predictor",
        {"target": key, "n_samples": model.metadata.n_samples, "source": source, **metrics},
        stage=STAGE,
    )


def fit_predictors(
    state: JobState, records: list[SubnetRecord], *, store_quality: bool = True
) -> dict[str, Predictor]:
    """One fitted predictor per learned metric (accuracy, latency per profile).

    With ``store_quality`` (the predict stage) each is cross-validated and stored, and the
    stage's progress counts them; without, they are only fitted (the search's refits).
    """
    out: dict[str, Predictor] = {}
    keys = ["accuracy"] + [f"latency_ms@{p}" for p in state.ctx.spec.hardware]
    for n, key in enumerate(keys):
        state.ctx.check_cancel()
        if key == "accuracy":
            archs = [r.arch for r in records]
            y = np.array([r.accuracy_val for r in records])
        else:
            archs, values = shared_latency_data(state, key.partition("@")[2])
            y = np.array(values)
        if len(archs) < 2:
            continue
        model = _make(state, key).fit(archs, y)
        out[key] = model
        if store_quality:
            _store(state, key, model, _cross_validated(state, key, archs, y), source="cross-validation")
            state.ctx.progress(STAGE, n + 1, len(keys))
    return out


def run_predict(state: JobState) -> None:
    """Fit one predictor per objective and hardware on the job's pool; the search stage takes them."""
    state.predictors = fit_predictors(state, list(state.pool.values()))


def score_predictions(state: JobState, points: list[MeasuredPoint], *, round_no: int) -> None:
    """Quality of the predictions a search round made, on the subnets it then measured for real."""
    with_pred = [p for p in points if p.predicted]
    if len(with_pred) < 2:
        return
    for key in with_pred[0].predicted or {}:
        if key not in with_pred[0].values or key in ("params", "flops", "size_bytes"):
            continue
        y = [p.values[key] for p in with_pred]
        pred = [(p.predicted or {})[key] for p in with_pred]
        metrics = evaluate_predictions(y, pred).to_dict()
        state.ctx.emit(
            "predictor", {"target": key, "source": f"search round {round_no}", **metrics}, stage="search"
        )
