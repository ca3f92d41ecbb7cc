"""A job with ``search_space.bits``: QAT, fake-quantized accuracy, real int8 latency, size_bytes objective."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from nas.pipeline import run_job
from nas.store import crud
from predictors import LatencyStats
from predictors.measure import is_quantized
from supernets import Arch, make_space
from supernets.bits import size_bytes
from tests.nas.conftest import make_job_db
from tests.nas.test_pipeline import SPEC, LocalMeasurer


class IntegerCheckingMeasurer(LocalMeasurer):
    """Records whether each model timed on cpu-int8 already runs integer kernels."""

    def __init__(self) -> None:
        super().__init__()
        self.quantized: list[bool] = []

    def __call__(self, items: list[tuple[nn.Module, tuple[int, ...]]], profile: str) -> list[LatencyStats]:
        self.quantized += [is_quantized(model) for model, _ in items]
        return super().__call__(items, profile)


@pytest.mark.slow
def test_job_searches_bits_and_fronts_size_bytes(tmp_path: Path, fashion_mnist_dir: Path) -> None:
    space_spec = {**SPEC["search_space"], "bits": [8, 32]}  # type: ignore[dict-item]
    spec = {
        **SPEC,
        "search_space": space_spec,
        "hardware": ["cpu-int8"],
        "objectives": [
            {"metric": "accuracy", "goal": "max"},
            {"metric": "latency_ms", "hardware": "cpu-int8", "goal": "min"},
            {"metric": "size_bytes", "goal": "min"},
        ],
        "search": {"algorithm": "nsga2", "measure_budget": 6, "rounds": 1, "population": 8, "generations": 1},
    }
    jobs = make_job_db(tmp_path, fashion_mnist_dir)
    settings, db, job_id = jobs.settings, jobs.db, jobs.create_job(spec, name="q")
    measurer = IntegerCheckingMeasurer()
    assert run_job(job_id, settings=settings, measure_latency=measurer) == "succeeded"
    space = make_space(space_spec, in_channels=1, num_classes=10, image_size=28)
    with db.session() as s:
        subnets = crud.list_subnets(s, job_id=job_id)
        archs = [Arch.from_dict(sub.arch) for sub in subnets]
        assert archs and all(st.bits in (8, 32) for a in archs for st in a.stages)
        assert any(st.bits == 8 for a in archs for st in a.stages)
        front = crud.latest_front(s, job_id=job_id, final_only=True)
        assert front is not None
        points = crud.front_points(s, front_id=front.id)
        assert points
    sizes = {size_bytes(space, a) for a in archs}
    assert len(sizes) > 1
    # subnets with 8-bit stages are timed as their real int8 models (the all-float ones are not)
    assert any(measurer.quantized) and len(measurer.quantized) == measurer.count
