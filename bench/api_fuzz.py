"""`nas bench api-fuzz`: Schemathesis over the running server's OpenAPI schema, with a valid token.

``NAS_FUZZ_DATABASE_URL`` points the server at an empty database (e.g. a PostgreSQL schema) instead
of a temporary SQLite file; the report says which.

A real uvicorn server (queue-only scheduler, a temporary SQLite database) is started in a thread;
Schemathesis generates requests for every operation of its ``/openapi.json`` (valid and invalid
inputs alike) and each response is checked for a server error (5xx) or a transport failure.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import write_report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(root: Path) -> Iterator[tuple[str, str]]:
    """(base URL, token) of a live server over a fresh database."""
    import uvicorn

    from api.app import create_app
    from nas.settings import Settings
    from nas.store import Database, crud

    url = os.environ.get("NAS_FUZZ_DATABASE_URL") or f"sqlite:///{root / 'nas.db'}"
    settings = Settings(scheduler="none", database_url=url, artifact_root=str(root / "artifacts"))
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        token = crud.create_token(s, user_id=crud.get_or_create_user(s, name="fuzzer").id)
    db.dispose()
    app = create_app(settings)
    app.state.sse_poll_s = 0.05
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _probe(operation: Any, mode: Any, *, base: str, headers: dict[str, str], examples: int) -> dict[str, Any]:
    """Run ``examples`` generated requests against one operation: their statuses and the server errors."""
    import requests
    from hypothesis import HealthCheck, Phase, given, settings

    session = requests.Session()
    codes: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def probe(case: Any) -> None:
        try:
            response = case.call(base_url=base, session=session, headers=headers, timeout=30)
        except requests.RequestException as exc:
            codes["transport-error"] += 1
            errors.append({"operation": operation.label, "status": "transport", "detail": str(exc)[:200]})
            return
        codes[str(response.status_code)] += 1
        if response.status_code >= 500:
            errors.append(
                {
                    "operation": operation.label,
                    "status": response.status_code,
                    "detail": response.text[:200],
                    "request": case.as_curl_command(headers=headers)[:400],
                }
            )

    probe()
    return {"codes": codes, "errors": errors}


def _fuzz(base: str, token: str, examples: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-operation rows and the server errors found."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.result import Ok

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    modes = list(schemathesis.GenerationMode)  # positive (schema-valid) and negative inputs
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):  # an operation Schemathesis cannot read: the schema is at fault
            errors.append({"operation": "?", "status": "invalid schema", "detail": str(result.err())[:200]})
            continue
        operation = result.ok()
        for mode in modes:
            try:
                got = _probe(operation, mode, base=base, headers=headers, examples=examples)
            except Unsatisfiable:  # no way to violate the schema of an operation without inputs
                continue
            codes: Counter[str] = got["codes"]
            errors += got["errors"]
            rows.append(
                {
                    "operation": operation.label,
                    "inputs": mode.value,
                    "requests": sum(codes.values()),
                    "statuses": ", ".join(f"{k}:{v}" for k, v in sorted(codes.items())),
                }
            )
    return rows, errors


def run(*, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Fuzz every operation; target: 0 server errors in at least 1,000 requests (full run)."""
    examples = 40 if quick else 100
    started = time.perf_counter()
    database = "postgresql" if os.environ.get("NAS_FUZZ_DATABASE_URL") else "sqlite"
    with tempfile.TemporaryDirectory(prefix="nas-fuzz-") as tmp, _server(Path(tmp)) as (base, token):
        rows, errors = _fuzz(base, token, examples)
    total = sum(r["requests"] for r in rows)
    need = 1000
    results = {
        "requests": total,
        "server_errors": len(errors),
        "operations": len(rows),
        "errors": errors[:50],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    targets = {
        "server errors (5xx or transport)": {"value": len(errors), "goal": "== 0", "met": not errors},
        "generated requests": {"value": total, "goal": f">= {need}", "met": total >= need},
    }
    import schemathesis

    return write_report(
        "api_fuzz",
        config={
            "examples_per_operation": examples,
            "quick": quick,
            "database": database,
            "schemathesis": schemathesis.__version__,
        },
        results=results,
        targets=targets,
        out_dir=out_dir,
        notes="Schemathesis (hypothesis generation phase) over /openapi.json of a live uvicorn server "
        "(queue-only scheduler, SQLite), every request with a valid bearer token; each operation with "
        "schema-valid (positive) and schema-violating (negative) inputs as Schemathesis generates them. "
        "A request counts once whatever its status.",
        tables=[("Operations", rows)],
    )
