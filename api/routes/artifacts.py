"""Artifacts: download an exported bundle (or another stored object) by id."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from api.deps import ArtifactStoreDep, CurrentUser, SessionDep
from api.params import ArtifactId
from nas.artifacts import ArtifactCorruptError, ArtifactMissingError, ArtifactStore
from nas.store import crud

router = APIRouter(prefix="/artifacts", tags=["artifacts"])
CHUNK = 1 << 20


def _chunks(store: ArtifactStore, uri: str) -> Iterator[bytes]:
    with store.open(uri) as f:
        while chunk := f.read(CHUNK):
            yield chunk


@router.get("/{artifact_id}", response_class=StreamingResponse)
def download_artifact(
    artifact_id: ArtifactId, s: SessionDep, user: CurrentUser, store: ArtifactStoreDep
) -> StreamingResponse:
    """The artifact's bytes; ``X-Content-SHA256`` carries the checksum to verify them against."""
    art = crud.get_artifact(s, artifact_id=artifact_id, owner_id=user.id)
    if art is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"artifact {artifact_id} not found")
    # Verified before the first byte is sent: a corrupt file is an error, never bytes handed on.
    try:
        store.verify(art.uri, art.sha256)
    except ArtifactMissingError as exc:
        raise HTTPException(
            status.HTTP_410_GONE, detail=f"artifact {artifact_id} is recorded but its file is gone"
        ) from exc
    except ArtifactCorruptError as exc:
        fix = " Export the subnet again to rebuild it." if art.kind == "bundle" else ""
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"artifact {artifact_id} is corrupt on the server: its stored bytes do not match "
            f"the sha256 recorded for it, so they are not served.{fix}",
        ) from exc
    ext = "zip" if art.kind == "bundle" else "bin"
    name = f"{art.kind}-{art.id}.{ext}"
    return StreamingResponse(
        _chunks(store, art.uri),
        media_type="application/zip" if ext == "zip" else "application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(art.size_bytes),
            "X-Content-SHA256": art.sha256,
        },
    )
