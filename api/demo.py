"""`make run`: the service with embedded Ray and SQLite, the demo job submitted, where to watch it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import uvicorn
import yaml

from nas.settings import get_settings
from nas.store import Database, crud

DEMO_SPEC = Path(__file__).resolve().parent.parent / "examples" / "fmnist-demo.yaml"


def _submit_when_up(base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(600):
        try:
            if httpx.get(f"{base}/v1/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    r = httpx.post(f"{base}/v1/jobs", json=spec, headers=headers, timeout=30)
    r.raise_for_status()
    job = r.json()
    print(
        "\n"
        f"  Demo job submitted: {job['id']} ({spec['name']})\n"
        f"  Dashboard:  {base}/dashboard#token={token}\n"
        f"  API token:  {token}\n"
        f"  CLI:        NAS_TOKEN={token} .venv/bin/nas status {job['id']}\n"
        "  Press Ctrl-C to stop the server.\n",
        flush=True,
    )


def main() -> None:
    settings = get_settings()
    if settings.is_sqlite:
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        user = crud.get_or_create_user(s, name="demo")
        token = crud.create_token(s, user_id=user.id)
    base = f"http://{settings.host}:{settings.port}"
    threading.Thread(target=_submit_when_up, args=(base, token), daemon=True).start()
    uvicorn.run(
        "api.app:create_app", factory=True, host=settings.host, port=settings.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
