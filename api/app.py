"""The FastAPI application: REST under ``/v1``, the dashboard at ``/``, and the scheduler's lifetime."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig

from api.guard import BodyGuard, finite
from api.routes import artifacts, jobs, meta, subnets
from nas.artifacts import ArtifactStore
from nas.settings import Settings, get_settings
from nas.store import Database
from workers.scheduler import Scheduler

DASHBOARD = Path(__file__).parent / "dashboard"
API_PREFIX = "/v1"
_TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


_frozen = threading.Event()


def _freeze_startup_heap() -> None:
    """Take what the server has loaded at start-up out of the garbage collector's full collections.

    A full (generation 2) collection scans every tracked object; with torch (what validating a spec
    imports), Ray and the app loaded, that is ~250,000 objects that live as long as the process:
    85 ms alone here, ~200 ms on a busy machine, a pause of every request in flight about every 20 s
    under ``nas bench api-load``, which is what its p99 was. So the modules a first submission would
    load are imported now, the garbage collected, and the survivors frozen (``gc.freeze``): later
    full collections scan only what the server allocates afterwards. Once per process (an app built
    again in the same process, as tests do, freezes nothing more).
    """
    if _frozen.is_set():
        return
    import predictors.hardware  # noqa: F401  (imported by spec validation: torch)
    import supernets.training  # noqa: F401

    gc.collect()
    gc.freeze()
    _frozen.set()


def create_app(settings: Settings | None = None, *, scheduler: Scheduler | None = None) -> FastAPI:
    """The app for ``settings`` (the environment's by default); ``scheduler`` overrides the configured one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings if settings is not None else get_settings()
        db = Database(cfg.database_url)
        db.upgrade()
        if scheduler is not None:
            sched = scheduler
        else:
            from workers import make_scheduler

            sched = make_scheduler(cfg)
        app.state.settings = cfg
        app.state.db = db
        app.state.artifacts = ArtifactStore(cfg.artifact_root)
        app.state.scheduler = sched
        sched.start()
        if cfg.gc_freeze:
            _freeze_startup_heap()
        try:
            yield
        finally:
            sched.shutdown()
            db.dispose()

    cfg = settings if settings is not None else get_settings()
    app = FastAPI(
        title="NAS service",
        version="0.1.0",
        description="Once-for-all neural architecture search: submit jobs, follow them, download subnets.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry: off unless NAS_TELEMETRY. Even with no provider set up, its
        # per-request check costs about a sixth of the event loop's time under load (api-load).
        telemetry=None if cfg.telemetry else _TELEMETRY_OFF,
    )
    app.add_middleware(BodyGuard, max_bytes=cfg.limits.body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for module in (jobs, subnets, artifacts, meta):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(meta.public_router, prefix=API_PREFIX)
    app.include_router(meta.public_router)
    _mount_dashboard(app)
    return app


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, with any non-finite number in the echoed input written as text (JSON has none)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": finite(jsonable_encoder(exc.errors()))},
    )


def _mount_dashboard(app: FastAPI) -> None:
    index = DASHBOARD / "index.html"

    def dashboard_page() -> FileResponse:
        if not index.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the dashboard is not installed")
        return FileResponse(index, media_type="text/html")

    for path in ("/", "/dashboard"):
        app.add_api_route(path, dashboard_page, methods=["GET"], include_in_schema=False)
    if DASHBOARD.is_dir():
        app.mount("/dashboard", StaticFiles(directory=DASHBOARD, html=True), name="dashboard")
