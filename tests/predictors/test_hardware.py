from __future__ import annotations

import pytest
import torch

from predictors import PROFILES, HardwareProfile, detect_profiles, environment, get_profile, resource_name


def test_get_profile_returns_builtin() -> None:
    p = get_profile("cpu-int8")
    assert (p.device, p.precision, p.batch_size, p.threads) == ("cpu", "int8", 1, 1)


def test_get_profile_unknown_lists_known() -> None:
    with pytest.raises(ValueError, match="cpu-fp32"):
        get_profile("tpu-int4")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": "tpu", "precision": "fp32"}, "device"),
        ({"device": "cpu", "precision": "fp16"}, "fp16"),
        ({"device": "cuda", "precision": "int8"}, "int8"),
        ({"device": "cpu", "precision": "fp32", "batch_size": 0}, "batch_size"),
        ({"device": "cpu", "precision": "fp32", "threads": 0}, "threads"),
        ({"device": "cpu", "precision": "fp32", "runtime": "tflite"}, "runtime"),
    ],
)
def test_profile_rejects_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HardwareProfile(name="x", **kwargs)  # type: ignore[arg-type]


def test_detect_profiles_matches_this_machine() -> None:
    names = [p.name for p in detect_profiles()]
    assert names[0] == "cpu-fp32"
    assert ("cpu-int8" in names) == any(
        e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm")
    )
    assert ("cuda-fp16" in names) == torch.cuda.is_available()
    assert all(n in PROFILES for n in names)


def test_resource_name() -> None:
    assert resource_name(get_profile("cpu-fp32")) == "hw:cpu-fp32"
    assert resource_name("cuda-fp16") == "hw:cuda-fp16"


def test_environment_records_device_and_threads() -> None:
    env = environment(get_profile("cpu-fp32"))
    assert env["torch"] == torch.__version__
    assert env["threads"] == 1
    assert isinstance(env["device_name"], str) and env["device_name"]
    assert env["profile"]["name"] == "cpu-fp32"
