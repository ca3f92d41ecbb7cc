from __future__ import annotations

import pytest
import torch
from torch import nn

from kernels import ConvBNAct
from predictors import LatencyStats, get_profile, measure_latency, pinned_threads, prepare_for_profile
from predictors.hardware import int8_engine


def _tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        ConvBNAct(1, 8, 3, stride=2),
        ConvBNAct(8, 8, 3, groups=8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def test_stats_from_known_samples() -> None:
    s = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.median_ms == 3.0 and s.mean_ms == 3.0 and s.min_ms == 1.0 and s.n == 5
    assert s.p10_ms == pytest.approx(1.4) and s.p90_ms == pytest.approx(4.6)
    assert s.spread == pytest.approx((4.6 - 1.4) / 3.0)
    assert set(s.to_dict()) >= {"median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "n", "spread"}


def test_stats_reject_empty() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LatencyStats.from_samples([])


def test_measure_cpu_fp32_restores_threads_and_leaves_model_alone() -> None:
    model = _tiny_net().train()
    threads_before = torch.get_num_threads()
    stats = measure_latency(
        model, input_shape=(1, 16, 16), profile=get_profile("cpu-fp32"), warmup=2, repeats=5
    )
    assert stats.n >= 5 and stats.median_ms > 0
    assert stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert 1 <= stats.attempts <= 3
    assert torch.get_num_threads() == threads_before
    # The caller's model keeps its training form: BatchNorm is folded only in the copy.
    assert model.training and isinstance(model[0].bn, nn.BatchNorm2d)


def test_measure_min_time_extends_repeats() -> None:
    # Three rounds of an identity take microseconds even on a loaded machine (the reference network,
    # slowed 100x by load here once, is left out), so the time floor decides when the loop stops.
    stats = measure_latency(
        nn.Identity(),
        input_shape=(4,),
        profile=get_profile("cpu-fp32"),
        warmup=0,
        repeats=3,
        min_time_s=0.5,
        normalise=False,
    )
    assert stats.n > 3


def test_deploy_form_matches_eval_output() -> None:
    model = _tiny_net().eval()
    deployed, x = prepare_for_profile(model, input_shape=(1, 16, 16), profile=get_profile("cpu-fp32"))
    assert isinstance(deployed.get_submodule("0.bn"), nn.Identity)
    with torch.inference_mode():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(int8_engine() is None, reason="no x86/fbgemm quantized engine")
def test_int8_profile_quantizes_and_stays_close() -> None:
    model = _tiny_net().eval()
    deployed, x = prepare_for_profile(model, input_shape=(1, 16, 16), profile=get_profile("cpu-int8"))
    kinds = {type(m).__module__ for m in deployed.modules()}
    assert any("quantized" in k for k in kinds)
    with torch.inference_mode():
        err = (deployed(x) - model(x)).abs().max().item()
    assert err < 0.1
    stats = measure_latency(
        model, input_shape=(1, 16, 16), profile=get_profile("cpu-int8"), warmup=1, repeats=3
    )
    assert stats.median_ms > 0


def test_rejects_bad_arguments() -> None:
    cpu = get_profile("cpu-fp32")
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(nn.Identity(), input_shape=(4,), profile=cpu, repeats=1)
    with pytest.raises(ValueError, match="batch dimension"):
        measure_latency(nn.Identity(), input_shape=(), profile=cpu)
    with pytest.raises(ValueError, match="max_time_s"):
        measure_latency(nn.Identity(), input_shape=(4,), profile=cpu, max_time_s=-1.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_profile_without_gpu_says_so() -> None:
    with pytest.raises(RuntimeError, match="CUDA"):
        measure_latency(nn.Identity(), input_shape=(4,), profile=get_profile("cuda-fp16"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_measures() -> None:
    stats = measure_latency(_tiny_net(), input_shape=(1, 16, 16), profile=get_profile("cuda-fp16"), repeats=5)
    assert stats.median_ms > 0


def test_pinned_threads_restores_on_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(KeyError), pinned_threads(1):
        assert torch.get_num_threads() == 1
        raise KeyError("boom")
    assert torch.get_num_threads() == before


def test_normalised_samples_cancel_a_machine_that_slows_down() -> None:
    from predictors.measure import _summarise

    # The machine runs at half speed for the second half: raw times double, ratios do not.
    model_ms = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    reference_ms = [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    stats = _summarise(model_ms, reference_ms, baseline_ms=0.5, attempt=1)
    assert stats.median_ms == pytest.approx(1.0) and stats.spread == pytest.approx(0.0)
    assert stats.raw_median_ms == pytest.approx(1.5) and stats.reference_ms == pytest.approx(0.75)
    assert stats.slowdown == pytest.approx(1.5)


def test_normalised_measurement_records_the_reference() -> None:
    stats = measure_latency(_tiny_net(), input_shape=(1, 16, 16), profile=get_profile("cpu-fp32"), repeats=5)
    assert stats.raw_median_ms is not None and stats.raw_median_ms > 0
    assert stats.baseline_ms is not None and stats.reference_ms is not None
    # The baseline is the node's fastest sustained reference time; nothing runs faster than ~it.
    assert stats.slowdown is not None and stats.slowdown > 0.5
    assert LatencyStats.from_dict(stats.to_dict()) == stats
    raw = measure_latency(
        _tiny_net(), input_shape=(1, 16, 16), profile=get_profile("cpu-fp32"), repeats=5, normalise=False
    )
    assert raw.raw_median_ms is None and raw.slowdown is None and raw.median_ms > 0


def test_reference_net_is_fixed() -> None:
    from predictors import build_reference_net

    a, b = build_reference_net(), build_reference_net()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


class _CountingNet(nn.Module):
    """A tiny model that counts its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x)


@pytest.mark.parametrize(("max_time_s", "max_attempts"), [(0.0, 1), (3600.0, 4)])
def test_retries_for_a_calmer_spread_are_capped_by_count_and_by_the_time_budget(
    max_time_s: float, max_attempts: int
) -> None:
    # As on a machine under sustained load: no spread meets the limit, so only the caps end the
    # retries; a spent budget (0 s) keeps the first attempt instead of measuring again and again.
    net = _CountingNet().eval()
    stats = measure_latency(
        net,
        input_shape=(4,),
        profile=get_profile("cpu-fp32"),
        warmup=2,
        repeats=5,
        max_spread=1e-12,
        max_retries=3,
        max_time_s=max_time_s,
        prepared=True,
    )
    assert 1 <= stats.attempts <= max_attempts
    assert net.calls == (2 + 5) * stats.attempts
