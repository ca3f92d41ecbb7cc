"""The artifact store: checkpoints, predictors and bundles under one fsspec root."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import fsspec
import torch


@dataclass(frozen=True)
class StoredObject:
    """Where an object landed and what identifies its bytes."""

    uri: str
    sha256: str
    size_bytes: int


class ArtifactStore:
    """Objects addressed by key under a root URL (a local directory by default)."""

    def __init__(self, root: str) -> None:
        if not root:
            raise ValueError("artifact root is empty: set NAS_ARTIFACT_ROOT to a directory or fsspec URL")
        # A local directory is kept absolute, so URIs written by a worker with another cwd still resolve.
        self.root = root.rstrip("/") if "://" in root else str(Path(root).resolve())
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)
        self.fs.makedirs(self._root_path, exist_ok=True)

    def uri_for(self, key: str) -> str:
        return f"{self.root}/{key.lstrip('/')}"

    def _path(self, uri: str) -> str:
        if not uri.startswith(self.root + "/"):
            raise ValueError(f"{uri!r} is not inside this artifact store ({self.root})")
        return f"{self._root_path}/{uri[len(self.root) + 1 :]}"

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        """Store ``data`` under ``key`` atomically: readers see the old object or the whole new one."""
        uri = self.uri_for(key)
        path = self._path(uri)
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
        self.fs.mv(tmp, path)
        return StoredObject(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    def get_bytes(self, uri: str) -> bytes:
        with self.fs.open(self._path(uri), "rb") as f:
            data: bytes = f.read()
        return data

    def open(self, uri: str) -> IO[bytes]:
        stream: IO[bytes] = self.fs.open(self._path(uri), "rb")
        return stream

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._path(uri)))

    def delete(self, uri: str) -> None:
        if self.exists(uri):
            self.fs.rm(self._path(uri))

    def put_torch(self, key: str, obj: object) -> StoredObject:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return self.put_bytes(key, buf.getvalue())

    def get_torch(self, uri: str) -> object:
        return torch.load(io.BytesIO(self.get_bytes(uri)), map_location="cpu", weights_only=False)
