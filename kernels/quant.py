"""Fake quantization with learned step sizes (LSQ, Esser et al. 2020), one step size per bit-width.

``q(x) = clamp(round(x / s), qmin, qmax) * s`` with straight-through rounding: the gradient reaches
``x`` inside the clipping range and reaches ``s`` as LSQ's
``d q / d s = (round(x/s) - x/s)`` inside, ``qmin`` below and ``qmax`` above, scaled by
``g = 1 / sqrt(n * qmax)`` (``n``: elements per weight tensor or per activation sample) so that
the step sizes learn at a rate comparable to the weights.

Weights are signed and symmetric (``[-(2^(b-1) - 1), 2^(b-1) - 1]``, so 8-bit weights are
``torch.qint8`` with zero point 0). Activations are signed (``[-2^(b-1), 2^(b-1) - 1]``, i.e.
``torch.quint8`` with zero point ``2^(b-1)`` at 8 bits) where they can be negative (block inputs,
hard-swish outputs) and unsigned (``[0, 2^b - 1]``, zero point 0) where the first tensor a step is
initialised from has no negative value (ReLU outputs): a signed range there wastes its negative half,
one of the ``b`` bits, which at 4 bits leaves 8 levels instead of 16. A bit-width of 32 (or
``None``) is float: the input passes unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

FLOAT_BITS = 32


def qrange(bits: int, *, weight: bool, unsigned: bool = False) -> tuple[int, int]:
    """The integer range of a ``bits``-bit weight (symmetric) or activation (signed or unsigned)."""
    if bits < 2 or bits >= FLOAT_BITS:
        raise ValueError(f"integer bit-widths are 2..31, got {bits}")
    if unsigned:
        if weight:
            raise ValueError("weights are always signed")
        return (0, 2**bits - 1)
    top = 2 ** (bits - 1) - 1
    return (-top, top) if weight else (-top - 1, top)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return (x.round() - x).detach() + x


def _scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` in the forward pass; its gradient multiplied by ``factor``."""
    return (x - x * factor).detach() + x * factor


def lsq_quantize(
    x: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int, grad_factor: float
) -> torch.Tensor:
    """Fake-quantize ``x`` with step ``scale`` (LSQ gradients for ``x`` and ``scale``).

    Without gradients (evaluation) the same formula runs as three in-place operations on one
    new tensor: fake-quantized evaluation took three times a float one.
    """
    if not torch.is_grad_enabled() or not (x.requires_grad or scale.requires_grad):
        return torch.div(x, scale).round_().clamp_(qmin, qmax).mul_(scale)
    s = _scale_grad(scale, grad_factor)
    return _round_ste(torch.clamp(x / s, qmin, qmax)) * s


def lsq_init(x: torch.Tensor, qmax: int) -> float:
    """LSQ's initial step size ``2 mean|x| / sqrt(qmax)`` (never zero)."""
    return max(2.0 * float(x.detach().abs().mean()) / math.sqrt(qmax), 1e-8)


class LsqQuantizer(nn.Module):
    """Per-bit-width learned step sizes for one weight tensor or one activation; float passes through.

    A step size is initialised from the first tensor quantized at its bit-width (``initialised``
    records which), so weights and activations start where LSQ starts them. An activation
    quantizer's range at that bit-width is unsigned (``unsigned``) when that first tensor has no
    negative value.
    """

    initialised: torch.Tensor
    unsigned: torch.Tensor

    def __init__(self, bits: tuple[int, ...], *, weight: bool) -> None:
        super().__init__()
        self.weight = weight
        self.int_bits = tuple(b for b in bits if b < FLOAT_BITS)
        self.scales = nn.Parameter(torch.ones(len(self.int_bits)))
        self.register_buffer("initialised", torch.zeros(len(self.int_bits), dtype=torch.bool))
        self.register_buffer("unsigned", torch.zeros(len(self.int_bits), dtype=torch.bool))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # state dicts saved before activations could be unsigned: every range was signed
        state_dict.setdefault(prefix + "unsigned", torch.zeros_like(self.unsigned))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def index(self, bits: int) -> int:
        try:
            return self.int_bits.index(bits)
        except ValueError:
            raise ValueError(
                f"no step size for {bits} bits; this quantizer has {list(self.int_bits)}"
            ) from None

    def scale(self, bits: int) -> torch.Tensor:
        return self.scales[self.index(bits)]

    def is_unsigned(self, bits: int) -> bool:
        return bool(self.unsigned[self.index(bits)])

    def qrange(self, bits: int) -> tuple[int, int]:
        """The integer range of this quantizer at ``bits`` (after its first tensor at ``bits``)."""
        return qrange(bits, weight=self.weight, unsigned=self.is_unsigned(bits))

    def forward(self, x: torch.Tensor, bits: int | None) -> torch.Tensor:
        if bits is None or bits >= FLOAT_BITS:
            return x
        i = self.index(bits)
        if not bool(self.initialised[i]):
            with torch.no_grad():
                self.unsigned[i] = not self.weight and bool(x.min() >= 0)
                self.scales[i] = lsq_init(x, self.qrange(bits)[1])
                self.initialised[i] = True
        qmin, qmax = self.qrange(bits)
        n = x.numel() if self.weight else x[0].numel()
        return lsq_quantize(x, self.scales[i], qmin, qmax, 1.0 / math.sqrt(n * qmax))
