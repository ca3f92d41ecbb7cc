"""A small typed client of the REST API (the CLI uses it; so can notebooks and scripts)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from nas.schemas import ArtifactPublic, EventPublic, JobList, JobPublic, JobSpec, ParetoPublic, SubnetPublic

DEFAULT_URL = "http://127.0.0.1:8000"


class NASClientError(RuntimeError):
    """The server answered with an error; ``status`` and ``detail`` say which."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {_describe(detail)}")


class CorruptDownloadError(RuntimeError):
    """Downloaded bytes do not match the artifact's sha256."""


def _describe(detail: Any) -> str:
    """Pydantic's error list as 'field.path: message; ...', anything else as is."""
    if isinstance(detail, list):
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", []) if p != "body")
                parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
            else:
                parts.append(str(err))
        return "; ".join(parts)
    return str(detail)


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str, str | None]]:
    """``(event, data, id)`` for each message of a server-sent event stream."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data), event_id
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            event = value
        elif key == "data":
            data.append(value)
        elif key == "id":
            event_id = value
    if data:
        yield event, "\n".join(data), event_id


class NASClient:
    """Talks to one server with one bearer token."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"server url must start with http:// or https://, got {url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> NASClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self._http.request(method, path, **kwargs)
        if res.status_code >= 400:
            try:
                detail = res.json().get("detail", res.text)
            except ValueError:
                detail = res.text
            raise NASClientError(res.status_code, detail)
        return res.json()

    def healthz(self) -> bool:
        return bool(self._request("GET", "/healthz").get("status") == "ok")

    def submit(self, spec: JobSpec | dict[str, Any]) -> JobPublic:
        body = spec.model_dump(mode="json") if isinstance(spec, JobSpec) else spec
        return JobPublic.model_validate(self._request("POST", "/v1/jobs", json=body))

    def get_job(self, job_id: str) -> JobPublic:
        return JobPublic.model_validate(self._request("GET", f"/v1/jobs/{job_id}"))

    def list_jobs(self, *, status: str | None = None, limit: int = 100, offset: int = 0) -> JobList:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        return JobList.model_validate(self._request("GET", "/v1/jobs", params=params))

    def cancel(self, job_id: str) -> JobPublic:
        return JobPublic.model_validate(self._request("POST", f"/v1/jobs/{job_id}/cancel"))

    def events(self, job_id: str, *, after: int = 0) -> list[EventPublic]:
        """The events recorded so far (no waiting)."""
        data = self._request(
            "GET",
            f"/v1/jobs/{job_id}/events",
            params={"after": after},
            headers={"Accept": "application/json"},
        )
        return [EventPublic.model_validate(e) for e in data]

    def follow(self, job_id: str, *, after: int = 0) -> Iterator[EventPublic]:
        """Events as they happen, until the job ends (server-sent events)."""
        with self._http.stream(
            "GET",
            f"/v1/jobs/{job_id}/events",
            params={"after": after},
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(self._http.timeout.connect, read=None),
        ) as res:
            if res.status_code >= 400:
                res.read()
                raise NASClientError(res.status_code, res.json().get("detail", res.text))
            for kind, data, _ in parse_sse(res.iter_lines()):
                if kind == "end":
                    return
                yield EventPublic.model_validate(json.loads(data))

    def pareto(self, job_id: str, *, target: str | None = None) -> ParetoPublic:
        params = {"target": target} if target is not None else None
        return ParetoPublic.model_validate(self._request("GET", f"/v1/jobs/{job_id}/pareto", params=params))

    def subnets(self, job_id: str) -> list[SubnetPublic]:
        return [SubnetPublic.model_validate(x) for x in self._request("GET", f"/v1/jobs/{job_id}/subnets")]

    def export(self, job_id: str, subnet_id: int) -> ArtifactPublic:
        return ArtifactPublic.model_validate(
            self._request("POST", f"/v1/jobs/{job_id}/subnets/{subnet_id}/export")
        )

    def download(self, artifact: ArtifactPublic, dest: Path) -> Path:
        """Stream the artifact to ``dest`` and check its sha256; returns ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        tmp = dest.with_name(f".{dest.name}.part")
        with self._http.stream("GET", artifact.download_url) as res:
            if res.status_code >= 400:
                res.read()
                raise NASClientError(res.status_code, res.json().get("detail", res.text))
            with tmp.open("wb") as f:
                for chunk in res.iter_bytes():
                    digest.update(chunk)
                    f.write(chunk)
        if digest.hexdigest() != artifact.sha256:
            tmp.unlink(missing_ok=True)
            raise CorruptDownloadError(
                f"artifact {artifact.id} arrived corrupted: sha256 {digest.hexdigest()} "
                f"!= {artifact.sha256}; download it again"
            )
        tmp.replace(dest)
        return dest
