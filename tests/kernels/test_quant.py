"""LSQ fake quantization (kernels/quant.py) against its reference formulas at every bit-width."""

from __future__ import annotations

import math

import pytest
import torch

from kernels.quant import LsqQuantizer, lsq_quantize, qrange


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize(("weight", "unsigned"), [(True, False), (False, False), (False, True)])
def test_forward_and_gradients_match_the_lsq_formulas(bits: int, weight: bool, unsigned: bool) -> None:
    qmin, qmax = qrange(bits, weight=weight, unsigned=unsigned)
    if unsigned:
        assert (qmin, qmax) == (0, 2**bits - 1)
    else:
        assert (qmin, qmax) == (
            (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)
            if weight
            else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        )
    gen = torch.Generator().manual_seed(bits)
    x = torch.randn(512, generator=gen) * 3
    x = (x.abs() * 8 if unsigned else x).requires_grad_(True)  # unsigned: ReLU-like, some above qmax
    scale = torch.tensor(0.07).requires_grad_(True)
    g = 1.0 / math.sqrt(x.numel() * qmax)
    upstream = torch.randn(512, generator=gen)
    out = lsq_quantize(x, scale, qmin, qmax, g)
    (out * upstream).sum().backward()

    v = x.detach() / 0.07
    ref = torch.clamp(torch.round(v), qmin, qmax) * 0.07
    torch.testing.assert_close(out.detach(), ref)
    assert set(torch.round(out.detach() / 0.07).tolist()) <= set(range(qmin, qmax + 1))
    inside = (v >= qmin) & (v <= qmax)
    assert inside.any() and (~inside).any()  # both branches exercised
    torch.testing.assert_close(x.grad, upstream * inside.float())
    ds = torch.where(v < qmin, float(qmin), torch.where(v > qmax, float(qmax), torch.round(v) - v))
    torch.testing.assert_close(scale.grad, (upstream * ds).sum() * g)


def test_quantizer_keeps_one_learned_step_per_bit_width_and_passes_float() -> None:
    q = LsqQuantizer((4, 8, 32), weight=True)
    w = torch.randn(16, 8, 3, 3)
    assert q(w, 32) is w and q(w, None) is w
    q8, q4 = q(w, 8), q(w, 4)
    s8, s4 = float(q.scale(8).detach()), float(q.scale(4).detach())
    assert s8 == pytest.approx(2 * float(w.abs().mean()) / math.sqrt(127), rel=1e-5)
    assert s4 == pytest.approx(2 * float(w.abs().mean()) / math.sqrt(7), rel=1e-5)
    assert len(torch.unique(q4)) <= 15 and len(torch.unique(q8)) > 15
    assert (q8 - w).abs().mean() < (q4 - w).abs().mean()
    q(w * 10, 8)  # initialised once: later tensors do not reset the step
    assert float(q.scale(8).detach()) == s8
    with pytest.raises(ValueError, match=r"no step size for 6 bits; this quantizer has \[4, 8\]"):
        q(w, 6)


def test_scale_gradient_reaches_the_parameter() -> None:
    q = LsqQuantizer((4,), weight=False)
    x = torch.randn(2, 3, 5, 5)
    q(x, 4).pow(2).sum().backward()
    assert q.scales.grad is not None and float(q.scales.grad.abs().sum()) > 0


def test_weights_are_never_unsigned() -> None:
    with pytest.raises(ValueError, match="weights are always signed"):
        qrange(8, weight=True, unsigned=True)


def test_activation_range_is_unsigned_only_where_the_first_tensor_is_non_negative() -> None:
    relu = torch.relu(torch.randn(4, 8, 6, 6, generator=torch.Generator().manual_seed(0)))
    q = LsqQuantizer((4, 8, 32), weight=False)
    out = q(relu, 4)
    assert q.is_unsigned(4) and q.qrange(4) == (0, 15)
    assert q.scale(4).item() == pytest.approx(2 * float(relu.abs().mean()) / math.sqrt(15), rel=1e-5)
    levels = torch.unique(torch.round(out.detach() / q.scale(4).detach()))
    assert levels.min() == 0 and levels.max() == 15  # all 16 levels of 4 bits, none wasted below zero
    signed = LsqQuantizer((4,), weight=False)
    signed(relu - 0.01, 4)
    assert not signed.is_unsigned(4) and signed.qrange(4) == (-8, 7)
    weights = LsqQuantizer((4,), weight=True)
    weights(relu, 4)
    assert not weights.is_unsigned(4) and weights.qrange(4) == (-7, 7)


def test_state_dict_from_before_unsigned_ranges_loads_as_signed() -> None:
    q = LsqQuantizer((4, 8, 32), weight=False)
    q(torch.rand(2, 3, 4, 4), 8)  # non-negative: unsigned at 8 bits
    old = {k: v for k, v in q.state_dict().items() if k != "unsigned"}
    fresh = LsqQuantizer((4, 8, 32), weight=False)
    fresh.load_state_dict(old)
    assert not fresh.is_unsigned(8) and bool(fresh.initialised[1])
    fresh.load_state_dict(q.state_dict())
    assert fresh.is_unsigned(8)


@pytest.mark.parametrize("unsigned", [False, True])
def test_evaluation_without_gradients_computes_what_training_computes(unsigned: bool) -> None:
    qmin, qmax = qrange(4, weight=False, unsigned=unsigned)
    x = torch.randn(4, 8, 6, 6, generator=torch.Generator().manual_seed(3)) * 2
    scale = torch.tensor(0.3, requires_grad=True)
    trained = lsq_quantize(x.requires_grad_(True), scale, qmin, qmax, 0.01)
    with torch.no_grad():
        evaluated = lsq_quantize(x, scale, qmin, qmax, 0.01)
    with torch.inference_mode():
        inferred = lsq_quantize(x.detach(), scale.detach(), qmin, qmax, 0.01)
    assert trained.requires_grad and not evaluated.requires_grad
    torch.testing.assert_close(evaluated, trained.detach())
    torch.testing.assert_close(inferred, trained.detach())
    assert set(torch.round(inferred / 0.3).flatten().tolist()) <= set(range(qmin, qmax + 1))


def test_evaluation_leaves_its_input_unchanged() -> None:
    x = torch.randn(64)
    before = x.clone()
    with torch.no_grad():
        lsq_quantize(x, torch.tensor(0.5), -8, 7, 0.1)
    torch.testing.assert_close(x, before, rtol=0, atol=0)
