"""Subnets, Pareto fronts and artifact downloads, from rows written the way the pipeline writes them."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient

from nas.artifacts import ArtifactStore
from nas.settings import Settings
from nas.store import Database, crud

Auth = tuple[int, dict[str, str]]
STATS = {
    "median_ms": 1.2,
    "mean_ms": 1.3,
    "std_ms": 0.1,
    "p10_ms": 1.1,
    "p90_ms": 1.5,
    "min_ms": 1.0,
    "n": 30,
}


def _arch(resolution: int) -> dict[str, Any]:
    return {"family": "ofa-mbv3", "version": 1, "resolution": resolution, "stages": [], "extra": {}}


def _job_with_front(client: TestClient, db: Database, headers: dict[str, str], spec: dict[str, Any]) -> str:
    job_id: str = client.post("/v1/jobs", json=spec, headers=headers).json()["id"]
    with db.session() as s:
        ids = []
        for i, res in enumerate((20, 24, 28)):
            sub = crud.upsert_subnet(
                s, job_id=job_id, arch_hash=f"a{i}", arch=_arch(res), params=1000 * (i + 1),
                flops=10**6 * (i + 1), source="sample", accuracy_val=0.7 + 0.05 * i, measurement_key=f"m{i}",
            )  # fmt: skip
            crud.put_measurement(
                s, profile="cpu-fp32", arch_hash=f"m{i}", resolution=res, batch=1,
                stats={**STATS, "median_ms": 1.0 + i},
            )  # fmt: skip
            ids.append(sub.id)
        objectives = [{"metric": "accuracy", "goal": "max"}, {"metric": "latency_ms", "hardware": "cpu-fp32"}]
        for rnd, hv in ((0, 0.2), (1, 0.4)):
            crud.save_front(
                s, job_id=job_id, hardware="cpu-fp32", round=rnd, objectives=objectives,
                reference_point=[0.0, 10.0], hypervolume=hv,
                points=[(sid, {"accuracy": 0.7}, {"accuracy": 0.69}) for sid in ids[rnd:]],
            )  # fmt: skip
    return job_id


def test_subnets_carry_latency_and_front_membership(
    client: TestClient, db: Database, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> None:
    job_id = _job_with_front(client, db, alice[1], spec)
    subnets = client.get(f"/v1/jobs/{job_id}/subnets", headers=alice[1]).json()
    assert [s["arch_hash"] for s in subnets] == ["a0", "a1", "a2"]
    assert [s["on_front"] for s in subnets] == [False, True, True]
    assert subnets[2]["latency"] == {
        "cpu-fp32": {"median_ms": 3.0, "p10_ms": 1.1, "p90_ms": 1.5, "n": 30, "node": None}
    }
    assert subnets[0]["arch"]["resolution"] == 20 and subnets[0]["params"] == 1000
    assert client.get(f"/v1/jobs/{job_id}/subnets", headers=bob[1]).status_code == 404


def test_pareto_shape_and_history(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    job_id = _job_with_front(client, db, alice[1], spec)
    front = client.get(f"/v1/jobs/{job_id}/pareto", headers=alice[1]).json()
    assert front["job_id"] == job_id and front["hypervolume"] == 0.4
    assert front["history"] == [{"round": 0, "hypervolume": 0.2}, {"round": 1, "hypervolume": 0.4}]
    assert front["reference_point"] == [0.0, 10.0] and front["objectives"][0]["metric"] == "accuracy"
    assert [p["arch_hash"] for p in front["points"]] == ["a1", "a2"]
    point = front["points"][0]
    assert point["on_front"] and point["predicted"] == {"accuracy": 0.69}
    assert point["latency"]["cpu-fp32"]["median_ms"] == 2.0


def test_each_target_has_its_own_front_beside_the_jobs(
    client: TestClient, db: Database, alice: Auth, spec: dict[str, Any]
) -> None:
    spec["targets"] = [
        {"name": "tight", "constraints": [{"metric": "latency_ms", "hardware": "cpu-fp32", "max": 1.5}]},
        {"name": "loose", "constraints": [{"metric": "latency_ms", "hardware": "cpu-fp32", "max": 9.0}]},
    ]
    job_id = _job_with_front(client, db, alice[1], spec)
    with db.session() as s:
        first = crud.list_subnets(s, job_id=job_id)[0]
        crud.save_front(
            s, job_id=job_id, hardware="cpu-fp32", round=2, objectives=[], reference_point=[0.0, 1.5],
            hypervolume=0.1, points=[(first.id, {"accuracy": 0.7}, None)], final=True, target="tight",
        )  # fmt: skip
    tight = client.get(f"/v1/jobs/{job_id}/pareto", params={"target": "tight"}, headers=alice[1]).json()
    assert tight["target"] == "tight" and [p["arch_hash"] for p in tight["points"]] == ["a0"]
    assert tight["reference_point"] == [0.0, 1.5] and tight["history"] == [{"round": 2, "hypervolume": 0.1}]
    # The job's own front is not replaced by a target's, and lists the targets that have fronts.
    own = client.get(f"/v1/jobs/{job_id}/pareto", headers=alice[1]).json()
    assert own["target"] is None and own["targets"] == ["tight"] and own["hypervolume"] == 0.4
    assert [p["arch_hash"] for p in own["points"]] == ["a1", "a2"]
    res = client.get(f"/v1/jobs/{job_id}/pareto", params={"target": "loose"}, headers=alice[1])
    assert res.status_code == 404 and "target 'loose'" in res.json()["detail"]
    res = client.get(f"/v1/jobs/{job_id}/pareto", params={"target": "nope"}, headers=alice[1])
    assert res.status_code == 404 and "['tight', 'loose']" in res.json()["detail"]


def test_pareto_before_any_front_is_404(client: TestClient, alice: Auth, spec: dict[str, Any]) -> None:
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    res = client.get(f"/v1/jobs/{job_id}/pareto", headers=alice[1])
    assert res.status_code == 404 and "no Pareto front yet" in res.json()["detail"]


def test_artifact_download_is_owner_scoped(
    client: TestClient, db: Database, settings: Settings, alice: Auth, bob: Auth, spec: dict[str, Any]
) -> None:
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    data = bytes(range(256)) * 50
    obj = ArtifactStore(settings.artifact_root).put_bytes(f"jobs/{job_id}/bundles/x.zip", data)
    with db.session() as s:
        art = crud.add_artifact(
            s, job_id=job_id, kind="bundle", uri=obj.uri, sha256=obj.sha256, size_bytes=obj.size_bytes
        )
        missing = crud.add_artifact(
            s, job_id=job_id, kind="bundle", uri=obj.uri + ".gone", sha256="", size_bytes=0
        )
    res = client.get(f"/v1/artifacts/{art.id}", headers=alice[1])
    assert res.status_code == 200 and res.content == data
    assert res.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert res.headers["content-type"] == "application/zip"
    assert client.get(f"/v1/artifacts/{art.id}", headers=bob[1]).status_code == 404
    assert client.get(f"/v1/artifacts/{missing.id}", headers=alice[1]).status_code == 410


def test_a_corrupt_artifact_is_refused_not_served(
    client: TestClient, db: Database, settings: Settings, alice: Auth, spec: dict[str, Any]
) -> None:
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    store = ArtifactStore(settings.artifact_root)
    data = bytes(range(256)) * 50
    obj = store.put_bytes(f"jobs/{job_id}/bundles/y.zip", data)
    with db.session() as s:
        art = crud.add_artifact(
            s, job_id=job_id, kind="bundle", uri=obj.uri, sha256=obj.sha256, size_bytes=obj.size_bytes
        )
    assert client.get(f"/v1/artifacts/{art.id}", headers=alice[1]).content == data
    # One flipped byte on disk, same size: the recorded sha256 no longer matches.
    with open(obj.uri, "r+b") as f:  # a local root: the URI is the file's path
        f.seek(1000)
        f.write(bytes([data[1000] ^ 0xFF]))
    res = client.get(f"/v1/artifacts/{art.id}", headers=alice[1])
    assert res.status_code == 409, res.text
    detail = res.json()["detail"]
    assert "corrupt" in detail and "sha256" in detail and "Export the subnet again" in detail


def test_export_of_an_unknown_subnet_is_404(client: TestClient, alice: Auth, spec: dict[str, Any]) -> None:
    job_id = client.post("/v1/jobs", json=spec, headers=alice[1]).json()["id"]
    res = client.post(f"/v1/jobs/{job_id}/subnets/999/export", headers=alice[1])
    assert res.status_code == 404 and "subnet 999" in res.json()["detail"]
