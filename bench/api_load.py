"""`nas bench api-load`: many concurrent dashboard-like clients polling a live server while a job trains.

The server is the real one (uvicorn serving ``api.app:create_app`` in its own process, started by
``tests/e2e/server.live_server``; embedded Ray; SQLite in a temporary folder unless
``NAS_LOAD_DATABASE_URL`` names another database, the report then ``api_load_<backend>``; on
PostgreSQL each run gets a fresh schema, dropped afterwards, so that no run sees earlier runs' rows).
A job is submitted and the load starts once it is training; it is cancelled at the end.

The polling, like a dashboard's: each client (its own connection) wakes once a second, at a phase
drawn uniformly in the first second, and fetches, one after the other, ``GET /v1/jobs`` (the job
list), ``GET /v1/jobs/{id}/events?after=N`` (JSON, the events it has not seen yet) and
``GET /v1/jobs/{id}/pareto`` (404 until the first front exists, which counts as an answer), so
100 clients offer about 300 requests/s. A client whose requests took longer than its period starts
its next round at once (it never queues more than one round). A request fails on a transport error,
a timeout (10 s) or any other status. The load generator runs in this process, the server in
another, both on the same machine (with the training job), so the numbers include that contention.

What stalled the API (py-spy dumps of the server under this load, before the fix): all 40 threadpool
threads waiting in SQLAlchemy's connection pool (5 + 10 connections) while no thread held one. The
connections belonged to requests whose sync route had returned but whose session dependency was
not closed yet: FastAPI validates a sync route's return value in one more threadpool hop, which
waited for a thread. A circular wait, broken only by the pool's 30 s timeout: in a 20 s run 8
requests/s were served and 288 of 381 timed out (10 s; p99 9.3 s). Fixed at the root: the pool
never makes a caller wait (``max_overflow=-1``; the threadpool bounds the connections in use),
GET routes serialize their own response (no validation hop) and open and close their read session
with no hop. Then CPU: py-spy's GIL samples put 85% of the API process on its event loop, a sixth
of that in FastAPI's native OpenTelemetry check, now off unless ``NAS_TELEMETRY``; server CPU per
GET, 30 clients, no job: 2.8 ms before, 2.4 ms after. The training worker runs at niceness
``NAS_TRAIN_NICE`` (10, plus Ray's own). Then the polled GETs (job list, job, events, front) moved
to a read path with no ORM session (``nas/store/polls.py`` on ``Database.read_connection``) and one
threadpool hop each (``api.deps.read_as_user``: token lookup, read and serialization together):
server CPU per GET, 30 clients, no job, 3 x 1,500 requests per route, before -> after: job list
4.4 -> 2.5 ms, one job 3.65 -> 1.96, 21 events (of 31) 5.2 -> 3.1, a 2-point front 7.9 -> 5.5 (health check,
unchanged code, 0.86 both times). On PostgreSQL the polling pool then went to autocommit (no
BEGIN/ROLLBACK round trips): 4 full runs alternated on an AMD EPYC, server CPU per GET 5.31/5.02 ->
4.45/4.00 ms, p99 1128/1037 -> 953/897 ms, with only 152-182 of the 300 offered requests/s served.
Then polls were limited to as many at once as the pool keeps connections
(``api.deps.POLL_CONCURRENCY``, an anyio limiter; a waiting poll holds nothing): a burst of polls on
40 threadpool threads had opened up to 30 connections beyond the pool's 10, each a new PostgreSQL
backend or, on SQLite, a connect running the PRAGMAs (``tests/api/test_poll_limit.py``), and SQLite's
polls went to autocommit too. Measured on an Intel Xeon, PostgreSQL, alone, that changed the server
CPU per GET little (2.03 and 2.23 ms before, 1.92-2.10 after, 2 and 4 runs) and left p99 noisy
(38.2/120.6 ms before; 17.8/25.9/21.9/53.8 after). What the tail was: FULL GARBAGE COLLECTIONS. The
server process holds ~250,000 long-lived objects (torch, which validating a spec imports, Ray, the
app), and every generation-2 collection scanned them all: 4-5 in a 120 s load window, 165-200 ms
each on the loaded machine, every request in flight paused meanwhile (~60 of them per pause at 300
requests/s, so a few pauses are the p99). Now the app imports those modules at start-up, collects,
and freezes the survivors out of later collections (``gc.freeze``, ``api.app._freeze_startup_heap``;
``NAS_GC_FREEZE``). Alternated full runs on PostgreSQL (Intel Xeon, alone), off/on/off/on: p99 71.6
/ 28.0 / 68.3 / 33.6 ms; full collections in the window 4 / 11 / 5 / 16, pausing 709 / 79 / 797 /
105 ms in all, the longest 200 / 12 / 165 / 10 ms (``server_gc_*``: the live server counts them,
``tests/e2e/serve.py``'s ``NAS_GC_STATS_FILE``). What remains is one Python process serving ~300
requests/s on a 2-core machine with the load generator, the training job and whatever else runs
there: its queueing is what p95/p99 show; the load average recorded beside the run says how much
else ran, and the server's own CPU over the load window (``server_cpu_*``) says how busy the server
was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.common import run_from_command_line, write_report
from tests.e2e.server import TINY_SPEC, live_server
from tests.postgres import fresh_schema

PERIOD_S = 1.0
TIMEOUT_S = 10.0
ROUTES = ("jobs", "events", "pareto")
# The end-to-end tests' small job, trained long enough to keep training through the load window;
# cancelled when the load ends.
TRAINING_SPEC: dict[str, Any] = {
    **TINY_SPEC,
    "name": "api-load",
    "dataset": {**TINY_SPEC["dataset"], "limit": 3000},
    "training": {**TINY_SPEC["training"], "epochs": 50},
}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _client(
    base: str,
    token: str,
    job_id: str,
    until: float,
    rng: random.Random,
    times: dict[str, list[float]],
    failures: list[dict[str, Any]],
) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=1)  # one connection per client, as a browser tab's
    after = 0
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout, connector=connector) as http:
        next_round = time.monotonic() + rng.random() * PERIOD_S
        while True:
            await asyncio.sleep(max(0.0, next_round - time.monotonic()))
            if time.monotonic() >= until:
                return
            next_round += PERIOD_S
            for route in ROUTES:
                path = {
                    "jobs": "/v1/jobs?limit=20",
                    "events": f"/v1/jobs/{job_id}/events?after={after}",
                    "pareto": f"/v1/jobs/{job_id}/pareto",
                }[route]
                start = time.perf_counter()
                try:
                    async with http.get(path) as r:
                        body = await r.read()
                        status = r.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failures.append({"route": route, "error": type(exc).__name__, "detail": str(exc)[:120]})
                    continue
                times[route].append((time.perf_counter() - start) * 1000)
                ok = status == 200 or (route == "pareto" and status == 404)
                if not ok:
                    detail = body[:120].decode(errors="replace")
                    failures.append({"route": route, "error": f"HTTP {status}", "detail": detail})
                elif route == "events" and status == 200:
                    events = json.loads(body)
                    if events:
                        after = max(e["id"] for e in events)
            next_round = max(next_round, time.monotonic())


async def _load(
    base: str, token: str, job_id: str, clients: int, duration_s: float, seed: int
) -> dict[str, Any]:
    times: dict[str, list[float]] = defaultdict(list)
    failures: list[dict[str, Any]] = []
    started = time.monotonic()
    until = started + duration_s
    rngs = [random.Random(seed * 1000 + i) for i in range(clients)]
    await asyncio.gather(*(_client(base, token, job_id, until, r, times, failures) for r in rngs))
    elapsed = time.monotonic() - started
    return {"times": times, "failures": failures, "elapsed_s": elapsed}


def _wait_training(client: httpx.Client, job_id: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = client.get(f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"}).json()
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            raise RuntimeError(f"the training job ended before the load started: {job}")
        if any(e.get("stage") == "train" for e in events):
            return
        time.sleep(1.0)
    raise RuntimeError(f"job {job_id} did not start training in {timeout_s} s")


def _row(name: str, values: list[float], elapsed: float, failed: int) -> dict[str, Any]:
    return {
        "route": name,
        "requests": len(values),
        "per_s": round(len(values) / elapsed, 1),
        "p50_ms": round(_percentile(values, 50) or 0, 1),
        "p95_ms": round(_percentile(values, 95) or 0, 1),
        "p99_ms": round(_percentile(values, 99) or 0, 1),
        "max_ms": round(max(values), 1) if values else None,
        "mean_ms": round(statistics.fmean(values), 1) if values else None,
        "failed": failed,
    }


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (its threads included, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores (``/proc/stat``)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def _reading(results: dict[str, Any], cores: int) -> str:
    """What the run says, in words, for the report's readers."""
    p99, busy = results["p99_ms"], results["server_cpu_share_of_one_core"]
    load = results["load_average_at_load_start"][0], results["load_average_after"][0]
    lines = [
        f"Reading: load average (1 min) {load[0]} when the load started and {load[1]} after it, on "
        f"{cores} cores (it counts runnable threads, the server's own included; above {cores}, work "
        f"queued for the CPUs). p99 {p99} ms against a goal of 50 ms: "
        + ("met." if p99 < 50 else "not met.")
        + f" The API process used {results['server_cpu_ms_per_get']} ms of CPU per GET and was busy "
        f"{busy:.0%} of one core over the load window; the machine's {cores} cores were "
        f"{results['machine_cpu_busy_share']:.0%} busy (everything on it: the server, the database "
        "server if not SQLite, the load generator, the training job and any other work).",
        f"The server ran {results['server_gc_full_collections']} full garbage collections in the load "
        f"window, pausing every request for {results['server_gc_full_pause_ms_total']} ms in all "
        f"(longest {results['server_gc_full_pause_ms_max']} ms).",
    ]
    if p99 >= 50 and results["machine_cpu_busy_share"] >= 0.9:
        lines.append(
            "The machine was saturated: every request waited for a CPU behind the other work "
            "(the training job runs niced, the database and the load generator do not), so p95/p99 "
            "are that queue. The same run on a machine with cores to spare (or the database on "
            "another one) is what tells the server's own tail."
        )
    elif p99 >= 50 and busy >= 0.8:
        lines.append(
            "The server is CPU-bound: one Python process (one GIL) at or near a full core, so requests "
            "queue behind each other; p95/p99 are that queue, not slow requests. Less CPU per GET, "
            "more API processes (cores), or fewer requests (a dashboard that polls less) move them."
        )
    elif p99 < 50:
        lines.append(
            f"The server served {results['requests_per_s']} of {results['offered_per_s']} offered "
            "requests/s with CPU to spare: at this load average it keeps up, and its tail is what "
            "the other work on the machine leaves it (compare runs by their load averages)."
        )
    else:
        lines.append(
            "The server had spare CPU of its own, so the tail is the machine's: the CPUs were shared "
            "(see the load average), and the server waited for them. The same run on a machine "
            "with cores to spare is what tells the server's own tail."
        )
    return " ".join(lines)


