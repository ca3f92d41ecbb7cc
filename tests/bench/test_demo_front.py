"""The demo-front benchmark's lever configurations: equal compute, cumulative levers, a FLOPs-spanning set."""

from __future__ import annotations

import yaml

from bench.demo_front import DEMO_SPEC, LEVERS, job_targets, lever_configs, lever_spec, subnet_set
from supernets import make_space


def test_every_lever_sees_the_same_images_and_today_is_the_issues_demo() -> None:
    demo = yaml.safe_load(DEMO_SPEC.read_text())
    configs = lever_configs([name for name, _ in LEVERS])
    assert list(configs) == [name for name, _ in LEVERS]
    today = lever_spec(demo, configs["today"], 40_000, seed=0)
    assert (today.dataset.limit, today.training.epochs) == (8000, 5)  # the demo as issue 13 measured it
    assert (today.training.anchors, today.training.sampler, today.training.num_random_subnets) == (
        "sandwich",
        "uniform",
        2,
    )
    passes = []
    for lever in configs.values():
        spec = lever_spec(demo, lever, 10_000, seed=1)
        assert spec.dataset.limit is not None and spec.seed == 1
        assert spec.dataset.limit * spec.training.epochs == 10_000
        # subnet forward-backward passes per step: the teacher, the anchored students, the sampled
        students = 1 if spec.training.anchors == "sandwich" else 0
        passes.append(1 + students + spec.training.num_random_subnets)
    assert set(passes) == {4}
    # cumulative: the last lever keeps the sampling of the second
    assert configs["+space"]["training"]["sampler"] == "flops-stratified"


def test_the_subnet_set_spans_the_flops_range() -> None:
    demo = yaml.safe_load(DEMO_SPEC.read_text())
    space = make_space(demo["search_space"], in_channels=1, num_classes=10, image_size=28)
    archs = subnet_set(space, 10)
    flops = [space.total_cost(a).flops for a in archs]
    assert archs[0] == space.smallest() and archs[-1] == space.largest()
    assert flops == sorted(flops) and len({a.arch_hash for a in archs}) == len(archs) == 10


def _job(seed: int, **values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "seed": seed,
        "status": "succeeded",
        "front_points": 6,
        "front_latency_span": 2.5,
        "middle_above_smallest_val": 0.9,
        "cv_kendall_tau": 0.4,
        "wall_s": 500.0,
    }
    return base | values


def test_a_demo_target_is_met_only_when_every_seeds_run_meets_it() -> None:
    all_good = job_targets([_job(0), _job(1), _job(2)])
    assert all(t["met"] for t in all_good.values())
    assert all_good["demo front points"]["value"] == [6, 6, 6]
    one_short = job_targets([_job(0), _job(1, front_points=4), _job(2)])
    assert not one_short["demo front points"]["met"]
    assert one_short["demo front latency span"]["met"]
    failed = job_targets([_job(0), _job(1, status="failed")])
    assert not any(t["met"] for t in failed.values())
    assert not any(t["met"] for t in job_targets([]).values())
    assert not job_targets([_job(0, cv_kendall_tau=None)])["demo accuracy predictor CV Kendall tau"]["met"]
