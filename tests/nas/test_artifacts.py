from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nas.artifacts import ArtifactStore


def test_put_get_roundtrip_and_hash(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "a"))
    obj = store.put_bytes("jobs/j1/x.bin", b"hello")
    assert obj.sha256 == hashlib.sha256(b"hello").hexdigest() and obj.size_bytes == 5
    assert store.get_bytes(obj.uri) == b"hello"
    assert store.exists(obj.uri)
    obj2 = store.put_bytes("jobs/j1/x.bin", b"bye")  # replaced whole, no temp files left behind
    assert store.get_bytes(obj2.uri) == b"bye"
    assert [p.name for p in (tmp_path / "a" / "jobs" / "j1").iterdir()] == ["x.bin"]
    store.delete(obj.uri)
    assert not store.exists(obj.uri)


def test_torch_objects_and_memory_fs() -> None:
    store = ArtifactStore("memory://nas-test")
    obj = store.put_torch("ckpt.pt", {"epoch": 3})
    assert store.get_torch(obj.uri) == {"epoch": 3}


def test_rejects_foreign_uri(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    with pytest.raises(ValueError, match="not inside this artifact store"):
        store.get_bytes("/etc/passwd")


def test_relative_root_gives_absolute_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    obj = ArtifactStore("./store").put_bytes("k.bin", b"x")
    assert obj.uri == str(tmp_path / "store" / "k.bin")
    monkeypatch.chdir("/")
    assert ArtifactStore(str(tmp_path / "store")).get_bytes(obj.uri) == b"x"
