"""``nas bench search``: test-split hypervolume at equal budgets of real measurements, and search speed.

On ``ofa-mbv3`` over Fashion-MNIST, objectives accuracy (max) and latency on ``cpu-fp32`` (min),
over the supernet ``nas bench predictors`` trains and caches (``bench.predictors.SUPERNET``: the
full training split), side by side in one run and paired per seed (5 seeds):

* (a) random: measure uniformly sampled subnets;
* (b) nsga2-direct: Optuna's NSGA-II asks, every new subnet is measured for real;
* (c) predictor-fixed, the predictor-based baseline: the same XGBoost predictors fitted ONCE on a
  random sample of half the budget (the random run's prefix), one NSGA-II on them, the other
  half measured from the predicted front; no refinement rounds (``refine_search`` with one round);
* (d) refine: our predictor-in-the-loop search (``nas.search.refine_search``) as the service runs
  it: the measure stage's initial sample (the largest, the smallest, one per stratum of log-FLOPs),
  then rounds of NSGA-II on the predictors, the chosen candidates measured, refitted;
  refine-uniform starts the same search from the random run's prefix instead.

A real measurement extracts the subnet from the supernet, scores it with ``score_subnet`` on the
validation split (what the search sees) and takes its median latency with ``measure_latency``.
Measurements are cached by architecture; each method is charged for every distinct subnet it asks
for. Random and NSGA-II runs are taken once at the largest budget and read at smaller ones.

Scoring: the front a method returns at a budget (non-dominated on validation accuracy and latency)
is RE-MEASURED ON THE TEST SPLIT (all 10,000 images, seen by no method) and its hypervolume taken
with a reference point fixed BEFORE any run: the nadir of the random baseline's front, taken from a
pilot random sample of 100 subnets with its own seed that no method uses (its worst test accuracy and
worst latency on the front, pushed out by 10% of the front's range). The benchmark sets no
constraints, so they cannot serve; the space's extremes cannot either, as a supernet may train the
smallest subnet better than the middle of the space, which would leave most fronts outside the box.
A random front's nadir bounds the trade-off region a search is expected to improve, so the
hypervolume measures the whole trade-off rather than mostly the best accuracy (the old reference,
accuracy 0 and twice the largest subnet's latency, did).

Also timed: a predictor-only search that evaluates 20,000 DISTINCT architectures (repeats a
converging population looks up are not counted), vectorised NSGA-II against Optuna's NSGA-II.

Full run (not yet run under these rules), alone on the machine and after ``nas bench predictors``
has cached the supernet (else ~2.2 h more go to training it first):
``flock /tmp/nas-bench.lock nice -n 5 .venv/bin/nas bench search`` (or ``python -m bench.search``).
Estimated at about 2 h on this 2-core CPU: ~2,050 distinct subnets (100 of them the pilot) scored
on 6,500 images (validation and calibration) and timed, ~2.5 s each (~85 min), plus the fronts'
~300-500 distinct subnets re-scored on 10,500 images (~20-35 min). ``--quick`` runs the same code
path on the quick supernet (384 images, 1 epoch) with budgets of 10-20, a pilot of 10 and a
5,000-architecture speed search (about 5-13 minutes at nice 10 on the shared machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from bench.cells import CellStore, RecordLog
from bench.common import run_from_command_line, write_report
from bench.predictors import QUICK_SUPERNET, SPACE, SUPERNET, load_data, trained_supernet
from nas.pareto import Objective, hypervolume, non_dominated
from nas.pipeline.measure import draw_initial_sample
from nas.search import evolve_on_predictors, refine_search, search_with_optuna
from predictors import XGBAccuracyPredictor, XGBLatencyPredictor, environment, get_profile, measure_latency
from supernets import Arch, SearchSpace, Supernet, make_space, score_subnet

NAME = "search"
PROFILE = "cpu-fp32"
LATENCY = f"latency_ms@{PROFILE}"
OBJECTIVES = [
    Objective(metric="accuracy", goal="max"),
    Objective(metric="latency_ms", goal="min", hardware=PROFILE),
]
GOALS = [o.goal for o in OBJECTIVES]
METHODS = ("random", "nsga2-direct", "predictor-fixed", "refine-uniform", "refine")


def _config(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "supernet": dict(QUICK_SUPERNET),
            "calib_images": 100,
            "reference_pilot": 10,
            "warmup": 1,
            "repeats": 5,
            "seeds": [0, 1, 2, 3, 4],
            "random_budgets": [10, 20],
            "nsga2_budgets": [10],
            "fixed_budgets": [10],
            "refine_budgets": [10],
            "accuracy_pretrain": 200,
            "population": 16,
            "generations": 4,
            "speed_evaluations": 5_000,
            "optuna_speed_trials": 200,
        }
    return {
        "supernet": dict(SUPERNET),  # the supernet `nas bench predictors` trains and caches
        "calib_images": 500,
        "reference_pilot": 100,
        "warmup": 3,
        "repeats": 11,
        "seeds": [0, 1, 2, 3, 4],
        "random_budgets": [25, 50, 100, 200],
        "nsga2_budgets": [25, 50, 100],
        "fixed_budgets": [25, 50],
        "refine_budgets": [25, 50],
        "accuracy_pretrain": 500,
        "population": 48,
        "generations": 12,
        "speed_evaluations": 20_000,
        "optuna_speed_trials": 2_000,
    }


# The full run's measurements, kept as they are taken so that a later sitting resumes (committed).
CELLS = Path(__file__).parent / "reports" / "cells"


class MeasurementLog:
    """The oracle's measurements of one configuration, in two ``bench.cells.RecordLog`` files.

    Accuracies (validation and test) depend on the supernet and the data, not on the machine, so
    they are kept under the configuration alone and reused by a sitting on any CPU. Latencies from
    another CPU model would not be comparable, so their store's key adds the CPU: a sitting on
    another machine keeps every accuracy and times again only the latencies (a fraction of a
    second each, against seconds of scoring). Every method is a deterministic function of its
    seed and of the measurements, so a resumed run on the same CPU reproduces what an
    uninterrupted one would have found.
    """

    def __init__(self, root: Path, config: dict[str, Any], *, cpu: str | None = None) -> None:
        self.accuracy_store = CellStore(root, f"{NAME}-accuracy", config)
        self.latency_store = CellStore(root, NAME, {**config, "cpu": cpu or environment()["cpu"]})
        self.accuracy = RecordLog(self.accuracy_store.dir)
        self.latency = RecordLog(self.latency_store.dir)


class Oracle:
    """Real measurements, each subnet measured once however many methods ask for it.

    ``one`` is what the search sees (validation accuracy, latency); ``test_accuracy`` re-scores a
    subnet on the test split for the report only. With a ``MeasurementLog`` the measurements of
    earlier sittings are reused and each new one is stored as it is taken.
    """

    def __init__(
        self, *, supernet: Supernet, data: Any, cfg: dict[str, Any], log: MeasurementLog | None = None
    ) -> None:
        self.supernet = supernet
        self.cfg = cfg
        self.data = data
        self.calib = data.calibration_images(cfg["calib_images"], seed=0)
        self.input_shape = (data.channels, data.image_size, data.image_size)
        self.cache: dict[str, dict[str, float]] = {}
        self.val: dict[str, float] = {}
        self.latency: dict[str, float] = {}
        self.test: dict[str, float] = {}
        self.seconds = 0.0
        self.test_seconds = 0.0
        self.log = log
        self.resumed = 0
        for rec in log.accuracy.load() if log is not None else []:
            if rec["kind"] == "val":
                self.val[rec["arch_hash"]] = rec["accuracy"]
                self.seconds += rec["seconds"]
            else:
                self.test[rec["arch_hash"]] = rec["accuracy"]
                self.test_seconds += rec["seconds"]
            self.resumed += 1
        for rec in log.latency.load() if log is not None else []:
            self.latency[rec["arch_hash"]] = rec["latency_ms"]
            self.seconds += rec["seconds"]
            self.resumed += 1
        for h in self.val.keys() & self.latency.keys():
            self.cache[h] = {"accuracy": self.val[h], LATENCY: self.latency[h]}

    def one(self, arch: Arch) -> dict[str, float]:
        h = arch.arch_hash
        if h not in self.val:
            started = time.perf_counter()
            self.val[h] = score_subnet(self.supernet, arch, self.calib, self.data.val_x, self.data.val_y)
            self._record(self.log.accuracy if self.log else None, "val", h, started, accuracy=self.val[h])
        if h not in self.latency:
            started = time.perf_counter()
            stats = measure_latency(
                self.supernet.extract(arch),
                input_shape=self.input_shape,
                profile=get_profile(PROFILE),
                warmup=self.cfg["warmup"],
                repeats=self.cfg["repeats"],
            )
            self.latency[h] = stats.median_ms
            self._record(
                self.log.latency if self.log else None, "latency", h, started, latency_ms=stats.median_ms
            )
        if h not in self.cache:
            self.cache[h] = {"accuracy": self.val[h], LATENCY: self.latency[h]}
        return self.cache[h]

    def test_accuracy(self, arch: Arch) -> float:
        h = arch.arch_hash
        if h not in self.test:
            started = time.perf_counter()
            self.test[h] = score_subnet(self.supernet, arch, self.calib, self.data.test_x, self.data.test_y)
            self._record(self.log.accuracy if self.log else None, "test", h, started, accuracy=self.test[h])
        return self.test[h]

    def _record(
        self, log: RecordLog | None, kind: str, arch_hash: str, started: float, **value: float
    ) -> None:
        seconds = time.perf_counter() - started
        if kind == "test":
            self.test_seconds += seconds
        else:
            self.seconds += seconds
        if log is not None:
            log.append({"kind": kind, "arch_hash": arch_hash, **value, "seconds": round(seconds, 3)})


class Charged:
    """One method's view of the oracle: remembers, in order, the distinct subnets it paid for."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle
        self.order: list[Arch] = []
        self._seen: set[str] = set()

    def __call__(self, archs: list[Arch]) -> list[dict[str, float]]:
        for a in archs:
            if a.arch_hash not in self._seen:
                self._seen.add(a.arch_hash)
                self.order.append(a)
        return [self.oracle.one(a) for a in archs]

    def front_at(self, budget: int) -> list[Arch]:
        """The front the method returns after ``budget`` measurements (on what it saw: validation)."""
        archs = self.order[:budget]
        pts = [[self.oracle.cache[a.arch_hash][o.key] for o in OBJECTIVES] for a in archs]
        return [archs[i] for i in non_dominated(pts, GOALS)]

    def scores_at(self, budget: int, ref_val: list[float], ref_test: list[float]) -> dict[str, float]:
        front = self.front_at(budget)
        val = [[self.oracle.cache[a.arch_hash][o.key] for o in OBJECTIVES] for a in front]
        test = [[self.oracle.test_accuracy(a), self.oracle.cache[a.arch_hash][LATENCY]] for a in front]
        return {
            "hv_test": hypervolume(test, ref_test, GOALS),
            "hv_val": hypervolume(val, ref_val, GOALS),
            "front_size": len(front),
            "measured": min(budget, len(self.order)),
        }


