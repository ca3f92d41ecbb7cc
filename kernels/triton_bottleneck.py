"""A Triton kernel for a whole deployed inverted bottleneck that keeps the expanded activation on chip.

GPU only: import this module only where :func:`kernels.compiled.triton_available`
is true (``kernels.compiled.fuse_block`` does). Supported blocks: a deployed
:class:`~kernels.bottleneck.InvertedBottleneck` with stride 1, a 1x1 expand with
ReLU, a single merged depthwise conv with ReLU (a re-parameterised
``large_kernel_dw`` mixer), a 1x1 projection and an optional residual. Each
program computes a tile of output pixels for every output channel: for each
chunk of hidden channels it recomputes the expansion at every depthwise tap
(a halo recompute instead of a round trip through memory), applies the
depthwise kernel, and accumulates the projection, so the expanded activation
never leaves registers. Status: written without access to a GPU; its test is
marked ``gpu`` and has not run on this project's machines yet.
"""

from __future__ import annotations

from typing import Any

import torch
import triton  # type: ignore[import-not-found]
import triton.language as tl  # type: ignore[import-not-found]
from torch import nn

from kernels.bottleneck import InvertedBottleneck
from kernels.conv_bn import ConvBNAct
from kernels.large_kernel import RepLargeKernelDW

BLOCK_P = 64
BLOCK_H = 32


def supports(module: nn.Module) -> bool:
    """True for deployed stride-1 bottlenecks with ReLU and one merged depthwise conv."""
    if not isinstance(module, InvertedBottleneck):
        return False
    expand, mixer, project = module.expand, module.mixer, module.project
    if not (isinstance(expand, ConvBNAct) and isinstance(mixer, RepLargeKernelDW)):
        return False
    if len(mixer.branches) or not isinstance(mixer.large.bn, nn.Identity):
        return False
    return (
        isinstance(expand.bn, nn.Identity)
        and isinstance(project.bn, nn.Identity)
        and expand.conv.kernel_size == (1, 1)
        and mixer.large.conv.stride == (1, 1)
        and isinstance(expand.act, nn.ReLU)
        and isinstance(mixer.act, nn.ReLU)
        and isinstance(project.act, nn.Identity)
    )


@triton.jit  # type: ignore[misc]
def _bottleneck_kernel(
    x_ptr, we_ptr, be_ptr, wd_ptr, bd_ptr, wp_ptr, bp_ptr, out_ptr,
    CIN, COUT, H, W, HID_P,
    K: tl.constexpr, RESIDUAL: tl.constexpr,
    CIN_P: tl.constexpr, COUT_P: tl.constexpr, BP: tl.constexpr, BH: tl.constexpr,
):  # fmt: skip
    n = tl.program_id(0)
    hw = H * W
    p = tl.program_id(1) * BP + tl.arange(0, BP)
    p_ok = p < hw
    oh = p // W
    ow = p % W
    ci = tl.arange(0, CIN_P)
    co = tl.arange(0, COUT_P)
    hc_offs = tl.arange(0, BH)
    x_base = x_ptr + n * CIN * hw
    acc = tl.zeros((BP, COUT_P), dtype=tl.float32)
    for hc in range(0, HID_P, BH):
        h = hc + hc_offs
        we = tl.load(we_ptr + ci[:, None] * HID_P + h[None, :])  # (CIN_P, BH), zero padded
        be = tl.load(be_ptr + h)
        dw = tl.zeros((BP, BH), dtype=tl.float32)
        for tap in range(K * K):
            ih = oh + tap // K - (K - 1) // 2
            iw = ow + tap % K - (K - 1) // 2
            inside = p_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            xs = tl.load(
                x_base + ci[None, :] * hw + (ih * W + iw)[:, None],
                mask=inside[:, None] & (ci[None, :] < CIN),
                other=0.0,
            )
            e = tl.dot(xs, we, input_precision="ieee") + be[None, :]
            e = tl.maximum(e, 0.0)
            e = tl.where(inside[:, None], e, 0.0)  # the depthwise conv pads the expanded map with zeros
            wd = tl.load(wd_ptr + h * (K * K) + tap)
            dw += e * wd[None, :]
        d = tl.maximum(dw + tl.load(bd_ptr + h)[None, :], 0.0)
        wp = tl.load(wp_ptr + h[:, None] * COUT_P + co[None, :])  # (BH, COUT_P)
        acc += tl.dot(d, wp, input_precision="ieee")
    acc += tl.load(bp_ptr + co)[None, :]
    mask = p_ok[:, None] & (co[None, :] < COUT)
    if RESIDUAL:
        acc += tl.load(x_base + co[None, :] * hw + p[:, None], mask=mask, other=0.0)
    tl.store(out_ptr + n * COUT * hw + co[None, :] * hw + p[:, None], acc, mask=mask)


def _pow2(value: int) -> int:
    return max(16, 1 << (value - 1).bit_length())


class TritonBottleneck(nn.Module):
    """Runs a supported deployed bottleneck (see :func:`supports`) as one Triton kernel, float32 NCHW."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        if not supports(block):
            raise ValueError(
                "TritonBottleneck: unsupported block; check kernels.triton_bottleneck.supports first"
            )
        assert isinstance(block, InvertedBottleneck)
        expand, mixer, project = block.expand, block.mixer, block.project
        assert isinstance(expand, ConvBNAct) and isinstance(mixer, RepLargeKernelDW)
        we, wd, wp = expand.conv.weight, mixer.large.conv.weight, project.conv.weight
        cin, hid, cout, k = we.shape[1], we.shape[0], wp.shape[0], wd.shape[-1]
        hid_p = -(-hid // BLOCK_H) * BLOCK_H
        self.cin, self.cout, self.k, self.residual = cin, cout, k, block.residual
        self.cin_p, self.cout_p, self.hid_p = _pow2(cin), _pow2(cout), hid_p
        dev = we.device

        def padded(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
            out = torch.zeros(shape, device=dev, dtype=torch.float32)
            out[tuple(slice(0, s) for s in t.shape)] = t.detach().float()
            return out.contiguous()

        zero = torch.zeros(1, device=dev)
        self.register_buffer("we", padded(we.reshape(hid, cin).t(), (self.cin_p, hid_p)))
        self.register_buffer(
            "be", padded(expand.conv.bias if expand.conv.bias is not None else zero, (hid_p,))
        )
        self.register_buffer("wd", padded(wd.reshape(hid, k * k), (hid_p, k * k)))
        self.register_buffer(
            "bd", padded(mixer.large.conv.bias if mixer.large.conv.bias is not None else zero, (hid_p,))
        )
        self.register_buffer("wp", padded(wp.reshape(cout, hid).t(), (hid_p, self.cout_p)))
        self.register_buffer(
            "bp", padded(project.conv.bias if project.conv.bias is not None else zero, (self.cout_p,))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or not x.is_cuda or x.shape[1] != self.cin:
            raise ValueError(f"TritonBottleneck needs float32 CUDA input with {self.cin} channels")
        x = x.contiguous()
        n, _, h, w = x.shape
        out = torch.empty(n, self.cout, h, w, device=x.device, dtype=x.dtype)
        grid: Any = (n, triton.cdiv(h * w, BLOCK_P))
        _bottleneck_kernel[grid](
            x, self.we, self.be, self.wd, self.bd, self.wp, self.bp, out,
            self.cin, self.cout, h, w, self.hid_p,
            K=self.k, RESIDUAL=self.residual, CIN_P=self.cin_p, COUT_P=self.cout_p, BP=BLOCK_P, BH=BLOCK_H,
        )  # fmt: skip
        return out
