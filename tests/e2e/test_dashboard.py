"""The dashboard in Debian's Chromium against a real server over a real SQLite file."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.artifacts import ArtifactStore
from nas.schemas import JobSpec, JobStatus
from nas.store import Database, crud
from supernets.arch import Arch, BlockArch, StageArch
from tests.e2e.server import live_server

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/dashboard.png")
HW = "cpu-fp32"
N_SUBNETS = 40
N_EPOCHS = 3
FAILURE = "RuntimeError: CUDA out of memory while training epoch 2"
WAIT_MS = 30_000  # two cores shared by many processes: be patient with the browser
LATENCY = f"latency_ms@{HW}"
TARGET = "1ms"
TARGET_HV = 0.7
# Predictor quality as the pipeline reports it (stage, payload); the second accuracy report replaces
# the first.
PREDICTOR_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("predict", {"target": "accuracy", "source": "cross-validation", "n_samples": 30, "n": 30,
                 "kendall_tau": 0.41, "spearman": 0.55, "mape": 3.4, "rmse": 0.031, "within_10pct": 0.9}),
    ("predict", {"target": "accuracy", "source": "cross-validation", "n_samples": 40, "n": 40,
                 "kendall_tau": 0.62, "spearman": 0.79, "mape": 2.1, "rmse": 0.0217, "within_10pct": 0.975}),
    ("predict", {"target": LATENCY, "source": "cross-validation", "n_samples": 1200, "n": 1200,
                 "kendall_tau": 0.874, "spearman": 0.961, "mape": 6.4, "rmse": 0.1234, "within_10pct": 0.8}),
    ("search", {"target": LATENCY, "source": "search round 1", "n": 16,
                "kendall_tau": 0.7, "spearman": 0.85, "mape": 9.5, "rmse": 0.21, "within_10pct": 0.5}),
]  # fmt: skip

sync_api = pytest.importorskip("playwright.sync_api")


@dataclass(frozen=True)
class SeededJob:
    """What the fixture stored, so the tests know what the page must show."""

    job_id: str
    name: str
    token: str
    subnets: dict[int, dict[str, Any]]  # id -> {arch_hash, accuracy, latency, params}
    front_ids: list[int]
    failed_job_id: str  # a second job of the same user, which failed in training


def _random_arch(rng: np.random.Generator) -> Arch:
    stages = tuple(
        StageArch(
            blocks=tuple(
                BlockArch(kernel_size=int(rng.choice([3, 5, 7])), expand_ratio=int(rng.choice([3, 4, 6])))
                for _ in range(int(rng.integers(2, 5)))
            ),
            width_mult=float(rng.choice([0.75, 1.0])),
        )
        for _ in range(4)
    )
    return Arch(family="ofa-mbv3", resolution=int(rng.choice([20, 24, 28])), stages=stages)


def _non_dominated(points: dict[int, tuple[float, float]]) -> list[int]:
    """Ids whose (accuracy, cost) no other point beats in both (accuracy max, cost min)."""
    out = []
    for i, (acc, lat) in points.items():
        beaten = any(a >= acc and t <= lat and (a > acc or t < lat) for j, (a, t) in points.items() if j != i)
        if not beaten:
            out.append(i)
    return sorted(out)


def _spec() -> dict[str, Any]:
    spec = JobSpec.model_validate(
        {
            "name": "fmnist-dashboard",
            "dataset": {"kind": "builtin", "name": "fashion-mnist"},
            "search_space": {"family": "ofa-mbv3"},
            "training": {"epochs": 6},
            "hardware": [HW],
            "objectives": [
                {"metric": "accuracy", "goal": "max"},
                {"metric": "latency_ms", "hardware": HW, "goal": "min"},
            ],
            "constraints": [{"metric": "latency_ms", "hardware": HW, "max": 2.5}],
            "targets": [
                {"name": TARGET, "constraints": [{"metric": "latency_ms", "hardware": HW, "max": 1.0}]}
            ],
        }
    )
    return spec.model_dump(mode="json")


def _seed(db: Database, rng: np.random.Generator) -> SeededJob:
    """A user with a token and one running job in its search stage, through the real store layer."""
    with db.session() as s:
        user = crud.create_user(s, name="dashboard-user")
        token = crud.create_token(s, user_id=user.id)
        job = crud.create_job(s, owner_id=user.id, name="fmnist-dashboard", spec=_spec())
        job_id = job.id
        crud.update_job(s, job_id=job_id, status=JobStatus.running, stage="search", progress=0.6)
        for stage in ("data", "train", "measure", "predict"):
            crud.add_event(
                s, job_id=job_id, kind="stage", stage=stage, payload={"stage": stage, "status": "started"}
            )
            if stage == "train":
                for epoch in range(1, N_EPOCHS + 1):
                    payload = {
                        "epoch": epoch,
                        "loss": 1.6 / epoch,
                        "lr": 0.1,
                        "val_acc_largest": 0.70 + 0.05 * epoch,
                        "val_acc_smallest": 0.62 + 0.05 * epoch,
                    }
                    crud.add_event(s, job_id=job_id, kind="epoch", stage=stage, payload=payload)
            for event_stage, payload in PREDICTOR_EVENTS:
                if event_stage == stage:
                    crud.add_event(s, job_id=job_id, kind="predictor", stage=stage, payload=payload)
            crud.add_event(
                s, job_id=job_id, kind="stage", stage=stage, payload={"stage": stage, "status": "done"}
            )
        crud.add_event(
            s, job_id=job_id, kind="stage", stage="search", payload={"stage": "search", "status": "started"}
        )
        crud.add_event(
            s, job_id=job_id, kind="log", stage="data", payload={"message": "dataset fashion-mnist"}
        )

        subnets: dict[int, dict[str, Any]] = {}
        seen: set[str] = set()
        while len(subnets) < N_SUBNETS:
            arch = _random_arch(rng)
            if arch.arch_hash in seen:
                continue
            seen.add(arch.arch_hash)
            latency = float(rng.uniform(0.5, 4.0))
            params = int(rng.integers(100_000, 2_000_000))
            accuracy = float(np.clip(0.78 + 0.04 * latency + rng.normal(0, 0.02), 0, 1))
            row = crud.upsert_subnet(
                s,
                job_id=job_id,
                arch_hash=arch.arch_hash,
                arch=arch.to_dict(),
                params=params,
                flops=int(rng.integers(1_000_000, 50_000_000)),
                source="search",
                accuracy_val=accuracy,
                predicted={"accuracy": accuracy + 0.01, f"latency_ms@{HW}": latency * 1.1},
            )
            crud.put_measurement(
                s, profile=HW, arch_hash=arch.arch_hash, resolution=arch.resolution, batch=1,
                stats={"median_ms": latency, "p10_ms": latency * 0.95, "p90_ms": latency * 1.1, "n": 50},
            )  # fmt: skip
            subnets[row.id] = {
                "arch_hash": arch.arch_hash,
                "accuracy": accuracy,
                "latency": latency,
                "params": params,
            }

        front_ids = _non_dominated({i: (v["accuracy"], v["latency"]) for i, v in subnets.items()})
        objectives = [
            {"metric": "accuracy", "goal": "max"},
            {"metric": "latency_ms", "hardware": HW, "goal": "min"},
        ]
        for rnd, hv in ((0, 2.1), (1, 2.4)):
            measured = {
                i: {"accuracy": subnets[i]["accuracy"], f"latency_ms@{HW}": subnets[i]["latency"]}
                for i in front_ids
            }
            crud.save_front(
                s,
                job_id=job_id,
                hardware=HW,
                round=rnd,
                objectives=objectives,
                reference_point=[0.0, 5.0],
                hypervolume=hv,
                points=[(i, measured[i], None) for i in front_ids],
            )
            crud.add_event(
                s, job_id=job_id, kind="front", stage="search", payload={"round": rnd, "hypervolume": hv}
            )
        # The 1 ms target's own (final) front, from the same subnets.
        fast = _non_dominated(
            {i: (v["accuracy"], v["latency"]) for i, v in subnets.items() if v["latency"] <= 1}
        )
        crud.save_front(
            s, job_id=job_id, hardware=HW, round=2, objectives=objectives, reference_point=[0.0, 1.0],
            hypervolume=TARGET_HV, points=[(i, {"accuracy": subnets[i]["accuracy"]}, None) for i in fast],
            final=True, target=TARGET,
        )  # fmt: skip
        for event_stage, payload in PREDICTOR_EVENTS:
            if event_stage == "search":
                crud.add_event(s, job_id=job_id, kind="predictor", stage="search", payload=payload)
        crud.add_event(
            s,
            job_id=job_id,
            kind="progress",
            stage="search",
            payload={"stage": "search", "done": 2, "total": 4},
        )
        failed = crud.create_job(s, owner_id=user.id, name="fmnist-failed", spec=_spec())
        failed_id = failed.id
        crud.update_job(s, job_id=failed_id, status=JobStatus.running, stage="train", progress=0.3)
        crud.add_event(
            s, job_id=failed_id, kind="stage", stage="data", payload={"stage": "data", "status": "done"}
        )
        crud.finish_job(s, job_id=failed_id, status=JobStatus.failed, error=FAILURE)
    return SeededJob(
        job_id=job_id,
        name="fmnist-dashboard",
        token=token,
        subnets=subnets,
        front_ids=front_ids,
        failed_job_id=failed_id,
    )


def _store_bundle(db: Database, store: ArtifactStore, job: SeededJob, subnet_id: int) -> bytes:
    """A stored bundle for ``subnet_id``, which the export route hands out again instead of rebuilding."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("arch.json", json.dumps({"arch_hash": job.subnets[subnet_id]["arch_hash"]}))
    data = buf.getvalue()
    obj = store.put_bytes(f"jobs/{job.job_id}/bundles/subnet-{subnet_id}.zip", data)
    with db.session() as s:
        crud.add_artifact(
            s,
            kind="bundle",
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
            job_id=job.job_id,
            meta={"subnet_id": subnet_id, "arch_hash": job.subnets[subnet_id]["arch_hash"]},
        )
    return data


