"""The ``ofa-opchoice`` family: the ``ofa-mbv3`` space where every block also chooses its operator.

Each block position holds one elastic block per operator of the kernel
registry (``mbconv``, ``fused_mbconv``, ``inception_dw``, ``large_kernel_dw``);
the per-block choice is the operator plus its kernel size and expand ratio, and
each stage chooses depth and width as in ``ofa-mbv3``. ``kernel_size`` means
the depthwise kernel (mbconv), the full expand kernel (fused_mbconv), the band
length (inception_dw) or the merged large kernel (large_kernel_dw).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from kernels import get_block, list_blocks
from kernels.base import BlockConfig, BlockCost, ElasticBlock
from kernels.fused_mbconv import ElasticFusedMBConv
from kernels.inception_dw import ElasticInceptionDW
from kernels.large_kernel import ElasticLargeKernelDW, default_branches
from kernels.mbconv import mbconv_cost
from supernets.arch import Arch
from supernets.block_ops import OpDimension
from supernets.ofa_mbv3 import OfaMbv3Space
from supernets.ofa_mbv3_net import ACT_LAYERS, OfaMbv3Supernet
from supernets.space import register_space
from supernets.supernet import Supernet

DEFAULT_OPS = ("mbconv", "fused_mbconv", "inception_dw", "large_kernel_dw")

# Deploy-form cost of one block: (config, input size, squeeze-excite, residual) -> cost.
CostFn = Callable[[BlockConfig, tuple[int, int], bool, bool], BlockCost]
OP_COSTS: dict[str, CostFn] = {
    "mbconv": lambda c, hw, se, res: mbconv_cost(c, input_hw=hw, use_se=se, residual=res),
    "fused_mbconv": lambda c, hw, se, res: ElasticFusedMBConv.config_cost(c, input_hw=hw, residual=res),
    "inception_dw": lambda c, hw, se, res: ElasticInceptionDW.config_cost(c, input_hw=hw, residual=res),
    "large_kernel_dw": lambda c, hw, se, res: ElasticLargeKernelDW.config_cost(c, input_hw=hw, residual=res),
}


@register_space("ofa-opchoice")
class OpChoiceSpace(OfaMbv3Space):
    """``ofa-mbv3`` plus an operator per block, drawn from ``ops`` (the parent's :class:`OpDimension`)."""

    version = 1

    def __init__(self, *, ops: tuple[str, ...] = DEFAULT_OPS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_ops(ops)

    @property
    def ops(self) -> tuple[str, ...]:
        assert self.block_ops is not None
        return self.block_ops.options

    def set_ops(self, ops: Any) -> None:
        """Search ``ops`` (``ValueError`` naming ``search_space.ops`` or ``kernel_sizes`` if invalid)."""
        if not isinstance(ops, list | tuple) or not ops:
            raise ValueError(f"search_space.ops must be a non-empty list of {list(DEFAULT_OPS)}, got {ops!r}")
        unknown = [op for op in ops if op not in OP_COSTS or op not in list_blocks()]
        if unknown:
            raise ValueError(
                f"search_space.ops has unknown operators {unknown}; choose from {list(DEFAULT_OPS)}"
            )
        if len(set(ops)) != len(ops):
            raise ValueError(f"search_space.ops lists an operator twice: {list(ops)}")
        if "inception_dw" in ops and min(self.kernel_sizes) < 3:
            raise ValueError(
                "search_space.kernel_sizes: inception_dw needs band kernels >= 3; drop 1 or the op"
            )
        if "large_kernel_dw" in ops:
            default_branches(max(self.kernel_sizes))  # raises for a largest kernel without a branch set
            if min(self.kernel_sizes) < 3:
                raise ValueError("search_space.kernel_sizes: large_kernel_dw needs kernels >= 3")
        self.block_ops = OpDimension(ops, num_stages=len(self.stages), max_depth=self.max_depth)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, in_channels: int, num_classes: int, image_size: int
    ) -> OpChoiceSpace:
        rest = dict(config)
        ops = rest.pop("ops", None)
        space = super().from_config(
            rest, in_channels=in_channels, num_classes=num_classes, image_size=image_size
        )
        assert isinstance(space, OpChoiceSpace)
        if ops is not None:
            space.set_ops(ops)
        return space

    @classmethod
    def config_json_schema(cls) -> dict[str, Any]:
        schema = super().config_json_schema()
        props = dict(schema["properties"])
        props["family"] = {"const": cls.family}
        props["ops"] = {
            "type": "array",
            "items": {"enum": list(DEFAULT_OPS)},
            "minItems": 1,
            "uniqueItems": True,
            "default": list(DEFAULT_OPS),
        }
        return schema | {"properties": props}

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"ops": list(self.ops)}

    def block_cost(
        self, stage: int, index: int, config: BlockConfig, input_hw: tuple[int, int], op: str
    ) -> BlockCost:
        return OP_COSTS[op](config, input_hw, self.stages[stage].se and op == "mbconv", index > 0)

    def build_supernet(self, *, mean: tuple[float, ...], std: tuple[float, ...]) -> Supernet:
        return OpChoiceSupernet(space=self, mean=mean, std=std)


