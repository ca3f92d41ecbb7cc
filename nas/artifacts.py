"""The artifact store: checkpoints, predictors and bundles under one fsspec root.

Writes are atomic (a temporary file renamed over the key) and, on a local root, durable: the file
and its directory are fsynced before the write returns, so an object a database row points at
survives a crash or a power cut whole. Reads given the sha256 recorded for an object verify it, so
a corrupt or truncated file is an error, never bytes handed on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem

CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredObject:
    """Where an object landed and what identifies its bytes."""

    uri: str
    sha256: str
    size_bytes: int


class ArtifactError(RuntimeError):
    """A stored object cannot be used: it is missing, or its bytes are not the ones recorded."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri


class ArtifactMissingError(ArtifactError):
    """The object's file is gone."""


class ArtifactCorruptError(ArtifactError):
    """The object's bytes do not hash to the sha256 recorded when it was written."""


def _fsync_dir(path: str) -> None:
    """Make a directory's entries (a rename, a new file or folder) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    """Objects addressed by key under a root URL (a local directory by default)."""

    def __init__(self, root: str) -> None:
        if not root:
            raise ValueError("artifact root is empty: set NAS_ARTIFACT_ROOT to a directory or fsspec URL")
        # A local directory is kept absolute, so URIs written by a worker with another cwd still resolve.
        self.root = root.rstrip("/") if "://" in root else str(Path(root).resolve())
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            self._makedirs_durable(self._root_path)
        else:
            self.fs.makedirs(self._root_path, exist_ok=True)

    def uri_for(self, key: str) -> str:
        return f"{self.root}/{key.lstrip('/')}"

    def _path(self, uri: str) -> str:
        if not uri.startswith(self.root + "/"):
            raise ValueError(f"{uri!r} is not inside this artifact store ({self.root})")
        return f"{self._root_path}/{uri[len(self.root) + 1 :]}"

    @staticmethod
    def _makedirs_durable(path: str) -> None:
        """``mkdir -p`` whose new folders are fsynced into their parents."""
        missing: list[str] = []
        cur = os.path.abspath(path)
        while not os.path.isdir(cur):
            missing.append(cur)
            cur = os.path.dirname(cur)
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
                os.mkdir(folder)
            _fsync_dir(os.path.dirname(folder))

    def _put_local(self, path: str, data: bytes) -> None:
        parent = os.path.dirname(path)
        self._makedirs_durable(parent)
        tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(parent)  # the rename itself

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        """Store ``data`` under ``key`` atomically: readers see the old object or the whole new one."""
        uri = self.uri_for(key)
        path = self._path(uri)
        if self.is_local:
            self._put_local(path, data)
        else:
            parent = path.rsplit("/", 1)[0]
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
            with self.fs.open(tmp, "wb") as f:
                f.write(data)
            self.fs.mv(tmp, path)
        return StoredObject(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    def get_bytes(self, uri: str, *, sha256: str | None = None) -> bytes:
        """The object's bytes; with ``sha256`` (as recorded at write), verified against it."""
        try:
            with self.fs.open(self._path(uri), "rb") as f:
                data: bytes = f.read()
        except FileNotFoundError as exc:
            raise ArtifactMissingError(uri, f"artifact file {uri} is missing") from exc
        if sha256 is not None:
            self._check(uri, sha256, hashlib.sha256(data).hexdigest())
        return data

    @staticmethod
    def _check(uri: str, expected: str, actual: str) -> None:
        if actual != expected:
            raise ArtifactCorruptError(
                uri, f"artifact file {uri} is corrupt: its sha256 is {actual}, {expected} was recorded"
            )

    def verify(self, uri: str, sha256: str) -> None:
        """Raise ``ArtifactMissingError`` or ``ArtifactCorruptError`` unless its bytes hash to ``sha256``."""
        digest = hashlib.sha256()
        try:
            with self.fs.open(self._path(uri), "rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError as exc:
            raise ArtifactMissingError(uri, f"artifact file {uri} is missing") from exc
        self._check(uri, sha256, digest.hexdigest())

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

    def get_torch(self, uri: str, *, sha256: str | None = None) -> object:
        """A torch object; with ``sha256``, loaded only once its bytes verify."""
        data = self.get_bytes(uri, sha256=sha256)
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
