"""Which dataset sources a job may name: allowed URL schemes, data roots, file kinds and sizes.

One check, used at submission (API), by the dataset loader (workers) and on export, so a
dataset URI can never make the service read a file or an address the operator did not allow.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from nas.settings import Settings

LOCAL_SCHEMES = ("file", "local")


class SourceError(ValueError):
    """A dataset source the policy refuses; the message says what to fix."""


@dataclass(frozen=True)
class SourcePolicy:
    """Allowed schemes, the folders a local path must lie in, and the largest file accepted."""

    schemes: tuple[str, ...] = ("file",)
    roots: tuple[Path, ...] = ()
    max_bytes: int = 4 << 30

    @classmethod
    def from_settings(cls, settings: Settings) -> SourcePolicy:
        roots = (settings.upload_dir, settings.data_dir, *settings.data_roots)  # relative paths: uploads
        return cls(
            schemes=tuple(s.lower() for s in settings.dataset_schemes),
            roots=tuple(Path(r).expanduser().resolve() for r in roots),
            max_bytes=settings.limits.dataset_bytes,
        )

    @classmethod
    def local(cls, *roots: Path) -> SourcePolicy:
        """Local files under ``roots`` only (the loader's default)."""
        return cls(roots=tuple(Path(r).expanduser().resolve() for r in roots))

    def allows_local(self) -> bool:
        return any(s in LOCAL_SCHEMES for s in self.schemes)


def _schemes(uri: str) -> tuple[list[str], str]:
    """The schemes of a possibly chained fsspec URL (``a::b::c://x``) and its last part."""
    parts = uri.split("::")
    schemes = []
    for i, part in enumerate(parts):
        if "://" in part:
            schemes.append(part.split("://", 1)[0].lower())
        elif i < len(parts) - 1 or part == "":
            schemes.append(part.lower())  # a bare protocol name in a chain, e.g. 'simplecache'
        else:
            schemes.append("file")
    return schemes, parts[-1]


def _check_host(uri: str) -> None:
    host = urlsplit(uri).hostname
    if host is None:
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host.lower() in ("localhost", "metadata.google.internal"):
            raise SourceError(
                f"dataset.uri {uri!r} points at a local or metadata host; not allowed"
            ) from None
        return
    if ip.is_link_local or ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        raise SourceError(f"dataset.uri {uri!r} points at a local or link-local address; not allowed")


def _local_path(raw: str, policy: SourcePolicy) -> Path:
    if raw.startswith("file://"):
        raw = raw[len("file://") :]
    elif raw.startswith("local://"):
        raw = raw[len("local://") :]
    if "\x00" in raw:
        raise SourceError("dataset.uri contains a NUL byte")
    if not policy.roots:
        raise SourceError("no data roots are configured (NAS_DATA_DIR, NAS_UPLOAD_DIR, NAS_DATA_ROOTS)")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = policy.roots[0] / path
    roots = ", ".join(str(r) for r in policy.roots)
    try:  # outside the roots is refused before existence is checked: nothing is said about other files
        resolved = path.resolve(strict=False)
    except (OSError, RuntimeError):
        raise SourceError(f"dataset.uri {raw!r} cannot be resolved (a symlink loop?)") from None
    if not any(resolved.is_relative_to(r) for r in policy.roots):
        raise SourceError(
            f"dataset.uri {raw!r} resolves to {resolved}, outside the allowed data roots; "
            f"put the data under one of: {roots}"
        )
    if not resolved.exists():
        raise SourceError(f"dataset.uri {raw!r} does not exist; put the data under one of: {roots}")
    return resolved


def check_source(uri: str, policy: SourcePolicy, *, want: Literal["file", "dir"] = "file") -> str:
    """The URI to open for ``uri`` (a resolved absolute path when local), or a ``SourceError``.

    Local paths are resolved (symlinks, ``..``; relative ones against the first root, the uploads),
    must lie inside a data root, and must be a regular file (``want='file'``) no larger than
    ``policy.max_bytes`` or a directory (``want='dir'``). Other schemes, chained URLs included,
    need every scheme of the chain in ``policy.schemes``; local and link-local hosts are refused.
    """
    if not uri or len(uri) > 4096:
        raise SourceError("dataset.uri must be a path or URL of 1 to 4096 characters")
    schemes, last = _schemes(uri)
    refused = [
        s for s in schemes if s not in policy.schemes and not (s in LOCAL_SCHEMES and policy.allows_local())
    ]
    if refused:
        raise SourceError(
            f"dataset.uri {uri!r} uses scheme(s) {refused} that this service does not allow; "
            f"allowed: {list(policy.schemes)} (operators: NAS_DATASET_SCHEMES)"
        )
    if len(schemes) > 1 or schemes[0] not in LOCAL_SCHEMES:
        _check_host(last)
        return uri
    path = _local_path(last, policy)
    info = path.stat()
    if want == "dir":
        if not stat.S_ISDIR(info.st_mode):
            raise SourceError(f"dataset.uri {uri!r} must be a folder of class folders")
        return str(path)
    if not stat.S_ISREG(info.st_mode):
        raise SourceError(
            f"dataset.uri {uri!r} is not a regular file (devices, fifos and folders are refused)"
        )
    if info.st_size > policy.max_bytes:
        raise SourceError(
            f"dataset.uri {uri!r} is {info.st_size} bytes, above the limit of {policy.max_bytes} "
            "(NAS_LIMITS__DATASET_BYTES)"
        )
    if not os.access(path, os.R_OK):
        raise SourceError(f"dataset.uri {uri!r} is not readable by the service")
    return str(path)
