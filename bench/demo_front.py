"""The front a user gets from the demo job (issue 13): which training levers give it a front worth having.

Part 1, the levers: for each lever configuration the demo's supernet is trained as the pipeline's
train stage does (the job spec's ``TrainingSpec.train_config()``, ``make_trainer``, the spec's seed
and initialisation), at one equal compute for every configuration (the same number of images
seen, i.e. the same SGD steps and subnet forward-backward passes), and a fixed set of subnets
spanning the FLOPs range is scored by the pipeline's own routine (``nas.pipeline.evaluate.
deploy_subnet``: extract, recalibrate BN, fold; then ``evaluate_accuracy``) on the 10,000-image
test split, which no training or tuning sees. Per configuration: Kendall tau of accuracy against
FLOPs beside its split-half noise ceiling, the share of middle subnets above the smallest, the
accuracy span against the binomial standard error, the (accuracy, FLOPs) front of the set, the
accuracy predictor's cross-validated tau on the set, and the training wall time.

Part 2, the job: the real demo job (``examples/fmnist-demo.yaml``, as committed) run end to end
by the pipeline in this process (SQLite, the real latency protocol, the profile's own settings),
and read back as the dashboard shows it: the final front's points and latency span, the middle
of the measured pool against its smallest, the predict stage's cross-validated Kendall tau, and
the wall time of each stage.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml
from scipy import stats

from bench.common import write_report
from nas.data import DatasetSplits, load_dataset
from nas.pareto import non_dominated
from nas.pipeline.evaluate import deploy_subnet
from nas.pipeline.predict import CV_FOLDS, PRETRAIN_ARCHS
from nas.pipeline.state import JobState
from nas.schemas import JobSpec
from predictors import XGBAccuracyPredictor, evaluate_predictions, get_profile
from supernets import Arch, SearchSpace, Supernet, evaluate_accuracy, make_space
from supernets.training import SubnetSampler, make_anchors, make_sampler, make_trainer, schedule_samplers

ROOT = Path(__file__).resolve().parent.parent
DEMO_SPEC = ROOT / "examples" / "fmnist-demo.yaml"
DATA_DIR = Path("/usr/share/datasets")
JOB_FILE = "job.json"  # (database URL, job id, wall seconds) of a demo job run into a folder
LOAD_FILE = "load.json"  # the load averages before and after that run, written by its runner
JOB_WAIT_S = 2400
# The demo as the issue measured it: 8,000 images, 5 epochs, uniform sampling, largest + smallest.
TODAY: dict[str, Any] = {
    "search_space": {"resolutions": [20, 24, 28]},
    "training": {"anchors": "sandwich", "sampler": "uniform", "num_random_subnets": 2},
    "epochs_shape": 5,  # the images seen are ``epochs_shape`` passes over budget / epochs_shape images
}
# Each lever adds to the one before, so the table reads as a path from today's recipe to the new one.
LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("today", {}),
    (
        "+sampling",  # the whole complexity range: only the largest fixed, 3 subnets one per FLOPs stratum
        {"training": {"anchors": "largest", "sampler": "flops-stratified", "num_random_subnets": 3}},
    ),
    ("+data", {"epochs_shape": 2}),  # two passes over 2.5x as many images instead of five
    ("+space", {"search_space": {"resolutions": [16, 20, 24, 28]}}),  # a wider accuracy (and cost) range
]


@dataclass
class _Trained:
    """What the pipeline's ``deploy_subnet`` reads from a job's state: the supernet and its BN images."""

    supernet: Supernet
    calibration_images: torch.Tensor

    def trained_supernet(self) -> Supernet:
        return self.supernet


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "budget_images": 512,
            "subnets": 8,
            "test_images": 1000,
            "seeds": {"today": [0], "+space": [0]},
            "job_seeds": [0],
            "levers": ["today", "+space"],
            "job": {"limit": 600, "epochs": 1, "measure_budget": 8, "rounds": 1, "population": 8},
        }
    return {
        # 6,000 images seen per configuration (47 steps of 128, 15% of the demo's 40,000): six
        # trainings fit in about 25 minutes on a 2-core machine shared with three other benchmarks.
        "budget_images": 6_000,
        "subnets": 14,
        "test_images": 10_000,
        "seeds": {"today": [0, 1, 2], "+space": [0, 1, 2]},
        "job_seeds": [0, 1, 2],
        "levers": [name for name, _ in LEVERS],
        "job": None,  # the committed demo spec as it is
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def lever_configs(names: list[str]) -> dict[str, dict[str, Any]]:
    """Each lever's cumulative overrides of today's demo."""
    out: dict[str, dict[str, Any]] = {}
    current = copy.deepcopy(TODAY)
    for name, extra in LEVERS:
        current = _merge(current, extra)
        if name in names:
            out[name] = copy.deepcopy(current)
    return out


def lever_spec(demo: dict[str, Any], lever: dict[str, Any], budget: int, seed: int) -> JobSpec:
    """The demo spec with a lever's settings, training on ``budget`` images seen in total."""
    shape = int(lever["epochs_shape"])
    raw = _merge(demo, {"search_space": lever["search_space"], "training": lever["training"]})
    raw["training"]["epochs"] = shape
    raw["dataset"] = {**raw["dataset"], "limit": budget // shape}
    raw["seed"] = seed
    return JobSpec.model_validate(raw)


def subnet_set(space: SearchSpace, n: int) -> list[Arch]:
    """The smallest, the largest and ``n - 2`` subnets at evenly spaced FLOPs quantiles of uniform draws."""
    rng = np.random.default_rng(12345)
    pool = {a.arch_hash: a for a in (space.sample(rng) for _ in range(4000))}
    ranked = sorted(pool.values(), key=lambda a: space.total_cost(a).flops)
    picks = [ranked[round(q * (len(ranked) - 1))] for q in np.linspace(0.02, 0.98, n - 2)]
    out = {a.arch_hash: a for a in [space.smallest(), *picks, space.largest()]}
    return sorted(out.values(), key=lambda a: space.total_cost(a).flops)


def _train(spec: JobSpec, data: DatasetSplits, space: SearchSpace) -> tuple[Supernet, float]:
    """The pipeline's train stage without storage: its config, seed, initialisation and hand-on."""
    torch.manual_seed(spec.seed)
    net = space.build_supernet(mean=data.mean, std=data.std)
    trainer = make_trainer(
        spec.training.schedule, supernet=net, space=space, config=spec.training.train_config(), seed=spec.seed
    )
    started = time.perf_counter()
    while trainer.epoch < trainer.total_epochs:
        trainer.train_epoch(data.train_x, data.train_y)
    wall = time.perf_counter() - started
    net.zero_grad(set_to_none=True)
    net.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    net.eval()
    return net, wall


def step_mflops(spec: JobSpec, space: SearchSpace, draws: int = 200) -> float:
    """Mean MFLOPs of the subnets one training step runs (anchors + sampled): compute per pass differs."""
    config = spec.training.train_config()
    anchors = make_anchors(config.anchors, space).anchors()
    sampler = make_sampler(config.sampler or schedule_samplers(spec.training.schedule)[0], space)
    assert isinstance(sampler, SubnetSampler)  # the demo trains by a sandwich-like schedule
    rng = np.random.default_rng(spec.seed)
    fixed = sum(space.total_cost(a).flops for a in (anchors.teacher, *anchors.students))
    sampled = [
        sum(space.total_cost(a).flops for a in sampler.draw(rng, config.num_random_subnets))
        for _ in range(draws)
    ]
    return float(fixed + np.mean(sampled)) / 1e6


def _cv_tau(space: SearchSpace, archs: list[Arch], y: np.ndarray, seed: int) -> float:
    """The predict stage's cross-validation (same folds, predictor and pretraining) on ``archs``."""
    order = np.random.default_rng(seed).permutation(len(archs))
    pred = np.empty(len(archs))
    for fold in np.array_split(order, CV_FOLDS):
        train = np.setdiff1d(order, fold)
        model = XGBAccuracyPredictor(space=space, n_pretrain=PRETRAIN_ARCHS, seed=seed)
        model.fit([archs[i] for i in train], y[train])
        pred[fold] = model.predict([archs[i] for i in fold])
    return float(evaluate_predictions(y, pred).kendall_tau)


def score_config(
    name: str, spec: JobSpec, test: DatasetSplits, n_subnets: int, test_images: int
) -> dict[str, Any]:
    data = load_dataset(spec.dataset.model_dump(), data_dir=DATA_DIR, seed=spec.seed)
    space = make_space(
        spec.search_space.model_dump(),
        in_channels=data.channels,
        num_classes=data.num_classes,
        image_size=data.image_size,
    )
    net, wall = _train(spec, data, space)
    trained = _Trained(net, data.calibration_images(spec.training.bn_calibration_images, seed=spec.seed))
    archs = subnet_set(space, n_subnets)
    half = test_images // 2
    x, y = test.test_x[: 2 * half], test.test_y[: 2 * half]
    halves = np.zeros((len(archs), 2))
    for i, arch in enumerate(archs):
        model = deploy_subnet(cast(JobState, trained), arch)  # the pipeline's own scoring routine
        halves[i] = [
            evaluate_accuracy(model, x[:half], y[:half]),
            evaluate_accuracy(model, x[half:], y[half:]),
        ]
    acc = halves.mean(axis=1)
    flops = np.array([space.total_cost(a).flops for a in archs], dtype=float)
    tau = float(stats.kendalltau(acc, flops).statistic)
    r = float(stats.kendalltau(halves[:, 0], halves[:, 1]).statistic)
    ceiling = 2 * r / (1 + r) if r > -1 else float("nan")  # split-half, Spearman-Brown corrected
    smallest = acc[0]
    middle = acc[1:-1]
    se = float(np.sqrt(acc.mean() * (1 - acc.mean()) / (2 * half)))
    front = non_dominated(np.stack([acc, flops], axis=1), ["max", "min"])
    front_flops = flops[front]
    return {
        "config": name,
        "seed": spec.seed,
        "train_images": len(data.train_x),
        "epochs": spec.training.epochs,
        "steps": spec.training.epochs * -(-len(data.train_x) // spec.training.batch_size),
        "mflops_per_step": step_mflops(spec, space),
        "resolutions": str(spec.search_space.model_dump().get("resolutions")),
        "tau_acc_flops": tau,
        "noise_ceiling_tau": ceiling,
        "middle_above_smallest": float(np.mean(middle > smallest)),
        "acc_smallest": float(smallest),
        "acc_largest": float(acc[-1]),
        "acc_middle_mean": float(middle.mean()),
        "span_points": float(100 * (acc.max() - acc.min())),
        "span_over_se": float((acc.max() - acc.min()) / se),
        "front_points": len(front),
        "front_flops_span": float(front_flops.max() / front_flops.min()),
        "predictor_cv_tau": _cv_tau(space, archs, acc, spec.seed),
        "train_wall_s": wall,
        "accuracies": [round(float(a), 4) for a in acc],
        "mflops": [round(f / 1e6, 2) for f in flops],
    }


# -- part 2: the real demo job ---------------------------------------------------------------------


def _measure(items: list[tuple[torch.nn.Module, tuple[int, ...]]], profile: str) -> list[Any]:
    """The Ray latency task's measurement, in this process (the profile's default protocol)."""
    from predictors import measure_latency

    return [measure_latency(m, input_shape=s, profile=get_profile(profile)) for m, s in items]


def start_demo_job(raw: dict[str, Any], workdir: Path) -> tuple[str, str, float]:
    """Run the demo job end to end by the pipeline in ``workdir``; (database URL, job id, wall seconds)."""
    from nas.pipeline import run_job
    from nas.settings import Settings
    from nas.store import Database, crud

    settings = Settings(
        database_url=f"sqlite:///{workdir / 'nas.db'}",
        artifact_root=str(workdir / "artifacts"),
        data_dir=DATA_DIR,
        scheduler="none",
    )
    db = Database(settings.database_url)
    db.upgrade()
    spec = JobSpec.model_validate(raw)
    with db.session() as s:
        user = crud.create_user(s, name="demo")
        job_id = crud.create_job(
            s, owner_id=user.id, name=spec.name or "demo", spec=spec.model_dump(mode="json")
        ).id
    db.dispose()
    started = time.perf_counter()
    run_job(job_id, settings=settings, measure_latency=_measure)
    done = (settings.database_url, job_id, time.perf_counter() - started)
    (workdir / JOB_FILE).write_text(json.dumps(done))
    return done


def read_demo_job(database_url: str, job_id: str, wall: float) -> dict[str, Any]:
    """What the dashboard shows of a finished job: front, measured pool, predictor quality, stage times."""
    from sqlalchemy import select

    from nas.store import Database, crud
    from nas.store.models import JobEvent

    db = Database(database_url)
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None
        spec = JobSpec.model_validate(job.spec)
        front = crud.latest_front(s, job_id=job_id, final_only=True)
        points = crud.front_points(s, front_id=front.id) if front is not None else []
        measured = [dict(p.measured) for p, _ in points]
        subnets = [(x.arch, x.accuracy_val, x.accuracy_test) for x in crud.list_subnets(s, job_id=job_id)]
        preds = crud.list_predictors(s, target="accuracy", job_id=job_id)
        cv = [p.metrics for p in preds if p.metrics.get("evaluated_on") == "cross-validation"]
        events = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()
        stage_at: dict[str, Any] = {}
        for ev in events:
            if ev.stage and ev.stage not in stage_at:
                stage_at[ev.stage] = ev.ts
        last_ts = events[-1].ts if events else None
        status, error = str(job.status.value), job.error
    db.dispose()
    lat_key = next((k for k in (measured[0] if measured else {}) if k.startswith("latency")), None)
    lats = [float(m[lat_key]) for m in measured] if lat_key else []
    space = make_space(spec.search_space.model_dump(), in_channels=1, num_classes=10, image_size=28)
    smallest, largest = space.smallest().arch_hash, space.largest().arch_hash
    by_hash = {Arch.from_dict(a).arch_hash: (v, t) for a, v, t in subnets if v is not None}
    small_val = by_hash.get(smallest, (None, None))[0]
    middle = [v for h, (v, _) in by_hash.items() if h not in (smallest, largest)]
    times = [*stage_at.items(), ("end", last_ts)]
    stage_s = {
        f"{name}_s": round((times[i + 1][1] - at).total_seconds(), 1)
        for i, (name, at) in enumerate(times[:-1])
    }
    return {
        "seed": spec.seed,
        "status": status,
        "error": error,
        "wall_s": wall,
        "stage_s": stage_s,
        "front_points": len(measured),
        "front_latency_span": (max(lats) / min(lats)) if lats else None,
        "front": measured,
        "measured_subnets": len(by_hash),
        "middle_above_smallest_val": (
            float(np.mean([v > small_val for v in middle])) if middle and small_val is not None else None
        ),
        "acc_smallest_val": small_val,
        "acc_largest_val": by_hash.get(largest, (None, None))[0],
        "cv_kendall_tau": cv[0].get("kendall_tau") if cv else None,
    }


SUMMARY_KEYS = ("tau_acc_flops", "noise_ceiling_tau", "middle_above_smallest", "span_over_se", "train_wall_s")


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else ""
    return f"{statistics.mean(values):.3f} (range {min(values):.3f}..{max(values):.3f})"


# Each demo-job target: (name, goal text, the job's value, whether that value meets it).
JOB_TARGETS: list[tuple[str, str, str, Callable[[Any], bool]]] = [
    ("demo front points", ">= 5", "front_points", lambda v: (v or 0) >= 5),
    ("demo front latency span", ">= 2x", "front_latency_span", lambda v: (v or 0) >= 2),
    (
        "demo middle subnets above the smallest (val)",
        "> 0.5 of them",
        "middle_above_smallest_val",
        lambda v: (v or 0) > 0.5,
    ),
    (
        "demo accuracy predictor CV Kendall tau",
        ">= 0.3",
        "cv_kendall_tau",
        lambda v: v is not None and v >= 0.3,
    ),
    ("demo wall time", "<= ~600 s on 2 cores (660 s)", "wall_s", lambda v: v is not None and v <= 660),
]


def job_targets(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The demo-job targets over seeds: the value per seed, met only when every seed's run meets it."""
    out: dict[str, dict[str, Any]] = {}
    for name, goal, key, ok in JOB_TARGETS:
        values = [j.get(key) for j in jobs]
        met = bool(jobs) and all(j["status"] == "succeeded" and ok(j.get(key)) for j in jobs)
        out[name] = {"value": values, "goal": f"{goal} on every seed", "met": met}
    return out


def _read_job_dir(job_dir: Path) -> dict[str, Any]:
    """A demo job that ``--run-job DIR`` ran, read back (with the load averages the runner recorded)."""
    for _ in range(JOB_WAIT_S // 10):  # the job may still be running beside the levers
        if (job_dir / JOB_FILE).exists():
            break
        time.sleep(10)
    url, job_id, wall = json.loads((job_dir / JOB_FILE).read_text())
    load = json.loads((job_dir / LOAD_FILE).read_text()) if (job_dir / LOAD_FILE).exists() else {}
    try:
        job = read_demo_job(url, job_id, wall)
    except Exception as exc:  # the levers are reported anyway
        job = {"status": "unread", "error": repr(exc), "wall_s": wall, "stage_s": {}, "front": []}
        job |= {key: None for _, _, key, _ in JOB_TARGETS if key != "wall_s"}
    return job | {"run_separately_in": str(job_dir), "load_average": load}


def _run_job_here(raw: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="demo-front-") as tmp:
        before = [round(v, 2) for v in os.getloadavg()]
        job = read_demo_job(*start_demo_job(raw, Path(tmp)))
        return job | {"load_average": {"before": before, "after": [round(v, 2) for v in os.getloadavg()]}}


def run(*, quick: bool, out_dir: Path, job_dirs: list[Path] | None = None) -> dict[str, Any]:
    """The levers, then the demo job per seed: run here, or (``job_dirs``) read from ``--run-job`` runs."""
    s = _settings(quick)
    load_before = [round(v, 2) for v in os.getloadavg()]
    demo = yaml.safe_load(DEMO_SPEC.read_text())
    # the full official test split (the job's own splits cap it at the dataset limit)
    test = load_dataset({"kind": "builtin", "name": "fashion-mnist"}, data_dir=DATA_DIR, seed=0)
    rows: list[dict[str, Any]] = []
    configs = lever_configs(s["levers"])
    for name, lever in configs.items():
        for seed in s["seeds"].get(name, [0]):
            spec = lever_spec(demo, lever, s["budget_images"], seed)
            row = score_config(name, spec, test, s["subnets"], s["test_images"])
            rows.append(row)
            print({k: v for k, v in row.items() if k not in ("accuracies", "mflops")}, flush=True)
            out_dir.mkdir(parents=True, exist_ok=True)  # kept should the job part fail
            (out_dir / ".demo_front.levers.json").write_text(json.dumps(rows, indent=1))

    def of(name: str, key: str) -> list[float]:
        return [float(r[key]) for r in rows if r["config"] == name]

    summary = {
        name: {
            key: _spread(of(name, key))
            for key in (
                "tau_acc_flops",
                "noise_ceiling_tau",
                "middle_above_smallest",
                "span_over_se",
                "train_wall_s",
            )
        }
        for name in configs
    }
    job_raw = (
        demo
        if s["job"] is None
        else _merge(
            demo,
            {
                "dataset": {"limit": s["job"]["limit"]},
                "training": {"epochs": s["job"]["epochs"]},
                "search": {k: s["job"][k] for k in ("measure_budget", "rounds", "population")},
            },
        )
    )
    jobs = (
        [_read_job_dir(d) for d in job_dirs]
        if job_dirs
        else [_run_job_here({**job_raw, "seed": seed}) for seed in s["job_seeds"]]
    )
    for job in jobs:
        print({k: v for k, v in job.items() if k != "front"}, flush=True)
    today, best = of("today", "tau_acc_flops"), of(s["levers"][-1], "tau_acc_flops")
    targets = job_targets(jobs)
    targets[f"lever tau(acc, FLOPs): {s['levers'][-1]} above today beyond the seed spread"] = {
        "value": f"{_spread(best)} vs {_spread(today)}",
        "goal": "min(new) > max(today)",
        "met": bool(best and today and min(best) > max(today)),
    }
    config = {
        "demo_spec": str(DEMO_SPEC.relative_to(ROOT)),
        "job_spec": job_raw,
        "levers": configs,
        **{k: v for k, v in s.items() if k != "job"},
        "test_split": f"Fashion-MNIST's test split, first {s['test_images']} images (halves: ceiling)",
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    return write_report(
        "demo_front",
        config=config,
        results={"levers": rows, "summary": summary, "jobs": jobs},
        targets=targets,
        out_dir=out_dir,
        notes=NOTES + " " + reading(targets, jobs),
        tables=[
            (
                "Levers (test split, equal images seen per configuration)",
                [{k: v for k, v in r.items() if k not in ("accuracies", "mflops")} for r in rows],
            ),
            ("Levers over seeds (mean, range)", [{"config": n, **v} for n, v in summary.items()]),
            (
                "The demo job, end to end, one row per seed",
                [{k: v for k, v in j.items() if k not in ("front", "stage_s")} | j["stage_s"] for j in jobs],
            ),
            *[(f"The demo job's final front, seed {j['seed']}", j["front"]) for j in jobs],
        ],
    )


def reading(targets: dict[str, dict[str, Any]], jobs: list[dict[str, Any]]) -> str:
    """What the targets say, in words: which hold on every seed's run and which do not."""
    met = [name for name, t in targets.items() if t["met"]]
    unmet = [name for name, t in targets.items() if not t["met"]]
    loads = [j.get("load_average") for j in jobs]
    return (
        f"What to conclude: over {len(jobs)} run(s) of the demo job (seeds "
        f"{[j.get('seed') for j in jobs]}), met on every seed: {'; '.join(met) or 'none'}. "
        f"Not met: {'; '.join(unmet) or 'none'}. Load averages of the job runs (1, 5, 15 min, "
        f"before and after): {loads}. What this does not show: the lever rows are one budget "
        "(6,000 images seen), the job rows one spec; a different dataset or hardware profile may need "
        "other levers."
    )


NOTES = (
    "Read the lever rows as a path from today's recipe (the first) to the demo's (the last), at one "
    "equal compute: tau of test accuracy against FLOPs beside its split-half noise ceiling, the share "
    "of middle subnets above the smallest, and whether that share comes from the middle rising or the "
    "smallest falling (acc_smallest, acc_middle_mean). The job rows are runs of the committed demo "
    "spec, one per seed; a wall time counts only on an otherwise idle machine (see the load averages)."
)


def main() -> None:
    """``python -m bench.demo_front [--quick] [--out-dir DIR] [--job-dir DIR | --run-job DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "reports")
    parser.add_argument(
        "--job-dir",
        type=Path,
        action="append",
        help="read the demo job a --run-job DIR ran instead of running one (repeat: one per seed)",
    )
    parser.add_argument("--run-job", type=Path, help="only run the committed demo job into DIR (no report)")
    parser.add_argument("--seed", type=int, help="with --run-job: the job's seed instead of the spec's")
    args = parser.parse_args()
    if args.run_job is not None:
        args.run_job.mkdir(parents=True, exist_ok=True)
        raw = yaml.safe_load(DEMO_SPEC.read_text())
        if args.seed is not None:
            raw["seed"] = args.seed
        done = start_demo_job(raw, args.run_job)
        print(json.dumps(read_demo_job(*done), indent=1, default=str))
        return
    doc = run(quick=args.quick, out_dir=args.out_dir, job_dirs=args.job_dir)
    for name, target in doc["targets"].items():
        print(f"{name}: {target['value']} ({target['goal']}) -> {'met' if target['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
