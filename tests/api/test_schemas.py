"""The job spec's validation: good specs pass, nonsense is rejected with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from nas.schemas import JobSpec, JobStatus
from supernets.training import TrainConfig


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(spec)
    return str(info.value)


def test_valid_spec_fills_defaults_and_passes_family_options_through(spec: dict[str, Any]) -> None:
    job = JobSpec.model_validate(spec)
    assert job.training.momentum == 0.9 and job.search.engine == "optuna"
    assert job.search_space.options()["kernel_sizes"] == [3, 5]
    assert job.search_space.model_dump()["family"] == "ofa-mbv3"
    assert [o.key for o in job.objectives] == ["accuracy", "latency_ms@cpu-fp32"]
    assert JobSpec.model_validate(job.model_dump(mode="json")) == job


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("training", "epochs"), 0, "training.epochs"),
        (("training", "batch_size"), -1, "training.batch_size"),
        (("training", "schedule"), "yolo", "training.schedule"),
        (("search", "algorithm"), "cmaes", "search.algorithm"),
        (("dataset", "kind"), "csv", "dataset.kind"),
        (("dataset", "limit"), 0, "dataset.limit"),
        (("hardware",), ["tpu-v9"], "unknown hardware profile"),
        (("training", "epoch"), 3, "training.epoch"),
    ],
)
def test_bad_field_is_named(spec: dict[str, Any], path: tuple[str, ...], value: Any, expected: str) -> None:
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert expected in _error(spec)


def test_latency_needs_a_listed_hardware_profile(spec: dict[str, Any]) -> None:
    del spec["objectives"][1]["hardware"]
    assert "objectives[1].hardware is required" in _error(spec)
    spec["objectives"][1]["hardware"] = "cpu-int8"
    assert "not listed in hardware" in _error(spec)


def test_constraints_are_checked_like_objectives(spec: dict[str, Any]) -> None:
    spec["constraints"] = [{"metric": "params", "hardware": "cpu-fp32", "max": 10}]
    assert "constraints[0].hardware must be omitted" in _error(spec)
    spec["constraints"] = [{"metric": "params"}]
    assert "needs 'max' or 'min'" in _error(spec)


def test_a_single_objective_is_rejected_with_the_reason(spec: dict[str, Any]) -> None:
    spec["objectives"] = spec["objectives"][:1]
    assert "at least 2" in _error(spec)
    spec["objectives"] = [{"metric": "accuracy", "goal": "max"}, {"metric": "accuracy", "goal": "max"}]
    assert "repeat a metric" in _error(spec)


def test_dataset_source_and_engine_combinations(spec: dict[str, Any]) -> None:
    spec["dataset"] = {"kind": "npz"}
    assert "dataset.uri is required" in _error(spec)
    spec["dataset"] = {"kind": "builtin", "name": "fashion-mnist"}
    spec["search"] = {"algorithm": "tpe", "engine": "vectorised"}
    assert "search.engine 'vectorised'" in _error(spec)


def test_job_status_final_states() -> None:
    assert [s.value for s in JobStatus if s.is_final] == ["succeeded", "failed", "cancelled"]
    assert JobStatus("queued") is JobStatus.queued


def test_targets_are_validated_like_constraints(spec: dict[str, Any]) -> None:
    tight = {"metric": "latency_ms", "hardware": "cpu-fp32", "max": 1.0}
    spec["targets"] = [{"name": "1ms", "constraints": [tight]}, {"name": "2ms", "constraints": [tight]}]
    assert [t.name for t in JobSpec.model_validate(spec).targets] == ["1ms", "2ms"]
    spec["targets"][1]["name"] = "1ms"
    assert "targets repeat a name" in _error(spec)
    spec["targets"] = [{"name": "int8", "constraints": [{**tight, "hardware": "cpu-int8"}]}]
    assert "targets[0].constraints[0].hardware 'cpu-int8' is not listed" in _error(spec)
    spec["targets"] = [{"name": "none", "constraints": []}]
    assert "targets.0.constraints" in _error(spec)
    spec["targets"] = [{"name": "a b", "constraints": [tight]}]
    assert "targets.0.name" in _error(spec)


# One value per TrainConfig knob, each valid and unlike its default.
KNOB_VALUES: dict[str, Any] = {
    "epochs": 7,
    "batch_size": 64,
    "lr": 0.05,
    "momentum": 0.5,
    "weight_decay": 1e-4,
    "warmup_epochs": 1,
    "label_smoothing": 0.2,
    "num_random_subnets": 3,
    "distill": False,
    "distill_weight": 0.5,
    "label_weight": 0.25,
    "grad_clip": 5.0,
    "ps_phase_fractions": [0.1, 0.2, 0.3, 0.4],
    "ps_phase_lr_scales": [1.0, 0.5, 0.5, 0.25],
    "deps_full_fraction": 0.3,
    "deps_ramp_fraction": 0.2,
    "channels_last": False,
    "anchors": "largest",
    "sampler": "flops-stratified",
}


def test_every_training_knob_set_in_a_spec_reaches_the_trainer(spec: dict[str, Any]) -> None:
    defaults = TrainConfig().to_dict()
    assert set(KNOB_VALUES) == set(defaults)  # a new TrainConfig knob needs a value here (and is settable)
    for name, value in KNOB_VALUES.items():
        job = JobSpec.model_validate({**spec, "training": {name: value}})
        config = job.training.train_config()
        got = getattr(config, name)
        assert got == (tuple(value) if isinstance(value, list) else value), name
        assert got != defaults[name], name
        # The knobs not set keep TrainConfig's default, the one place defaults live.
        left = {k: v for k, v in config.to_dict().items() if k != name}
        assert left == {k: v for k, v in defaults.items() if k in left}, name


def test_a_spec_without_training_knobs_stores_the_trainers_defaults(spec: dict[str, Any]) -> None:
    job = JobSpec.model_validate({**spec, "training": {}})
    stored = job.model_dump(mode="json")["training"]
    defaults = TrainConfig().to_dict()
    assert {k: stored[k] for k in defaults} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()
    }
    assert job.training.train_config() == TrainConfig()
    assert "epochs" not in job.training.model_fields_set  # a default, not the user's choice


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("deps_full_fraction", 1.5, "deps_full_fraction"),
        ("deps_ramp_fraction", 0.0, "deps_ramp_fraction"),
        ("ps_phase_fractions", [0.5, 0.5, 0.5, 0.5], "training.ps_phase_fractions"),
        ("ps_phase_fractions", [0.5, 0.5], "ps_phase_fractions"),
        ("ps_phase_lr_scales", [1.0, 0.0, 0.3, 0.3], "ps_phase_lr_scales"),
        ("distill", "maybe", "distill"),
        ("schedule", "no-such-schedule", "training.schedule"),
        ("sampler", "no-such-sampler", "training.sampler"),
        ("anchors", "no-such-anchors", "training.anchors"),
    ],
)
def test_an_out_of_range_training_knob_is_named(
    spec: dict[str, Any], name: str, value: Any, expected: str
) -> None:
    assert expected in _error({**spec, "training": {**spec["training"], name: value}})
