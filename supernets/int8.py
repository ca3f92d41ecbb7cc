"""Real integer deployment of a quantization-aware subnet on PyTorch's quantized CPU kernels.

Every convolution of a quantized stage (a :class:`~supernets.quant.FakeQuantBlock` of an
extracted model) becomes an :class:`Int8Conv` whose integers are exactly the fake-quantized ones
learned in training, so the int8 model computes what the fake-quantized model computes:

- its input is quantized to ``uint8`` with the learned activation step and zero point 128 (a
  signed range) or 0 (an unsigned one, after a ReLU), clamped first to the stage's range (4 or 6
  bits carried in int8);
- BatchNorm is folded into the integer weights as per-output-channel steps
  ``s_w * |gamma / sigma|`` (signs moved into the integers), so the weight integers are unchanged;
- the convolution runs on oneDNN's int8 kernel (``onednn::qconv2d_pointwise``, the one PyTorch's
  x86 int8 inference uses): uint8 x int8 products summed in int32, scaled back to float32 in the
  kernel. The output is not requantized: the fake-quantized model's only roundings are at
  convolution inputs, and requantizing outputs to 8 bits (as ``torch.ao.nn.quantized.Conv2d``
  must) added a rounding the estimate never saw (0.6 points of accuracy on a small net).

Activations, squeeze-excite gating and residual sums stay float between convolutions, as in the
fake-quantized model. Float stages, the stem and the head stay float (BatchNorm folded).
``Int8Conv.qdq`` switches a module to QuantizeLinear/DequantizeLinear form for ONNX export. The int8
form scripts (``torch.jit.script``) but cannot be traced: the tracer cannot record the kernel's
``Scalar?[]`` argument.
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from kernels.fuse import reparameterize_model
from kernels.quant import qrange
from supernets.quant import FakeQuantBlock

SIGNED_ZERO_POINT = 128


class Int8Conv(nn.Module):
    """``bn(conv(x))`` on an int8 kernel with the learned steps of one fake-quantized call site."""

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.BatchNorm2d | None,
        *,
        bits: int,
        act_step: float,
        weight_step: float,
        act_unsigned: bool = False,
    ) -> None:
        super().__init__()
        with torch.no_grad():
            w = conv.weight.detach().float().cpu()
            # a learned weight step may cross zero in training: on the symmetric range
            # round(w / -s) * -s == round(w / s) * s, so a negative step is its absolute value
            # (it was clamped to 1e-12 here, and such a model guessed: 0.10 accuracy)
            weight_step = abs(weight_step)
            bias = conv.bias.detach().float().cpu() if conv.bias is not None else torch.zeros(w.shape[0])
            wq_min, wq_max = qrange(bits, weight=True)
            ints = torch.clamp(torch.round(w / weight_step), wq_min, wq_max)
            factor = torch.ones(w.shape[0])
            if bn is not None:
                assert bn.running_mean is not None and bn.running_var is not None
                factor = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().float().cpu()
                bias = (bias - bn.running_mean.cpu()) * factor + bn.bias.detach().float().cpu()
            sign = torch.where(factor < 0, -1.0, 1.0)
            steps = (weight_step * factor.abs()).clamp_min(1e-12)
        self.register_buffer("weight_int8", (ints * sign.reshape(-1, 1, 1, 1)).to(torch.int8))
        self.register_buffer("weight_steps", steps.float())
        self.register_buffer("weight_zero_points", torch.zeros(w.shape[0], dtype=torch.int32))
        self.register_buffer("bias", bias.float())
        self.stride: list[int] = list(conv.stride)
        if isinstance(conv.padding, str):
            raise ValueError(f"Int8Conv needs numeric padding, got {conv.padding!r}")
        self.padding: list[int] = [int(p) for p in conv.padding]
        self.dilation: list[int] = list(conv.dilation)
        self.groups: int = conv.groups
        self.bits: int = bits
        aq_min, aq_max = qrange(bits, weight=False, unsigned=act_unsigned)
        self.act_step: float = float(act_step)
        # an attribute: TorchScript cannot read a global int
        self.act_zero_point: int = 0 if act_unsigned else SIGNED_ZERO_POINT
        self.act_lo: float = aq_min * self.act_step
        self.act_hi: float = aq_max * self.act_step
        self.qdq: bool = False
        self.packed: torch.Tensor | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["packed"] = None  # an opaque oneDNN tensor cannot be copied or pickled
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # clamping before rounding equals clamping the integers (the bounds are whole steps);
        # at 8 bits it is the uint8 saturation itself
        x = torch.clamp(x, self.act_lo, self.act_hi)
        if self.qdq:  # the same arithmetic as QuantizeLinear/DequantizeLinear pairs (for ONNX export)
            xq = torch.fake_quantize_per_tensor_affine(x, self.act_step, self.act_zero_point, 0, 255)
            w = self.weight_int8.float() * self.weight_steps.reshape(-1, 1, 1, 1)  # type: ignore[operator]
            steps, zeros = self.weight_steps, self.weight_zero_points
            wq = torch.fake_quantize_per_channel_affine(w, steps, zeros, 0, -128, 127)  # type: ignore[arg-type]
            # the bias added after the convolution, not as its input: onnxruntime's QDQ rewrites
            # quantize a conv's float bias to int32 at input step x weight step, which moved
            # the logits by 12-54% of the largest one (roundings downstream flip)
            out = F.conv2d(xq, wq, None, self.stride, self.padding, self.dilation, self.groups)  # type: ignore[arg-type]
            return out + self.bias.reshape(1, -1, 1, 1)  # type: ignore[operator]
        qx = torch.quantize_per_tensor(x, self.act_step, self.act_zero_point, torch.quint8).int_repr()
        packed = self.packed
        if packed is None:
            packed = torch.ops.onednn.qconv_prepack(
                self.weight_int8,
                self.weight_steps,
                self.act_step,
                self.act_zero_point,
                self.stride,
                self.padding,
                self.dilation,
                self.groups,
                None,
            )
            self.packed = packed
        # the schema's Scalar?[]: TorchScript spells Scalar as Union[int, float, complex]
        no_scalars: list[Optional[Union[int, float, complex]]] = []  # noqa: UP007, UP045
        return torch.ops.onednn.qconv2d_pointwise(
            qx,
            self.act_step,
            self.act_zero_point,
            packed,
            self.weight_steps,
            self.weight_zero_points,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            1.0,
            0,
            torch.float32,
            "none",
            no_scalars,
            "",
        )


# The prepacked (opaque oneDNN) weight, built on first use and never saved or copied (__getstate__).
# Annotated with the type itself: TorchScript cannot resolve this module's postponed string annotations.
Int8Conv.__annotations__ = {**vars(Int8Conv).get("__annotations__", {}), "packed": Optional[torch.Tensor]}  # noqa: UP045


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
        acts = wrapped.sites.acts[site]
        int8 = Int8Conv(
            conv,
            bn,
            bits=wrapped.bits,
            act_unsigned=acts.is_unsigned(wrapped.bits),  # type: ignore[operator]
            act_step=float(acts.scale(wrapped.bits).detach()),  # type: ignore[operator]
            weight_step=float(wrapped.sites.weights[site].scale(wrapped.bits).detach()),  # type: ignore[operator]
        )
        setattr(parent, name, int8)
        if bn is not None:
            parent.bn = nn.Identity()
    return block


def int8_supported() -> bool:
    """Whether this torch build has the oneDNN int8 convolution (x86 builds do)."""
    return (
        hasattr(torch.ops.onednn, "qconv2d_pointwise")
        and "onednn" in torch.backends.quantized.supported_engines
    )


@torch.no_grad()
def to_int8(model: nn.Module, example_images: torch.Tensor) -> nn.Module:
    """A CPU copy of an extracted (BN-recalibrated) subnet whose quantized stages run on int8 kernels.

    ``example_images`` (one image is enough) is run once to find each block's convolution call sites;
    nothing is calibrated, every step is a learned one.
    """
    if not int8_supported():
        raise RuntimeError(
            "this torch build has no oneDNN int8 convolution; int8 deployment needs an x86 build"
        )
    model = copy.deepcopy(model).cpu().eval()
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"to_int8 needs an extracted nn.Sequential subnet, got {type(model).__name__}")
    layers = list(model)
    x = example_images[:1].cpu()
    for i, layer in enumerate(layers):
        if isinstance(layer, FakeQuantBlock):
            layers[i] = _convert_block(layer, x)
        x = layers[i](x)
    return reparameterize_model(nn.Sequential(*layers).eval())


def qdq_form(model: nn.Module) -> nn.Module:
    """A copy of an int8 model whose :class:`Int8Conv` layers compute as QuantizeLinear/DequantizeLinear."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, Int8Conv):
            m.qdq = True
    return model
