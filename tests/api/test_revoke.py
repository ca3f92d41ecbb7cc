"""`nas token revoke`: a revoked token is refused by the running server on its next request."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from api.cli import app, token_file
from nas.settings import Settings

runner = CliRunner()


def test_a_revoked_token_is_refused(env: Settings, server: str) -> None:
    keep = runner.invoke(app, ["token", "create", "erin", "--no-save"]).output.strip()
    token = runner.invoke(app, ["token", "create", "erin"]).output.strip()
    assert token_file().is_file()
    for t in (token, keep):
        assert httpx.get(f"{server}/v1/jobs", headers={"Authorization": f"Bearer {t}"}).status_code == 200

    result = runner.invoke(app, ["token", "revoke", token])
    assert result.exit_code == 0, result.output
    assert not token_file().exists()  # the saved copy of a revoked token is removed too

    r = httpx.get(f"{server}/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    # Only that token: the user's other token still works.
    assert httpx.get(f"{server}/v1/jobs", headers={"Authorization": f"Bearer {keep}"}).status_code == 200


def test_revoking_an_unknown_token_says_so(env: Settings) -> None:
    result = runner.invoke(app, ["token", "revoke", "nas_never-issued"])
    assert result.exit_code == 1
    assert "no such token" in result.output
