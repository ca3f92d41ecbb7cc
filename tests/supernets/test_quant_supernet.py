"""A quantization-aware ofa-mbv3 supernet: stages fake-quantized at their bits, float stages unchanged."""

from __future__ import annotations

import torch

from kernels.fuse import reparameterize_model
from supernets import SearchSpace, Supernet, make_space
from supernets.bits import with_bits
from tests.supernets.conftest import MEAN, STD, TINY_SPACE


def _net(bits: list[int] | None) -> tuple[SearchSpace, Supernet]:
    space = make_space(TINY_SPACE | {"bits": bits}, in_channels=1, num_classes=10, image_size=28)
    torch.manual_seed(0)
    return space, space.build_supernet(mean=MEAN, std=STD)


def test_float_stages_compute_what_the_float_supernet_computes() -> None:
    plain_space, plain = _net(None)
    space, net = _net([4, 8, 32])
    assert net.quant is not None and not hasattr(plain, "quant")
    x = torch.rand(6, 1, 28, 28)
    plain.eval(), net.eval()
    arch = space.largest()
    assert all(s.bits == 32 for s in arch.stages)
    plain.set_active(plain_space.largest())
    net.set_active(arch)
    torch.testing.assert_close(net(x), plain(x))


def test_quantized_stages_differ_and_extract_to_the_same_function() -> None:
    space, net = _net([4, 8, 32])
    net.eval()
    x = torch.rand(6, 1, 28, 28)
    net.set_active(space.largest())
    float_out = net(x)
    errors = {}
    for bits in (8, 4):
        arch = with_bits(space.largest(), [bits, 32])
        net.set_active(arch)
        out = net(x)
        errors[bits] = float((out - float_out).abs().mean())
        model = reparameterize_model(net.extract(arch).eval())
        torch.testing.assert_close(model(x), out, atol=1e-5, rtol=1e-4)
    assert 0 < errors[8] < errors[4]


def test_training_step_reaches_the_step_sizes() -> None:
    space, net = _net([4, 8])
    net.train()
    net.set_active(space.smallest())
    net(torch.rand(4, 1, 28, 28)).sum().backward()
    grads = [p.grad for name, p in net.named_parameters() if name.startswith("quant.")]
    assert grads and any(g is not None and float(g.abs().sum()) > 0 for g in grads)