class CountingPredictor:
    """A predictor whose ``predict`` calls are timed and whose distinct architectures are counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0
        self.distinct: set[str] = set()

    def fit(self, archs: Sequence[Arch], y: Any) -> CountingPredictor:
        self.inner.fit(archs, y)
        return self

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        started = time.perf_counter()
        out = np.asarray(self.inner.predict(archs), dtype=float)
        self.seconds += time.perf_counter() - started
        self.calls += len(archs)
        self.distinct.update(a.arch_hash for a in archs)
        return out

    def reset(self) -> None:
        self.seconds, self.calls, self.distinct = 0.0, 0, set()


def _distinct_sample(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    rng = np.random.default_rng(seed)
    out: dict[str, Arch] = {}
    while len(out) < n:
        a = space.sample(rng)
        out.setdefault(a.arch_hash, a)
    return list(out.values())


def _nsga2_direct(space: SearchSpace, charged: Charged, budget: int, seed: int) -> None:
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(population_size=10, seed=seed),
    )
    dims = space.choices()
    asked = 0
    while len(charged.order) < budget and asked < 50 * budget:
        trial = study.ask()
        arch = space.arch_from_choices({k: trial.suggest_categorical(k, v) for k, v in dims.items()})
        values = charged([arch])[0]
        study.tell(trial, [values[o.key] for o in OBJECTIVES])
        asked += 1


def _predictors(space: SearchSpace, seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": XGBAccuracyPredictor(space=space, n_pretrain=cfg["accuracy_pretrain"], seed=seed),
        LATENCY: XGBLatencyPredictor(space=space, profile=PROFILE, seed=seed),
    }


def _predictor_search(
    space: SearchSpace,
    oracle: Oracle,
    budget: int,
    seed: int,
    cfg: dict[str, Any],
    *,
    n_initial: int,
    rounds: int,
    initial_sample: str = "uniform",
) -> Charged:
    """``refine_search`` from an initial sample of ``n_initial``: the random run's first subnets
    (``uniform``: shared, paired measurements) or the service's measure stage's sample
    (``flops-stratified``: the largest, the smallest, one subnet per stratum of log-FLOPs)."""
    charged = Charged(oracle)
    if initial_sample == "uniform":
        initial_archs = _distinct_sample(space, n_initial, seed)
    else:
        initial_archs = draw_initial_sample(space, n_initial, how=initial_sample, seed=seed)
    initial = list(zip(initial_archs, charged(initial_archs), strict=True))
    refine_search(
        space=space,
        objectives=OBJECTIVES,
        predictors=_predictors(space, seed, cfg),
        measure=charged,
        initial=initial,
        measure_budget=budget,
        rounds=rounds,
        population=cfg["population"],
        generations=cfg["generations"],
        seed=seed,
    )
    return charged


def _refine(
    space: SearchSpace,
    oracle: Oracle,
    budget: int,
    seed: int,
    cfg: dict[str, Any],
    initial_sample: str = "flops-stratified",
) -> Charged:
    """Our search as the service runs it: its initial sample (a third of the budget), then 3-4 rounds."""
    return _predictor_search(
        space,
        oracle,
        budget,
        seed,
        cfg,
        n_initial=max(8, budget // 3),
        rounds=3 if budget <= 50 else 4,
        initial_sample=initial_sample,
    )


def _fixed(space: SearchSpace, oracle: Oracle, budget: int, seed: int, cfg: dict[str, Any]) -> Charged:
    return _predictor_search(space, oracle, budget, seed, cfg, n_initial=max(2, budget // 2), rounds=1)


def _vectorised_distinct(
    space: SearchSpace, preds: dict[str, CountingPredictor], target: int
) -> tuple[float, int, int]:
    """Seconds, distinct architectures and evaluations of a vectorised search reaching ``target`` distinct."""
    population = 500
    generations = max(1, target // population)
    for _ in range(6):
        for p in preds.values():
            p.reset()
        started = time.perf_counter()
        _, evaluations = evolve_on_predictors(
            space=space,
            objectives=OBJECTIVES,
            constraints=[],
            predictors=preds,
            population=population,
            generations=generations,
            rng=np.random.default_rng(0),
        )
        seconds = time.perf_counter() - started
        distinct = len(preds["accuracy"].distinct)
        if distinct >= target:
            break
        generations = int(generations * target / max(distinct, 1) * 1.1) + 1
    return seconds, distinct, evaluations


def _speed(space: SearchSpace, oracle: Oracle, cfg: dict[str, Any]) -> dict[str, Any]:
    """Wall time of predictor-only searches on predictors fitted to 50 measured subnets."""
    archs = list(_distinct_sample(space, 50, 0))
    values = [oracle.one(a) for a in archs]
    preds = {k: CountingPredictor(p) for k, p in _predictors(space, 0, cfg).items()}
    for key, p in preds.items():
        p.fit(archs, np.array([v[key] for v in values]))
    target = cfg["speed_evaluations"]
    vectorised_s, distinct, evaluations = _vectorised_distinct(space, preds, target)
    vectorised_predict_s = sum(p.seconds for p in preds.values())
    for p in preds.values():
        p.reset()
    n_optuna = cfg["optuna_speed_trials"]
    started = time.perf_counter()
    search_with_optuna(
        space=space,
        objectives=OBJECTIVES,
        constraints=[],
        predictors=preds,
        algorithm="nsga2",
        population=100,
        generations=max(1, n_optuna // 100),
        seed=0,
    )
    optuna_s = time.perf_counter() - started
    optuna_distinct = len(preds["accuracy"].distinct)
    return {
        "vectorised_distinct": distinct,
        "vectorised_evaluations": evaluations,
        "vectorised_s": round(vectorised_s, 3),
        "vectorised_predict_s": round(vectorised_predict_s, 3),
        "vectorised_s_per_20k_distinct": round(vectorised_s * 20_000 / max(distinct, 1), 3),
        "optuna_trials": n_optuna,
        "optuna_distinct": optuna_distinct,
        "optuna_s": round(optuna_s, 3),
        "optuna_s_per_20k_distinct": round(optuna_s * 20_000 / max(optuna_distinct, 1), 2),
    }


REFERENCE_SEED = 10_000  # the pilot random sample's seed: no method's seed draws the same sequence


def _reference(
    oracle: Oracle, space: SearchSpace, n_pilot: int
) -> tuple[list[float], list[float], dict[str, Any]]:
    """The reference points, fixed before any method runs: the nadir of a pilot random sample's front.

    The pilot (``n_pilot`` random subnets of its own seed, used by no method) is measured like a
    random baseline; its front, chosen on validation, gives the worst accuracy and the worst latency
    on it, each pushed out by 10% of the front's range (on test accuracy for the test reference).
    """
    pilot = Charged(oracle)
    pilot(_distinct_sample(space, n_pilot, REFERENCE_SEED))
    front = pilot.front_at(n_pilot)
    lat = np.array([oracle.cache[a.arch_hash][LATENCY] for a in front])
    lat_ref = float(lat.max() + 0.1 * np.ptp(lat))
    refs = []
    for acc in (
        np.array([oracle.cache[a.arch_hash]["accuracy"] for a in front]),
        np.array([oracle.test_accuracy(a) for a in front]),
    ):
        refs.append([float(acc.min() - 0.1 * np.ptp(acc)), lat_ref])
    info = {
        "pilot_subnets": n_pilot,
        "pilot_seed": REFERENCE_SEED,
        "pilot_front_size": len(front),
        "pilot_front_latency_ms": [float(lat.min()), float(lat.max())],
    }
    return refs[0], refs[1], info


def _paired(rows: list[dict[str, Any]], a: tuple[str, int], b: tuple[str, int]) -> dict[str, Any]:
    """Per-seed differences of test hypervolume, ``a`` minus ``b``."""

    def per_seed(method: str, budget: int) -> dict[int, float]:
        return {r["seed"]: r["hv_test"] for r in rows if r["method"] == method and r["budget"] == budget}

    sa, sb = per_seed(*a), per_seed(*b)
    seeds = sorted(set(sa) & set(sb))
    diffs = np.array([sa[s] - sb[s] for s in seeds])
    return {
        "a": f"{a[0]}@{a[1]}",
        "b": f"{b[0]}@{b[1]}",
        "seeds": len(seeds),
        "wins": int((diffs >= 0).sum()),
        "diff_mean": float(diffs.mean()) if len(diffs) else 0.0,
        "diff_std": float(diffs.std()) if len(diffs) else 0.0,
        "ratio_mean": float(np.mean(ratios))
        if (ratios := [sa[s] / sb[s] for s in seeds if sb[s] > 0])
        else 0.0,
    }


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Run the comparison and write ``<out_dir>/search.{json,md}``."""
    load_before = [round(v, 2) for v in os.getloadavg()]
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = _config(quick)
    log: list[str] = []
    started = time.perf_counter()
    data = load_data(cfg["supernet"])
    space = make_space(
        SPACE, in_channels=data.channels, num_classes=data.num_classes, image_size=data.image_size
    )
    supernet, supernet_path = trained_supernet(space, data, cfg["supernet"], log)
    # The full run keeps its measurements (it takes ~2 h; committed, for a later sitting); a quick
    # run's live in a temporary folder, through the same code.
    scratch = tempfile.TemporaryDirectory(prefix="search-measurements-")
    measurements = MeasurementLog(
        Path(scratch.name) if quick else CELLS,
        {**cfg, "space": SPACE, "supernet_file": supernet_path.name, "data": data.sha256},
    )
    oracle = Oracle(supernet=supernet, data=data, cfg=cfg, log=measurements)
    if oracle.resumed:
        log.append(
            f"{oracle.resumed} measurements kept from earlier sittings ({measurements.accuracy.path}, "
            f"{measurements.latency.path})"
        )
    ref_val, ref_test, pilot = _reference(oracle, space, cfg["reference_pilot"])

    rows: list[dict[str, Any]] = []
    for seed in cfg["seeds"]:
        t0 = time.perf_counter()
        charged = Charged(oracle)
        charged(_distinct_sample(space, max(cfg["random_budgets"]), seed))
        runs: list[tuple[str, int, Charged]] = [("random", b, charged) for b in cfg["random_budgets"]]
        charged = Charged(oracle)
        _nsga2_direct(space, charged, max(cfg["nsga2_budgets"]), seed)
        runs += [("nsga2-direct", b, charged) for b in cfg["nsga2_budgets"]]
        runs += [("predictor-fixed", b, _fixed(space, oracle, b, seed, cfg)) for b in cfg["fixed_budgets"]]
        runs += [
            ("refine-uniform", b, _refine(space, oracle, b, seed, cfg, initial_sample="uniform"))
            for b in cfg["refine_budgets"]
        ]
        runs += [("refine", b, _refine(space, oracle, b, seed, cfg)) for b in cfg["refine_budgets"]]
        for method, budget, ch in runs:
            rows.append(
                {"method": method, "budget": budget, "seed": seed, **ch.scores_at(budget, ref_val, ref_test)}
            )
        log.append(
            f"seed {seed}: {time.perf_counter() - t0:.0f}s, {len(oracle.cache)} subnets measured, "
            f"{len(oracle.test)} re-scored on test so far"
        )
        print(f"[search] {log[-1]}", file=sys.stderr, flush=True)
    speed = _speed(space, oracle, cfg)

    summary: list[dict[str, Any]] = []
    for method in METHODS:
        for b in sorted({r["budget"] for r in rows if r["method"] == method}):
            sel = [r for r in rows if r["method"] == method and r["budget"] == b]
            hv, hv_val = [r["hv_test"] for r in sel], [r["hv_val"] for r in sel]
            summary.append(
                {
                    "method": method,
                    "budget": b,
                    "hv_test_mean": float(np.mean(hv)),
                    "hv_test_std": float(np.std(hv)),
                    "hv_val_mean": float(np.mean(hv_val)),
                    "front_size_mean": float(np.mean([r["front_size"] for r in sel])),
                    "seeds": len(sel),
                }
            )

    top_random = max(cfg["random_budgets"])
    small = min(cfg["refine_budgets"])
    n_seeds = len(cfg["seeds"])
    vs_random = _paired(rows, ("refine", small), ("random", top_random))
    vs_fixed = [
        _paired(rows, ("refine", b), ("predictor-fixed", b))
        for b in cfg["refine_budgets"]
        if b in cfg["fixed_budgets"]
    ]
    # What the initial sample alone is worth: the same search from the random run's prefix.
    vs_uniform = [_paired(rows, ("refine", b), ("refine-uniform", b)) for b in cfg["refine_budgets"]]
    vs_uniform.append(_paired(rows, ("refine-uniform", small), ("random", top_random)))
    need_wins = n_seeds - 1
    targets = {
        "refine_vs_random": {
            "value": f"{vs_random['wins']}/{vs_random['seeds']} seeds",
            "goal": f"refine with {small} measurements reaches >= random's test-split hypervolume with "
            f"{top_random} on "
            f">= {need_wins} of {n_seeds} seeds (paired; diff {vs_random['diff_mean']:.4g} +- "
            f"{vs_random['diff_std']:.3g}; the issue's target is 25 vs 200 on 4 of 5)",
            "met": vs_random["wins"] >= need_wins and small <= 25 and top_random >= 200 and n_seeds >= 5,
        },
        "refine_vs_predictor_fixed": {
            "value": "; ".join(
                f"{p['a']}: {p['diff_mean']:.4g} +- {p['diff_std']:.3g}, {p['wins']}/{p['seeds']}"
                for p in vs_fixed
            ),
            "goal": "refine beats the fixed-predictor baseline at equal measurements: paired "
            "test-hypervolume "
            "difference mean - std > 0 at every budget",
            "met": bool(vs_fixed) and all(p["diff_mean"] - p["diff_std"] > 0 for p in vs_fixed),
        },
        "predictor_search_20k_distinct_s": {
            "value": speed["vectorised_s"],
            "goal": f"{speed['vectorised_distinct']} DISTINCT architectures predicted in < 10 s "
            "(vectorised NSGA-II; "
            f"{speed['vectorised_evaluations']} evaluations with repeats)",
            "met": speed["vectorised_s"] < 10.0 and speed["vectorised_distinct"] >= 20_000,
        },
    }
    log.append(f"{len(oracle.cache)} distinct subnets measured for real in {oracle.seconds:.0f}s")
    log.append(
        f"{len(oracle.test)} front subnets re-scored on {len(data.test_y)} test images in "
        f"{oracle.test_seconds:.0f}s"
    )
    total = time.perf_counter() - started
    log.append(f"total {total:.0f}s")
    load_after = [round(v, 2) for v in os.getloadavg()]
    busy = max(load_before[0], load_after[0]) > (os.cpu_count() or 1)
    parts = [
        "QUICK smoke run: tiny supernet and budgets; its numbers say nothing about the targets."
        if quick
        else "",
        f"Load average (1, 5, 15 min) before {load_before}, after {load_after}"
        + (" (the machine was busy: other work shared the cores)." if busy else "."),
        f"Hypervolume over (test accuracy, latency) of each method's validation front, reference "
        f"{ref_test} fixed before the runs: the nadir of the front of a pilot random sample that no "
        f"method uses, pushed out by 10% of its range ({pilot}); validation hypervolume beside it "
        f"with reference {ref_val}. Points worse than the random front's nadir add nothing.",
        "Seeds paired: every method of a seed starts from the same random sequence. The predictor-fixed "
        "baseline fits the same predictors once on half its budget of random subnets and measures the "
        "other half from one NSGA-II front; refine spends a third on the service's initial sample (the "
        "largest, the smallest, one subnet per stratum of log-FLOPs: nas.pipeline.measure) and refits "
        "over 3-4 rounds; refine-uniform is the same search from the random run's prefix instead, so "
        "that refine - refine-uniform is what the initial sample is worth. The speed figure counts "
        "distinct architectures.",
        "What to conclude: whether refining the predictors on what they choose beats random sampling at "
        "8x the measurements and a fixed predictor at equal measurements, on a split no method saw.",
        "What it does not show: other spaces, datasets, constraints or hardware; the supernet is one "
        "training run, so the accuracies carry its quirks.",
        "Log: " + "; ".join(log),
    ]
    notes = " ".join(p for p in parts if p)
    scratch.cleanup()
    return write_report(
        NAME,
        config={
            **cfg,
            "quick": quick,
            "space": SPACE,
            "profile": PROFILE,
            "reference_test": ref_test,
            "reference_val": ref_val,
        },
        results={
            "runs": rows,
            "summary": summary,
            "paired": [vs_random, *vs_fixed, *vs_uniform],
            "speed": speed,
            "reference_pilot": pilot,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "seconds": round(total, 1),
            "log": log,
        },
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[
            ("Test-split hypervolume by method and budget (over seeds)", summary),
            ("Paired per seed (test hypervolume, a - b)", [vs_random, *vs_fixed, *vs_uniform]),
            ("Speed", [speed]),
        ],
    )


if __name__ == "__main__":
    run_from_command_line(run, description=__doc__)
