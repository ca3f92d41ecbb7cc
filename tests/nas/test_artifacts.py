from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from nas.artifacts import ArtifactCorruptError, ArtifactMissingError, ArtifactStore


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


def test_reads_given_the_recorded_sha256_verify_it(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    obj = store.put_torch("jobs/j/ckpt.pt", {"w": list(range(100))})
    assert store.get_torch(obj.uri, sha256=obj.sha256) == {"w": list(range(100))}
    store.verify(obj.uri, obj.sha256)
    path = Path(obj.uri)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorruptError, match="corrupt: its sha256 is"):
        store.get_torch(obj.uri, sha256=obj.sha256)
    with pytest.raises(ArtifactCorruptError):
        store.verify(obj.uri, obj.sha256)
    assert store.get_bytes(obj.uri) == bytes(data)  # without a checksum, bytes are bytes
    path.unlink()
    with pytest.raises(ArtifactMissingError, match="missing"):
        store.get_bytes(obj.uri, sha256=obj.sha256)
    with pytest.raises(ArtifactMissingError):
        store.verify(obj.uri, obj.sha256)


def test_local_writes_fsync_the_file_and_its_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    store = ArtifactStore(str(tmp_path / "root"))
    monkeypatch.setattr(os, "fsync", recording_fsync)
    obj = store.put_bytes("jobs/j1/x.bin", b"durable")
    root = str(tmp_path / "root")
    # The temporary file's data (before its rename), the rename in its folder, the new folders in theirs.
    assert any(p.startswith(f"{root}/jobs/j1/.tmp-") for p in synced)
    assert {f"{root}/jobs/j1", f"{root}/jobs", root} <= set(synced)
    assert synced[-1] == f"{root}/jobs/j1"  # the rename is made durable last
    assert Path(obj.uri).read_bytes() == b"durable"


def test_a_failed_write_leaves_the_old_object_and_no_temp_file(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    obj = store.put_bytes("k/x.bin", b"old")
    with pytest.raises(TypeError):
        store.put_bytes("k/x.bin", 12345)  # type: ignore[arg-type]
    assert store.get_bytes(obj.uri, sha256=obj.sha256) == b"old"
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["x.bin"]
