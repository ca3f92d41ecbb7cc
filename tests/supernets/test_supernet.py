"""The ``Supernet`` base shared by every family: input normalisation kept once, checked once."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from supernets import make_space
from supernets.supernet import Supernet
from tests.supernets.conftest import TINY_SPACE

FAMILIES: dict[str, dict[str, Any]] = {
    "ofa-mbv3": TINY_SPACE,
    "ofa-opchoice": TINY_SPACE | {"family": "ofa-opchoice", "ops": ["mbconv", "fused_mbconv"]},
    "pooling-mixture-resnet": {
        "family": "pooling-mixture-resnet",
        "widths": [4, 8, 8],
        "mixture": {"supernets": 2},
    },
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_normalisation_is_the_bases_and_matches_the_extracted_preprocess(family: str) -> None:
    space = make_space(FAMILIES[family], in_channels=2, num_classes=10, image_size=28)
    with pytest.raises(ValueError, match=r"one value per input channel \(2\), got 1/2"):
        space.build_supernet(mean=(0.5,), std=(0.2, 0.3))
    net = space.build_supernet(mean=(0.5, 0.25), std=(0.2, 0.4))
    assert isinstance(net, Supernet)
    assert net.mean.flatten().tolist() == [0.5, 0.25]
    assert "mean" not in net.state_dict() and "std" not in net.state_dict()  # the data sets them
    x = torch.rand(3, 2, 28, 28, generator=torch.Generator().manual_seed(0))
    arch = space.smallest()
    extracted = net.extract(arch)
    torch.testing.assert_close(extracted[0](x), net.normalise(x, arch.resolution), rtol=0, atol=0)