def _gc_stats(path: Path) -> dict[str, Any]:
    """The server's generation-2 collections so far (``tests/e2e/serve.py``'s ``NAS_GC_STATS_FILE``):
    their count, total pause and the last pauses (ms)."""
    return {"full_collections": 0, "pause_ms_total": 0.0, "pauses_ms": [], **json.loads(path.read_text())}


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    """100 clients polling while a job trains; target: GET p99 < 50 ms, nothing failed.

    ``NAS_LOAD_DATABASE_URL`` (e.g. a PostgreSQL URL) runs the server on that database instead of
    a temporary SQLite file (in a fresh schema, dropped afterwards); the report is then
    ``api_load_postgresql``.
    """
    clients = 100
    duration_s = 20.0 if quick else 120.0
    started = time.perf_counter()
    load_before = [round(v, 2) for v in os.getloadavg()]
    database = os.environ.get("NAS_LOAD_DATABASE_URL")
    backend = "sqlite"
    if database:
        from sqlalchemy.engine import make_url

        backend = make_url(database).get_backend_name()
    extra = {"NAS_SCHEDULER": "ray", "NAS_RAY_NUM_CPUS": str(os.cpu_count() or 2)}
    # The server's own settings come from ``extra`` only (``live_server`` drops the caller's NAS_*):
    # NAS_GC_FREEZE is passed on, to compare the server with and without it.
    gc_freeze = os.environ.get("NAS_GC_FREEZE")
    if gc_freeze is not None:
        extra["NAS_GC_FREEZE"] = gc_freeze
    with (
        # PostgreSQL: a fresh schema per run, so that no run polls the jobs and events of earlier runs
        # (the load user's job list would otherwise grow from run to run)
        fresh_schema(database) if database else contextlib.nullcontext(None) as database_url,
        tempfile.TemporaryDirectory(prefix="nas-load-") as tmp,
        live_server(
            Path(tmp),
            start_timeout_s=900,
            NAS_GC_STATS_FILE=str(Path(tmp) / "gc.json"),
            **extra,
            **({"NAS_DATABASE_URL": database_url} if database_url else {}),
        ) as server,
    ):
        gc_file = Path(tmp) / "gc.json"
        token = server.token("load")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            r = c.post("/v1/jobs", json=TRAINING_SPEC)
            r.raise_for_status()
            job_id = r.json()["id"]
            _wait_training(c, job_id)
            load_at_start = [round(v, 2) for v in os.getloadavg()]
            cpu_before, machine_before = _process_cpu_s(server.process.pid), _machine_cpu()
            gc_before = _gc_stats(gc_file)
            got = asyncio.run(_load(server.url, token, job_id, clients, duration_s, seed=0))
            server_cpu_s = _process_cpu_s(server.process.pid) - cpu_before
            gc_after = _gc_stats(gc_file)
            gc_in_window = gc_after["full_collections"] - gc_before["full_collections"]
            gc_window_pauses = gc_after["pauses_ms"][-gc_in_window:] if gc_in_window else []
            machine_after = _machine_cpu()
            still_training = c.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
            c.post(f"/v1/jobs/{job_id}/cancel")
    load_after = [round(v, 2) for v in os.getloadavg()]
    times, failures, elapsed = got["times"], got["failures"], got["elapsed_s"]
    by_route: dict[str, int] = defaultdict(int)
    for f in failures:
        by_route[f["route"]] += 1
    rows = [_row(name, times[name], elapsed, by_route[name]) for name in ROUTES]
    every = [v for name in ROUTES for v in times[name]]
    total = _row("all GETs", every, elapsed, len(failures))
    rows.append(total)
    results = {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "requests": len(every),
        "requests_per_s": total["per_s"],
        "offered_per_s": round(clients * len(ROUTES) / PERIOD_S, 1),
        "p50_ms": total["p50_ms"],
        "p95_ms": total["p95_ms"],
        "p99_ms": total["p99_ms"],
        "failed": len(failures),
        "failures": failures[:20],
        "server_cpu_s": round(server_cpu_s, 2),
        "server_cpu_ms_per_get": round(server_cpu_s * 1000 / max(1, len(every)), 2),
        "server_cpu_share_of_one_core": round(server_cpu_s / elapsed, 3),
        "machine_cpu_busy_share": round(
            (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1]), 3
        ),
        # the server's full garbage collections during the load window: each pauses every request
        "server_gc_full_collections": gc_in_window,
        "server_gc_full_pause_ms_total": round(gc_after["pause_ms_total"] - gc_before["pause_ms_total"], 1),
        "server_gc_full_pause_ms_max": max(gc_window_pauses, default=0.0),
        "job_trained_throughout": still_training,
        "load_average_before": load_before,
        "load_average_at_load_start": load_at_start,
        "load_average_after": load_after,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    p99 = total["p99_ms"]
    targets = {
        "GET p99 at 100 concurrent clients (ms)": {"value": p99, "goal": "< 50", "met": p99 < 50},
        "failed requests": {"value": len(failures), "goal": "== 0", "met": not failures},
        "the job trained during the whole load": {
            "value": still_training,
            "goal": "true",
            "met": bool(still_training),
        },
    }
    notes = _reading(results, os.cpu_count() or 1) + "\n\n" + (__doc__ or "").split("\n\n", 1)[1].strip()
    return write_report(
        "api_load" if backend == "sqlite" else f"api_load_{backend}",
        config={
            "clients": clients,
            "period_s": PERIOD_S,
            "routes_per_round": list(ROUTES),
            "duration_s": duration_s,
            "timeout_s": TIMEOUT_S,
            "quick": quick,
            "database": backend,
            "server_gc_freeze": gc_freeze if gc_freeze is not None else "default (on)",
        },
        results=results,
        targets=targets,
        out_dir=out_dir,
        notes=notes,
        tables=[("Routes", rows)],
    )


if __name__ == "__main__":
    run_from_command_line(run, description=__doc__)
