"""LSQ fake quantization (kernels/quant.py) against its reference formulas at every bit-width."""

from __future__ import annotations

import math

import pytest
import torch

from kernels.quant import LsqQuantizer, lsq_quantize, qrange


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize("weight", [True, False])
def test_forward_and_gradients_match_the_lsq_formulas(bits: int, weight: bool) -> None:
    qmin, qmax = qrange(bits, weight=weight)
    assert (qmin, qmax) == (
        (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1) if weight else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    )
    gen = torch.Generator().manual_seed(bits)
    x = (torch.randn(512, generator=gen) * 3).requires_grad_(True)
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