class OpChoiceBlock(nn.Module):
    """One block position: an elastic block per operator sharing the position; one of them runs."""

    def __init__(self, candidates: dict[str, ElasticBlock]) -> None:
        super().__init__()
        if not candidates:
            raise ValueError("OpChoiceBlock needs at least one candidate operator")
        self.candidates = nn.ModuleDict(candidates)
        self.op = next(iter(candidates))

    def set_active(self, config: BlockConfig, op: str | None = None) -> None:
        """Give every candidate ``config`` (so switching operators stays consistent); run ``op``."""
        if op is not None and op not in self.candidates:
            raise ValueError(f"operator {op!r} is not one of {list(self.candidates)}")
        for block in self.candidates.values():
            assert isinstance(block, ElasticBlock)
            block.set_active(config)
        if op is not None:
            self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.candidates[self.op](x)  # type: ignore[no-any-return]

    def extract(self) -> nn.Module:
        block = self.candidates[self.op]
        assert isinstance(block, ElasticBlock)
        return block.extract()


class OpChoiceSupernet(OfaMbv3Supernet):
    """The ``ofa-mbv3`` supernet with an :class:`OpChoiceBlock` at every block position."""

    def __init__(self, *, space: OpChoiceSpace, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__(space=space, mean=mean, std=std)  # builds the mbconv candidates
        largest = space.largest()
        rows: list[list[OpChoiceBlock]] = []
        for i, (mbconvs, configs) in enumerate(zip(self.blocks, space.block_configs(largest), strict=True)):
            act = ACT_LAYERS[space.stages[i].act]
            row = []
            for j, (mbconv, config) in enumerate(zip(mbconvs, configs, strict=True)):
                candidates: dict[str, ElasticBlock] = {}
                for op in space.ops:
                    if op == "mbconv":
                        candidates[op] = mbconv
                    else:
                        # as for mbconv: a stage's first block may change width, so it has no shortcut
                        block_cls: Any = get_block(op)
                        candidates[op] = block_cls(config, act_layer=act, residual=None if j > 0 else False)
                row.append(OpChoiceBlock(candidates))
            rows.append(row)
        # The parent's forward and extract index ``blocks``; they only call, set and extract blocks.
        self.blocks = rows  # type: ignore[assignment]
        self.stages = nn.ModuleList(nn.ModuleList(row) for row in rows)
        self.to(self.head_weight.device)
        self.set_active(largest)

    def set_active(self, arch: Arch) -> None:
        super().set_active(arch)
        for row, stage in zip(self.blocks, arch.stages, strict=True):
            for block, choice in zip(row, stage.blocks, strict=False):
                if isinstance(block, OpChoiceBlock):
                    block.op = choice.op


__all__ = ["DEFAULT_OPS", "OpChoiceBlock", "OpChoiceSpace", "OpChoiceSupernet"]
