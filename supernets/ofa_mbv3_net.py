"""The ``ofa-mbv3`` supernet: a stem, stages of elastic MBConv blocks, an elastic-input head."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from kernels.base import BlockConfig
from kernels.bn import elastic_batch_norm
from kernels.conv_bn import ConvBNAct
from kernels.mbconv import ElasticMBConv
from supernets.arch import Arch
from supernets.quant import wrap_extracted
from supernets.supernet import Supernet

if TYPE_CHECKING:
    from supernets.ofa_mbv3 import OfaMbv3Space

ACT_LAYERS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}


class OfaMbv3Supernet(Supernet):
    """Supernet of an :class:`OfaMbv3Space`, built at the space's largest subnet."""

    def __init__(self, *, space: OfaMbv3Space, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.init_normalisation(in_channels=space.in_channels, mean=mean, std=std)
        self.space = space
        self.stem = ConvBNAct(
            space.in_channels, space.stem_channels, 3, stride=space.stem_stride, act_layer=nn.Hardswish
        )
        largest = space.largest()
        # typed views of the blocks; ``stages`` registers them (and names them in the state dict)
        self.blocks: list[list[ElasticMBConv]] = []
        for i, row in enumerate(space.block_configs(largest)):
            layout = space.stages[i]
            self.blocks.append(
                [
                    ElasticMBConv(
                        config,
                        kernel_sizes=space.kernel_sizes,
                        use_se=layout.se,
                        act_layer=ACT_LAYERS[layout.act],
                        # a stage's first block changes width (elastic) or resolution: no shortcut
                        residual=None if j > 0 else False,
                    )
                    for j, config in enumerate(row)
                ]
            )
        self.stages = nn.ModuleList(nn.ModuleList(row) for row in self.blocks)
        last = space.stage_width(len(space.stages) - 1, space.width_mults[-1])
        self.head_weight = nn.Parameter(torch.empty(space.head_channels, last, 1, 1))
        nn.init.kaiming_normal_(self.head_weight, mode="fan_out")
        self.head_bn = nn.BatchNorm2d(space.head_channels)
        self.classifier = nn.Linear(space.head_channels, space.num_classes)
        self._arch = largest
        self._head_in = last
        self.set_active(largest)

    @property
    def active_arch(self) -> Arch:
        return self._arch

    def set_active(self, arch: Arch) -> None:
        self.space.validate(arch)
        configs = self.space.block_configs(arch)
        for blocks, row in zip(self.blocks, configs, strict=True):
            for block, config in zip(blocks, row, strict=False):
                block.set_active(config)
        self._arch = arch
        self._head_in = configs[-1][-1].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x, self._arch.resolution)
        x = self.stem(x)
        for blocks, stage in zip(self.blocks, self._arch.stages, strict=True):
            for j in range(stage.depth):
                x = blocks[j](x)
        x = F.hardswish(elastic_batch_norm(self.head_bn, F.conv2d(x, self.head_weight[:, : self._head_in])))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    @torch.no_grad()
    def extract(self, arch: Arch) -> nn.Module:
        previous = self._arch
        self.set_active(arch)
        try:
            layers: list[nn.Module] = [
                self.preprocess(arch.resolution),
                copy.deepcopy(self.stem),
            ]
            extracted: list[nn.Module] = []
            for blocks, stage in zip(self.blocks, arch.stages, strict=True):
                extracted.extend(blocks[j].extract() for j in range(stage.depth))
            quant = getattr(self, "quant", None)  # set by supernets.quant.attach_quantizers
            if quant is not None:
                where = [(i, j) for i, stage in enumerate(arch.stages) for j in range(stage.depth)]
                extracted = wrap_extracted(extracted, quant, arch, where)
            layers.extend(extracted)
            head = ConvBNAct(self._head_in, self.space.head_channels, 1, act_layer=nn.Hardswish)
            head.conv.weight.copy_(self.head_weight[:, : self._head_in])
            head.bn.load_state_dict(self.head_bn.state_dict())
            layers += [head, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), copy.deepcopy(self.classifier)]
            model = nn.Sequential(*layers).to(self.head_weight.device)
        finally:
            self.set_active(previous)
        return model.train(self.training)

    def active_block_configs(self) -> list[list[BlockConfig]]:
        return self.space.block_configs(self._arch)
