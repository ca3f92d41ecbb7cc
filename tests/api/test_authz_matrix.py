"""Every route of the app, generated from ``app.routes``: no token, a bogus token, another user's token.

None of them may see Alice's data or cause a server error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from nas.artifacts import ArtifactStore
from nas.settings import Settings
from nas.store import Database, crud
from tests.api.test_subnets import _job_with_front

Auth = tuple[int, dict[str, str]]
PUBLIC = {"/healthz", "/v1/healthz", "/", "/dashboard"}


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every API route: the OpenAPI paths FastAPI builds from ``app.routes``.

    (FastAPI 0.165 keeps included routers lazily, so the schema is the flat list of their routes.)
    """
    app = create_app(Settings(scheduler="none"))
    out = [(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops]
    # Routes left out of the schema (the dashboard page) are public and checked here as such.
    out += [(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods]
    return sorted(set(out))


ROUTES = _routes()


def test_the_matrix_covers_every_api_route() -> None:
    paths = {p for _, p in ROUTES}
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/artifacts/{artifact_id}"} <= paths
    assert any("{subnet_id}" in p for p in paths)
    assert len(ROUTES) >= 12


@pytest.fixture
def world(
    client: TestClient, db: Database, settings: Settings, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> dict[str, Any]:
    """Alice's job with subnets, a front and an artifact; the ids to put in every path."""
    job_id = _job_with_front(client, db, alice[1], spec)
    obj = ArtifactStore(settings.artifact_root).put_bytes(f"jobs/{job_id}/bundles/x.zip", b"zip" * 100)
    with db.session() as s:
        art = crud.add_artifact(
            s, job_id=job_id, kind="bundle", uri=obj.uri, sha256=obj.sha256, size_bytes=obj.size_bytes
        )
        subnet = crud.list_subnets(s, job_id=job_id)[0]
        ids = {"job_id": job_id, "artifact_id": art.id, "subnet_id": str(subnet.id)}
    return {"ids": ids, "alice": alice[1], "bob": bob[1]}


def _call(client: TestClient, method: str, path: str, ids: dict[str, str], headers: dict[str, str]) -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
    return client.request(method, url, headers={**headers, "Accept": "application/json"}, json={})


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize("who", ["no-token", "bogus-token", "other-user"])
def test_no_one_else_reaches_alices_data(
    client: TestClient, world: dict[str, Any], method: str, path: str, who: str
) -> None:
    headers = {
        "no-token": {},
        "bogus-token": {"Authorization": "Bearer nas_bogus-token-0000"},
        "other-user": world["bob"],
    }[who]
    r = _call(client, method, path, world["ids"], headers)
    assert r.status_code < 500, r.text[:300]
    if path in PUBLIC:
        assert r.status_code == 200
        return
    if who != "other-user":
        assert r.status_code == 401, r.text[:300]
        assert "token" in r.json()["detail"]
        return
    if "{" in path:  # a path naming Alice's job or artifact: as if it did not exist
        assert r.status_code == 404, r.text[:300]
    else:  # a listing or a submission: Bob may use it, but sees nothing of Alice's
        assert world["ids"]["job_id"] not in r.text


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ROUTES if r[0] == "GET"], ids=[p for m, p in ROUTES if m == "GET"]
)
def test_alice_reaches_her_own_data(
    client: TestClient, world: dict[str, Any], method: str, path: str
) -> None:
    """The control: the refusals above come from ownership, not from broken paths."""
    r = _call(client, method, path, world["ids"], world["alice"])
    if path.endswith("/assignment"):  # only a mixture family has one; Alice's job is ofa-mbv3
        assert r.status_code == 404 and "trains no mixture" in r.text, r.text[:300]
        return
    assert r.status_code == 200, r.text[:300]
