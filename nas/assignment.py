"""A mixture job's assignment matrix (configurations x member supernets), stored as a JSON artifact."""

from __future__ import annotations

import json
from typing import Any

from nas.artifacts import ArtifactError, ArtifactStore
from nas.store import Database, crud

ASSIGNMENT = "assignment"


def save_assignment(
    db: Database, store: ArtifactStore, job_id: str, payload: dict[str, Any], *, epoch: int
) -> None:
    """Store the matrix after ``epoch`` (one artifact per epoch; the latest is the job's)."""
    data = json.dumps(payload | {"epoch": epoch}, sort_keys=True).encode()
    obj = store.put_bytes(f"jobs/{job_id}/assignment/epoch-{epoch:04d}.json", data)
    with db.session() as s:
        crud.add_artifact(
            s,
            job_id=job_id,
            kind=ASSIGNMENT,
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
            meta={"epoch": epoch},
        )


def latest_assignment(db: Database, store: ArtifactStore, job_id: str) -> dict[str, Any] | None:
    """The matrix after the job's last trained epoch, or ``None`` if the job stored none."""
    with db.read() as s:
        rows = crud.list_artifacts(s, job_id=job_id, kind=ASSIGNMENT)
        stored = [(r.uri, r.sha256) for r in sorted(rows, key=lambda r: int((r.meta or {}).get("epoch", 0)))]
    for uri, sha256 in reversed(stored):
        try:
            payload: dict[str, Any] = json.loads(store.get_bytes(uri, sha256=sha256))
        except ArtifactError:  # missing or corrupt: the epoch before is the latest usable one
            continue
        return payload
    return None


def member_of(payload: dict[str, Any], arch_hash: str) -> dict[str, Any] | None:
    """What a bundle's card says about the mixture: the member ``arch_hash`` ran in, and the mixture."""
    try:
        i = list(payload["arch_hashes"]).index(arch_hash)
    except ValueError:
        return None
    return {
        "member": int(payload["assignment"][i]),
        "members": int(payload["members"]),
        "config": payload["configs"][i],
        "p_member": float(payload["probs"][i][payload["assignment"][i]]),
        "temperature": float(payload["temperature"]),
        "epoch": int(payload.get("epoch", 0)),
    }