@dataclass(frozen=True)
class Server:
    url: str
    db: Database
    job: SeededJob
    bundle: bytes  # what downloading the first front subnet must give


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """uvicorn running the real app (no scheduler) over a SQLite file seeded through the store."""
    tmp = tmp_path_factory.mktemp("dashboard")
    db = Database(f"sqlite:///{tmp / 'nas.db'}")  # the file live_server points the app at
    db.upgrade()
    job = _seed(db, np.random.default_rng(7))
    bundle = _store_bundle(db, ArtifactStore(str(tmp / "artifacts")), job, job.front_ids[0])
    try:
        with live_server(tmp, NAS_SCHEDULER="none") as live:
            yield Server(url=live.url, db=db, job=job, bundle=bundle)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; never a downloaded browser."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make test` (it installs chromium) or apt-get install chromium"
        )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (empty localStorage) per test, with page errors collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _open_job(page: Any, server: Server) -> None:
    """Go straight to the job page with the token in the fragment, as `make run` prints it."""
    job = server.job
    page.goto(f"{server.url}/dashboard#token={job.token}&job={job.job_id}")
    page.wait_for_selector(f"#job-title:text('{job.name}')")
    page.wait_for_selector(f"#scatter[data-points='{len(job.subnets)}']")


def test_token_form_then_jobs_list_shows_the_job(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector("#token-view:not([hidden])")
    page.fill("#token-input", server.job.token)
    page.click("#token-form button[type=submit]")
    row = page.wait_for_selector(f"tr[data-job-id='{server.job.job_id}']")
    assert server.job.name in row.inner_text()
    assert row.query_selector(".badge").inner_text() == "running"
    assert page.inner_text("#jobs-count") == "2 jobs"
    failed = page.locator(f"tr[data-job-id='{server.job.failed_job_id}'] .badge")
    assert failed.inner_text() == "failed"
    # The token is remembered: a reload goes straight to the list.
    page.reload()
    page.wait_for_selector(f"tr[data-job-id='{server.job.job_id}']")


def test_bad_token_asks_for_a_new_one(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/dashboard#token=nas_not-a-real-token")
    page.wait_for_selector("#token-view:not([hidden])")
    assert "rejected" in page.inner_text("#error-banner")


def test_job_page_shows_stage_progress_and_training_curves(page: Any, server: Server) -> None:
    _open_job(page, server)
    assert page.get_attribute("#job-status", "data-status") == "running"
    assert page.get_attribute("#job-progress", "data-stage") == "search"
    assert float(page.get_attribute("#job-progress", "data-value")) == pytest.approx(0.6)
    assert page.get_attribute("#stages li.current", "data-stage") == "search"
    done = [el.get_attribute("data-stage") for el in page.query_selector_all("#stages li.done")]
    assert done == ["data", "train", "measure", "predict"]
    assert page.get_attribute("#epoch-chart", "data-epochs") == str(N_EPOCHS)
    assert page.get_attribute("#hv-chart", "data-rounds") == "2"
    assert "search: 2 / 4" in page.inner_text("#stage-detail")


def test_scatter_draws_every_subnet_and_greys_the_dominated(page: Any, server: Server) -> None:
    _open_job(page, server)
    job = server.job
    assert page.input_value("#axis-x") == f"latency_ms@{HW}"
    assert page.input_value("#axis-y") == "accuracy"
    assert page.get_attribute("#scatter", "data-front") == str(len(job.front_ids))
    page.check("#show-predicted")
    page.wait_for_selector(f"#scatter[data-predicted='{len(job.subnets)}']")
    # Parameters against accuracy is another front; the page recomputes it.
    page.select_option("#axis-x", "params")
    by_params = _non_dominated({i: (v["accuracy"], v["params"]) for i, v in job.subnets.items()})
    page.wait_for_selector(f"#scatter[data-front='{len(by_params)}']")
    assert len(by_params) != len(job.front_ids)  # else this step could not tell the axes apart
    assert page.get_attribute("#scatter", "data-points") == str(len(job.subnets))


def test_target_selector_shows_that_targets_front(page: Any, server: Server) -> None:
    _open_job(page, server)
    page.wait_for_selector("#hv-value:text('2.400')")
    assert page.is_visible("#front-target-label")
    page.select_option("#front-target", TARGET)
    page.wait_for_selector(f"#hv-value:text('{TARGET_HV:.4f}')")
    # Its history is its own (one final round), not the job's two search rounds.
    page.wait_for_selector("#hv-chart[data-rounds='1']")
    page.select_option("#front-target", "")
    page.wait_for_selector("#hv-value:text('2.400')")


def test_clicking_a_front_point_shows_its_subnet_and_download(page: Any, server: Server) -> None:
    _open_job(page, server)
    job = server.job
    sid = job.front_ids[len(job.front_ids) // 2]
    pos = page.evaluate("(id) => window.nasDashboard.pointPosition(id)", sid)
    assert pos is not None, "the front point is not drawn"
    page.locator("#scatter").scroll_into_view_if_needed()
    box = page.locator("#scatter").bounding_box()  # relative to the viewport: scroll first
    page.mouse.move(box["x"] + pos["x"], box["y"] + pos["y"])
    page.wait_for_selector("#scatter-tip:not([hidden])")
    assert job.subnets[sid]["arch_hash"][:12] in page.inner_text("#scatter-tip")
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    page.wait_for_selector(f"#detail[data-subnet-id='{sid}']")
    assert page.inner_text("#detail-hash") == job.subnets[sid]["arch_hash"]
    accuracy = page.inner_text("#detail-metrics dd[data-metric='validation accuracy']")
    assert accuracy == f"{job.subnets[sid]['accuracy'] * 100:.1f}%"
    assert page.inner_text("#detail-metrics dd[data-metric='on the front']") == "yes"
    assert page.locator("#download").is_visible()
    assert page.locator("#detail-arch table.arch tbody tr").count() == 4
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def _click_subnet(page: Any, subnet_id: int) -> None:
    """Click where the scatter drew ``subnet_id`` (the page hit-tests by nearest point)."""
    pos = page.evaluate("(id) => window.nasDashboard.pointPosition(id)", subnet_id)
    assert pos is not None, f"subnet {subnet_id} is not drawn"
    page.locator("#scatter").scroll_into_view_if_needed()
    box = page.locator("#scatter").bounding_box()  # relative to the viewport: scroll first
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    page.wait_for_selector(f"#detail[data-subnet-id='{subnet_id}']")


def test_download_button_saves_the_exported_bundle(page: Any, server: Server, tmp_path: Path) -> None:
    _open_job(page, server)
    _click_subnet(page, server.job.front_ids[0])
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert (
        download.suggested_filename
        == f"subnet-{server.job.subnets[server.job.front_ids[0]]['arch_hash'][:12]}.zip"
    )
    target = tmp_path / "bundle.zip"
    download.save_as(target)
    assert target.read_bytes() == server.bundle
    page.wait_for_selector("#download-status:has-text('sha256')")


def test_job_page_follows_a_running_job(page: Any, server: Server) -> None:
    _open_job(page, server)
    before = int(page.get_attribute("#epoch-chart", "data-epochs"))
    with server.db.session() as s:
        epoch = before + 1
        payload = {"epoch": epoch, "loss": 0.4, "lr": 0.05, "val_acc_largest": 0.9, "val_acc_smallest": 0.85}
        crud.add_event(s, job_id=server.job.job_id, kind="epoch", stage="train", payload=payload)
        crud.add_event(
            s, job_id=server.job.job_id, kind="log", stage="search", payload={"message": "round 2 begins"}
        )
    page.wait_for_selector(f"#epoch-chart[data-epochs='{before + 1}']")
    page.wait_for_selector("#log li:has-text('round 2 begins')")


def _predictor_cells(page: Any, target: str, source: str) -> dict[str, str]:
    row = page.locator(f"#predictors tr[data-target='{target}'][data-source='{source}']")
    cells = row.locator("td[data-metric]")
    return {
        cells.nth(i).get_attribute("data-metric"): cells.nth(i).inner_text() for i in range(cells.count())
    }


def test_predictors_card_shows_the_latest_quality_per_target_and_source(page: Any, server: Server) -> None:
    _open_job(page, server)
    page.wait_for_selector("#predictors[data-rows='3']")
    assert page.locator("#predictors-empty").is_hidden()
    rows = page.locator("#predictors tbody tr")
    keys = [
        (rows.nth(i).get_attribute("data-target"), rows.nth(i).get_attribute("data-source")) for i in range(3)
    ]
    assert keys == [
        ("accuracy", "cross-validation"),
        (LATENCY, "cross-validation"),
        (LATENCY, "search round 1"),
    ]
    assert _predictor_cells(page, LATENCY, "cross-validation") == {
        "n": "1200",
        "kendall_tau": "0.87",
        "spearman": "0.96",
        "mape": "6.4%",
        "within_10pct": "80.0%",
        "rmse": "0.123 ms",
    }
    # A job that resumed reports its accuracy predictor twice: the later report is the one shown.
    accuracy = _predictor_cells(page, "accuracy", "cross-validation")
    assert (accuracy["n"], accuracy["kendall_tau"], accuracy["rmse"]) == ("40", "0.62", "0.0217")
    assert "fitted on 40 subnets" in page.inner_text(
        "#predictors tr[data-target='accuracy'][data-source='cross-validation']"
    )
    searched = _predictor_cells(page, LATENCY, "search round 1")
    assert (searched["n"], searched["kendall_tau"], searched["within_10pct"]) == ("16", "0.70", "50.0%")
    # A report that arrives while the page is open joins the table, next to its target's other rows.
    with server.db.session() as s:
        payload = {"target": "accuracy", "source": "search round 2", "n": 16, "kendall_tau": -0.05}
        crud.add_event(s, job_id=server.job.job_id, kind="predictor", stage="search", payload=payload)
    page.wait_for_selector("#predictors[data-rows='4']")
    assert rows.nth(1).get_attribute("data-source") == "search round 2"
    assert _predictor_cells(page, "accuracy", "search round 2")["kendall_tau"] == "-0.05"
    assert _predictor_cells(page, "accuracy", "search round 2")["mape"] == "–"


def test_failed_job_shows_its_error_and_an_empty_front(page: Any, server: Server) -> None:
    job = server.job
    page.goto(f"{server.url}/dashboard#token={job.token}&job={job.failed_job_id}")
    page.wait_for_selector("#job-status[data-status='failed']")
    assert FAILURE in page.inner_text("#job-error")
    assert page.get_attribute("#stages li.failed", "data-stage") == "train"
    assert page.locator("#cancel-job").is_hidden()
    # No front yet (the API answers 404): an empty scatter, not an error.
    assert page.get_attribute("#scatter", "data-points") == "0"
    assert page.locator("#error-banner").is_hidden()
    assert page.get_attribute("#predictors", "data-rows") == "0"
    assert page.inner_text("#predictors-empty") == "no predictor fitted yet"
    page.wait_for_selector("#log li.status:has-text('job failed')")


def test_a_link_with_another_token_does_not_switch_the_saved_one_silently(page: Any, server: Server) -> None:
    """A shared link carrying someone else's token asks first; declined, the user keeps their own token."""
    with server.db.session() as s:
        other = crud.create_token(s, user_id=crud.get_or_create_user(s, name="eve-link").id)
    page.goto(f"{server.url}/dashboard#token={server.job.token}")
    page.wait_for_selector(f"tr[data-job-id='{server.job.job_id}']")
    asked: list[str] = []

    def decline(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.goto(f"{server.url}/dashboard#token={other}")
    page.wait_for_selector("#notice-banner:not([hidden])")
    assert asked and "different API token" in asked[0]
    assert "ignored" in page.inner_text("#notice-banner")
    assert other not in page.url
    page.wait_for_selector(f"tr[data-job-id='{server.job.job_id}']")
    assert page.evaluate("localStorage.getItem('nas.token')") == server.job.token

    page.once("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.url}/dashboard#token={other}")
    page.wait_for_selector("#jobs-count:text('0 jobs')")
    assert page.evaluate("localStorage.getItem('nas.token')") == other
