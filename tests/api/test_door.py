"""Hostile and malformed submissions: each a 4xx that says what to fix, with nothing stored or scheduled."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from nas.settings import Limits, Settings
from nas.store import Database, Job, crud
from tests.api.conftest import SPEC, RecordingScheduler

Edit = Callable[[dict[str, Any], Path], Any]


def _set(path: str, value: Any) -> Edit:
    """An edit setting ``path`` (dots; ``-key`` deletes) in the spec to ``value``."""

    def edit(spec: dict[str, Any], root: Path) -> dict[str, Any]:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if last.startswith("-"):
            del node[last[1:]]
        else:
            node[last] = value(root) if callable(value) else value
        return spec

    return edit


def _npz(uri: str | Callable[[Path], str]) -> Edit:
    def edit(spec: dict[str, Any], root: Path) -> dict[str, Any]:
        spec["dataset"] = {"kind": "npz", "uri": uri(root) if callable(uri) else uri}
        spec["search_space"].pop("resolutions")
        return spec

    return edit


def _many_targets(n: int) -> Edit:
    def edit(spec: dict[str, Any], root: Path) -> dict[str, Any]:
        spec["targets"] = [
            {"name": f"t{i}", "constraints": [{"metric": "params", "max": 1e6}]} for i in range(n)
        ]
        return spec

    return edit


def _literal_in(path: str, literal: str) -> Edit:
    """An edit writing ``literal`` (raw JSON, e.g. ``NaN``) at ``path``: the body is sent as bytes."""

    def edit(spec: dict[str, Any], root: Path) -> bytes:
        _set(path, "__X__")(spec, root)
        return json.dumps(spec).replace('"__X__"', literal).encode()

    return edit


# (case id, edit of the valid spec, expected status, a fragment the message must contain)
CASES: list[tuple[str, Edit, int, str]] = [
    ("epochs-1e9", _set("training.epochs", 10**9), 422, "epochs"),
    ("epochs-above-limit", _set("training.epochs", 5000), 422, "NAS_LIMITS__EPOCHS"),
    ("epochs-0", _set("training.epochs", 0), 422, "epochs"),
    ("epochs-text", _set("training.epochs", "ten"), 422, "epochs"),
    ("batch-huge", _set("training.batch_size", 10**7), 422, "batch_size"),
    ("lr-negative", _set("training.lr", -1), 422, "lr"),
    ("momentum-1", _set("training.momentum", 1.0), 422, "momentum"),
    ("warmup-too-long", _set("training.warmup_epochs", 1), 422, "warmup_epochs"),
    ("kernel-4", _set("search_space.kernel_sizes", [4]), 422, "kernel_sizes"),
    ("kernel-empty", _set("search_space.kernel_sizes", []), 422, "kernel_sizes"),
    ("depth-0", _set("search_space.depths", [0]), 422, "depths"),
    ("kernel-1e9", _set("search_space.kernel_sizes", [10**9 + 1]), 422, "kernel_sizes"),
    ("width-1e300", _set("search_space.width_mults", [1e300]), 422, "width_mults"),
    ("kernel-list-long", _set("search_space.kernel_sizes", list(range(1, 200, 2))), 422, "kernel_sizes"),
    ("stages-many", _set("search_space.stages", [{"channels": 8}] * 100), 422, "stages"),
    ("space-unknown-key", _set("search_space.kernel_size", [3]), 422, "kernel_size"),
    ("family-unknown", _set("search_space.family", "resnet-9000"), 422, "family"),
    ("builtin-unknown", _set("dataset.name", "imagenet"), 422, "unknown built-in"),
    ("builtin-no-name", _set("dataset.-name", None), 422, "dataset.name"),
    ("dataset-limit-0", _set("dataset.limit", 0), 422, "limit"),
    ("dataset-limit-huge", _set("dataset.limit", 2**40), 422, "limit"),
    ("population-1e9", _set("search.population", 10**9), 422, "population"),
    ("population-above-limit", _set("search.population", 10**5), 422, "NAS_LIMITS__POPULATION"),
    ("generations-huge", _set("search.generations", 10**6), 422, "generations"),
    ("rounds-huge", _set("search.rounds", 5000), 422, "rounds"),
    ("budget-huge", _set("search.measure_budget", 10**9), 422, "measure_budget"),
    ("initial-over-budget", _set("search.initial_measurements", 10**6), 422, "initial_measurements"),
    ("initial-1", _set("search.initial_measurements", 1), 422, "initial_measurements"),
    ("targets-2000", _many_targets(2000), 422, "targets"),
    ("targets-above-limit", _many_targets(40), 422, "NAS_LIMITS__TARGETS"),
    ("constraints-many", _set("constraints", [{"metric": "params", "max": 1.0}] * 40), 422, "constraints"),
    ("hardware-unknown", _set("hardware", ["tpu-v9"]), 422, "hardware"),
    ("seed-2**63", _set("seed", 2**63), 422, "seed"),
    ("seed-1e30", _set("seed", 10**30), 422, "seed"),
    ("seed-negative", _set("seed", -1), 422, "seed"),
    ("name-empty", _set("name", ""), 422, "name"),
    ("name-long", _set("name", "x" * 300), 422, "name"),
    ("unknown-top-key", _set("owner", "root"), 422, "owner"),
    ("unknown-training-key", _set("training.epoch", 3), 422, "epoch"),
    ("objectives-string", _set("objectives", "accuracy"), 422, "objectives"),
    ("file-etc-passwd", _npz("file:///etc/passwd"), 422, "outside the allowed data roots"),
    ("dev-zero-url", _npz("file:///dev/zero"), 422, "outside the allowed data roots"),
    ("dev-zero-path", _npz("/dev/zero"), 422, "outside the allowed data roots"),
    ("dotdot-etc", _npz("../" * 12 + "etc/passwd"), 422, "outside the allowed data roots"),
    ("missing-file", _npz(lambda r: str(r / "data" / "nope.npz")), 422, "does not exist"),
    ("memory-url", _npz("memory://x.npz"), 422, "['memory']"),
    ("simplecache-http", _npz("simplecache::http://example.com/x.npz"), 422, "simplecache"),
    ("metadata-ip", _npz("http://169.254.169.254/latest/meta-data/x.npz"), 422, "['http']"),
    ("s3-url", _npz("s3://bucket/x.npz"), 422, "NAS_DATASET_SCHEMES"),
    ("symlink-out", _npz(lambda r: str(r / "data" / "passwd.npz")), 422, "outside the allowed data roots"),
    ("fifo-in-root", _npz(lambda r: str(r / "data" / "fifo.npz")), 422, "not a regular file"),
    ("outside-root", _npz(lambda r: str(r / "outside.npz")), 422, "outside the allowed data roots"),
    ("too-large", _npz(lambda r: str(r / "data" / "big.npz")), 422, "NAS_LIMITS__DATASET_BYTES"),
    ("not-a-zip", _npz(lambda r: str(r / "data" / "garbage.npz")), 422, "cannot read npz"),
    ("float-images", _npz(lambda r: str(r / "data" / "float.npz")), 422, "uint8"),
    ("image-folder", _set("dataset", {"kind": "image-folder", "uri": "folder"}), 422, "image-folder"),
    ("nan-lr", _literal_in("training.lr", "NaN"), 422, "NaN"),
    ("inf-lr", _literal_in("training.lr", "Infinity"), 422, "Infinity"),
    ("overflow-lr", _literal_in("training.lr", "1e999"), 422, "finite"),
    ("neg-inf-constraint", _literal_in("constraints.0.max", "-Infinity"), 422, "Infinity"),
    ("nan-space-option", _literal_in("search_space.width_mults", "[NaN]"), 422, "NaN"),
    ("nul-in-name", _set("name", "job\x00"), 422, "NUL"),
    ("nul-in-uri", _npz("good\x00.npz"), 422, "NUL"),
    ("body-huge", _set("name", "x" * (2 << 20)), 413, "NAS_LIMITS__BODY_BYTES"),
    ("body-not-json", lambda spec, root: b"{not json", 422, "JSON"),
    ("body-array", lambda spec, root: b"[1, 2]", 422, "dict"),
]


def _sources(root: Path) -> None:
    """Dataset files in and around the upload root, good and hostile."""
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.savez(data / "good.npz", x=rng.integers(0, 255, (40, 16, 16), dtype=np.uint8), y=np.arange(40) % 4)
    np.savez(data / "float.npz", x=np.zeros((4, 16, 16), dtype=np.float32), y=np.zeros(4, dtype=np.int64))
    np.savez(root / "outside.npz", x=np.zeros((4, 16, 16), dtype=np.uint8), y=np.zeros(4, dtype=np.int64))
    (data / "garbage.npz").write_bytes(b"not a zip file")
    with (data / "big.npz").open("wb") as f:
        f.truncate(10 << 20)
    (data / "passwd.npz").symlink_to("/etc/passwd")
    os.mkfifo(data / "fifo.npz")
    (data / "folder").mkdir()


@pytest.fixture
def door(tmp_path: Path) -> Iterator[tuple[TestClient, Database, RecordingScheduler, dict[str, str]]]:
    _sources(tmp_path)
    settings = Settings(
        scheduler="none",
        database_url=f"sqlite:///{tmp_path / 'nas.db'}",
        artifact_root=str(tmp_path / "artifacts"),
        upload_dir=tmp_path / "data",
        limits=Limits(dataset_bytes=1 << 20),
    )
    recorder = RecordingScheduler()
    with TestClient(create_app(settings, scheduler=recorder)) as client:
        db = Database(settings.database_url)
        with db.session() as s:
            user = crud.get_or_create_user(s, name="mallory")
            token = crud.create_token(s, user_id=user.id)
        yield client, db, recorder, {"Authorization": f"Bearer {token}"}
        db.dispose()


def _jobs(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def _message(response: Any) -> str:
    detail = response.json()["detail"]
    if isinstance(detail, list):
        return " | ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


@pytest.mark.parametrize(("case", "edit", "code", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_hostile_submission_is_refused_with_nothing_stored(
    door: tuple[TestClient, Database, RecordingScheduler, dict[str, str]],
    tmp_path: Path,
    case: str,
    edit: Edit,
    code: int,
    fragment: str,
) -> None:
    client, db, recorder, headers = door
    body = edit(copy.deepcopy(SPEC), tmp_path)
    if isinstance(body, bytes):
        r = client.post("/v1/jobs", content=body, headers={**headers, "Content-Type": "application/json"})
    else:
        r = client.post("/v1/jobs", json=body, headers=headers)
    assert r.status_code == code, r.text[:500]
    assert fragment in _message(r), _message(r)[:500]
    assert _jobs(db) == 0
    assert recorder.submitted == []


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_a_good_npz_inside_the_upload_root_is_accepted(
    door: tuple[TestClient, Database, RecordingScheduler, dict[str, str]], tmp_path: Path
) -> None:
    """The control: the checks refuse the hostile sources above, not every source."""
    client, db, recorder, headers = door
    spec = _npz(lambda r: str(r / "data" / "good.npz"))(copy.deepcopy(SPEC), tmp_path)
    r = client.post("/v1/jobs", json=spec, headers=headers)
    assert r.status_code == 201, r.text
    assert _jobs(db) == 1
    assert recorder.submitted == [r.json()["id"]]


def test_the_workers_loader_applies_the_same_source_check(tmp_path: Path) -> None:
    """A spec stored before these checks (or edited in the database) still cannot read outside the roots."""
    from nas.data import DatasetError, load_dataset
    from nas.sources import SourcePolicy

    _sources(tmp_path)
    policy = SourcePolicy.local(tmp_path / "data")
    for uri in ("/etc/passwd", "memory://x.npz", str(tmp_path / "data" / "passwd.npz"), "/dev/zero"):
        with pytest.raises(DatasetError, match="allow"):
            load_dataset({"kind": "npz", "uri": uri}, data_dir=tmp_path, seed=0, sources=policy)
    good = load_dataset(
        {"kind": "npz", "uri": "good.npz"}, data_dir=tmp_path, seed=0, sources=policy
    )  # relative: against the first root
    assert good.image_size == 16 and good.num_classes == 4


JSON = {"Accept": "application/json"}
NOT_FOUND_OR_INVALID = (404, 422)
# Row ids are 32-bit columns: PostgreSQL errors on a larger one, so it must never reach the query.
ID_COLUMN_MAX = "2147483647"

# (method, path, extra headers, accepted statuses, a fragment the message must contain or "")
ROUTE_CASES: list[tuple[str, str, dict[str, str], tuple[int, ...], str]] = [
    ("GET", "/v1/jobs/" + "a" * 100, {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/jobs?offset=" + str(10**30), {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/jobs?limit=" + str(10**30), {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/jobs/x/events?after=" + str(2**64), JSON, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/jobs/x/events", JSON | {"Last-Event-ID": str(2**64)}, NOT_FOUND_OR_INVALID, ""),
    ("POST", f"/v1/jobs/x/subnets/{2**70}/export", {}, NOT_FOUND_OR_INVALID, ""),
    ("POST", "/v1/jobs/x/subnets/-1/export", {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/artifacts/" + "z" * 500, {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/predictors?job_id=" + "j" * 500, {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/jobs/x/pareto?target=" + "t" * 500, {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/jobs/a%00b", {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", "/v1/predictors?kind=%00", {}, NOT_FOUND_OR_INVALID, ""),
    ("GET", f"/v1/jobs/x/events?after={2**31}", JSON, (422,), ID_COLUMN_MAX),
    ("GET", "/v1/jobs/x/events", JSON | {"Last-Event-ID": str(2**31)}, (422,), ID_COLUMN_MAX),
    ("POST", f"/v1/jobs/x/subnets/{2**31}/export", {}, (422,), ID_COLUMN_MAX),
]


@pytest.mark.parametrize(("method", "path", "extra", "codes", "fragment"), ROUTE_CASES)
def test_huge_route_values_are_a_4xx_before_the_database(
    door: tuple[TestClient, Database, RecordingScheduler, dict[str, str]],
    method: str,
    path: str,
    extra: dict[str, str],
    codes: tuple[int, ...],
    fragment: str,
) -> None:
    client, _db, _, headers = door
    r = client.request(method, path, headers={**headers, **extra})
    assert r.status_code in codes, r.text[:300]
    assert _message(r) and fragment in _message(r), _message(r)[:300]
