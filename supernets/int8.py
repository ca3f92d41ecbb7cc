"""Real integer deployment of a quantization-aware subnet on PyTorch's quantized CPU kernels.

Every convolution of a quantized stage (a :class:`~supernets.quant.FakeQuantBlock` of an
extracted model) becomes a ``torch.ao.nn.quantized.Conv2d`` (fbgemm/x86 or qnnpack) whose
integers are exactly the fake-quantized ones learned in training:

- its input is quantized to ``quint8`` with the learned activation step and zero point 128
  (the signed 8-bit range), rounded and clamped exactly as in training (4 or 6 bits carried in int8);
- BatchNorm is folded into the integer weights as per-output-channel steps
  ``s_w * |gamma / sigma|`` (signs moved into the integers), so the weight integers are unchanged;
- the output is requantized with a step calibrated on images (min/max), then dequantized, so
  activations, squeeze-excite gating and residual sums stay float between convolutions.

Float stages, the stem and the head stay float (BatchNorm folded).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.nn.quantized import Conv2d as QuantizedConv2d
from torch.overrides import TorchFunctionMode

from kernels.fuse import reparameterize_model
from kernels.quant import qrange
from supernets.quant import FakeQuantBlock

ACT_ZERO_POINT = 128


class Int8Conv(nn.Module):
    """``bn(conv(x))`` on int8 kernels with the learned steps of one fake-quantized call site."""

    def __init__(
        self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, *, bits: int, act_step: float, weight_step: float
    ) -> None:
        super().__init__()
        with torch.no_grad():
            w = conv.weight.detach().float().cpu()
            bias = conv.bias.detach().float().cpu() if conv.bias is not None else torch.zeros(w.shape[0])
            wq_min, wq_max = qrange(bits, weight=True)
            ints = torch.clamp(torch.round(w / weight_step), wq_min, wq_max)
            factor = torch.ones(w.shape[0])
            if bn is not None:
                assert bn.running_mean is not None and bn.running_var is not None
                factor = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().float().cpu()
                bias = (bias - bn.running_mean.cpu()) * factor + bn.bias.detach().float().cpu()
            sign = torch.where(factor < 0, -1.0, 1.0)
            steps = (weight_step * factor.abs()).clamp_min(1e-12).double()
            qweight = torch._make_per_channel_quantized_tensor(
                (ints * sign.reshape(-1, 1, 1, 1)).to(torch.int8),
                steps,
                torch.zeros(w.shape[0], dtype=torch.long),
                0,
            )
        self.qconv = QuantizedConv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            stride=conv.stride,  # type: ignore[arg-type]
            padding=conv.padding,  # type: ignore[arg-type]
            dilation=conv.dilation,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=True,
        )
        self.qconv.set_weight_bias(qweight, bias)
        aq_min, aq_max = qrange(bits, weight=False)
        self.act_step = float(act_step)
        self.act_qmin, self.act_qmax = aq_min, aq_max
        self.calibrating = True
        self.out_lo, self.out_hi = 0.0, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # round(x / step) as the fake quantizer does (quantize_per_tensor multiplies by 1/step,
        # which rounds a few near-ties the other way)
        ints = torch.clamp(torch.round(x / self.act_step), self.act_qmin, self.act_qmax) + ACT_ZERO_POINT
        xq = torch._make_per_tensor_quantized_tensor(ints.to(torch.uint8), self.act_step, ACT_ZERO_POINT)
        if self.calibrating:
            w, b = self.qconv.weight().dequantize(), self.qconv.bias()
            y = F.conv2d(
                xq.dequantize(),
                w,
                b,
                self.qconv.stride,
                self.qconv.padding,
                self.qconv.dilation,
                self.qconv.groups,
            )
            self.out_lo = min(self.out_lo, float(y.min()))
            self.out_hi = max(self.out_hi, float(y.max()))
            return y
        return self.qconv(xq).dequantize()

    def finish_calibration(self) -> None:
        """Set the output step from the observed range (zero kept exactly representable)."""
        step = max((self.out_hi - self.out_lo) / 255.0, 1e-8)
        self.qconv.scale = step
        self.qconv.zero_point = int(min(255, max(0, round(-self.out_lo / step))))
        self.calibrating = False


class _SiteRecorder(TorchFunctionMode):
    """Records the ``nn.Conv2d`` behind each ``conv2d`` call, in call order."""

    def __init__(self, convs: dict[int, nn.Conv2d]) -> None:
        super().__init__()
        self.convs, self.order = convs, []  # type: ignore[var-annotated]

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in (torch.conv2d, F.conv2d):
            self.order.append(self.convs[id(args[1])])
        return func(*args, **(kwargs or {}))


def _convert_block(wrapped: FakeQuantBlock, example: torch.Tensor) -> nn.Module:
    block = wrapped.block
    convs = {id(m.weight): m for m in block.modules() if isinstance(m, nn.Conv2d)}
    recorder = _SiteRecorder(convs)
    with torch.no_grad(), recorder:
        block(example)
    parents: dict[int, tuple[nn.Module, str]] = {}
    for parent in block.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                parents[id(child)] = (parent, name)
    for site, conv in enumerate(recorder.order):
        parent, name = parents[id(conv)]
        bn = getattr(parent, "bn", None) if name == "conv" else None
        bn = bn if isinstance(bn, nn.BatchNorm2d) else None
        int8 = Int8Conv(
            conv,
            bn,
            bits=wrapped.bits,
            act_step=float(wrapped.sites.acts[site].scale(wrapped.bits).detach()),  # type: ignore[operator]
            weight_step=float(wrapped.sites.weights[site].scale(wrapped.bits).detach()),  # type: ignore[operator]
        )
        setattr(parent, name, int8)
        if bn is not None:
            parent.bn = nn.Identity()
    return block


@torch.no_grad()
def to_int8(model: nn.Module, calibration_images: torch.Tensor, *, batch_size: int = 256) -> nn.Module:
    """A CPU copy of an extracted (BN-recalibrated) subnet whose quantized stages run on int8 kernels."""
    model = copy.deepcopy(model).cpu().eval()
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"to_int8 needs an extracted nn.Sequential subnet, got {type(model).__name__}")
    layers = list(model)
    x = calibration_images[:1].cpu()
    for i, layer in enumerate(layers):
        if isinstance(layer, FakeQuantBlock):
            layers[i] = _convert_block(layer, x)
        x = layers[i](x)
    out = nn.Sequential(*layers)
    for start in range(0, calibration_images.shape[0], batch_size):
        out(calibration_images[start : start + batch_size].cpu())
    for m in out.modules():
        if isinstance(m, Int8Conv):
            m.finish_calibration()
    return reparameterize_model(out.eval())
