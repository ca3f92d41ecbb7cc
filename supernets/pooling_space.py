"""The ``pooling-mixture-resnet`` family: where a CIFAR-style ResNet downsamples, trained as a mixture.

A stem and ``blocks`` basic residual blocks whose widths are fixed by block index (``widths`` over
equal shares of the blocks); ``pools`` downsampling layers (2x2 max or average pooling, or a 2x2
stride-2 convolution) go in front of ``pools`` distinct blocks. An architecture is encoded as the
resolution segments between downsampling layers: stage ``k`` holds the blocks between pool ``k`` and
pool ``k + 1`` (stage 0 may be empty) and its ``downsample`` names the pool in front of it. The
supernet is a mixture of ``mixture.supernets`` member networks (see ``supernets/pooling_net.py``).
"""

from __future__ import annotations

import itertools
from typing import Any

from kernels.base import ZERO_COST, BlockCost
from kernels.cost import conv_cost, elementwise_cost
from supernets.arch import Arch, BlockArch, StageArch
from supernets.space import Choice, Dimension, ProductSpace, register_space
from supernets.supernet import Supernet

POOL_OPS = ("max", "avg", "conv")
BLOCK = BlockArch(kernel_size=3, expand_ratio=1, op="resnet-basic")
DEFAULTS: dict[str, Any] = {
    "pools": 2,
    "pool_op": ["max"],
    "widths": [16, 32, 64],
    "blocks": 9,
    "mixture": {"supernets": 4},
}


def _int(config: dict[str, Any], key: str, minimum: int) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"search_space.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_options(config: dict[str, Any]) -> dict[str, Any]:
    """The family's options with defaults filled in; ``ValueError`` naming the field when one is wrong."""
    unknown = set(config) - set(DEFAULTS) - {"in_channels", "num_classes", "image_size"}
    if unknown:
        raise ValueError(
            f"search_space has unknown fields {sorted(unknown)} for family pooling-mixture-resnet; "
            f"allowed: {sorted(DEFAULTS)}"
        )
    c = {k: (DEFAULTS[k] if config.get(k) is None else config[k]) for k in DEFAULTS}
    blocks = _int(c, "blocks", 1)
    pools = _int(c, "pools", 1)
    if pools > blocks:
        raise ValueError(
            f"search_space.pools ({pools}) must not exceed search_space.blocks ({blocks}): "
            "each pool goes in front of a different block"
        )
    ops = c["pool_op"]
    if isinstance(ops, str):
        ops = [ops]
    if not isinstance(ops, list | tuple) or not ops or any(op not in POOL_OPS for op in ops):
        raise ValueError(f"search_space.pool_op must be a non-empty list of {list(POOL_OPS)}, got {ops!r}")
    widths = c["widths"]
    if (
        not isinstance(widths, list | tuple)
        or not widths
        or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths)
    ):
        raise ValueError(f"search_space.widths must be a non-empty list of integers >= 1, got {widths!r}")
    if len(widths) > blocks:
        raise ValueError(f"search_space.widths has {len(widths)} entries but there are only {blocks} blocks")
    mixture = c["mixture"]
    if not isinstance(mixture, dict) or set(mixture) - {"supernets"}:
        raise ValueError(f"search_space.mixture must be a mapping {{supernets: int}}, got {mixture!r}")
    supernets = mixture.get("supernets", DEFAULTS["mixture"]["supernets"])
    if not isinstance(supernets, int) or isinstance(supernets, bool) or supernets < 1:
        raise ValueError(f"search_space.mixture.supernets must be an integer >= 1, got {supernets!r}")
    return {
        "blocks": blocks,
        "pools": pools,
        "pool_op": [op for op in POOL_OPS if op in ops],
        "widths": [int(w) for w in widths],
        "mixture": {"supernets": supernets},
    }


@register_space("pooling-mixture-resnet")
class PoolingSpace(ProductSpace):
    """Every choice of ``pools`` pool positions among the blocks, times a pool op per position."""

    version = 1
    schedules = ("balanced-mixture",)

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        blocks: int = 9,
        pools: int = 2,
        pool_op: tuple[str, ...] = ("max",),
        widths: tuple[int, ...] = (16, 32, 64),
        supernets: int = 4,
    ) -> None:
        opts = parse_options(
            {
                "blocks": blocks,
                "pools": pools,
                "pool_op": list(pool_op),
                "widths": list(widths),
                "mixture": {"supernets": supernets},
            }
        )
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
            if value < 1:
                raise ValueError(f"search_space.{name} must be >= 1, got {value}")
        if image_size >> pools < 1:
            raise ValueError(
                f"search_space.pools ({pools}) halves {image_size}-pixel images to nothing; use fewer pools"
            )
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, image_size
        self.blocks: int = opts["blocks"]
        self.pools: int = opts["pools"]
        self.pool_ops: tuple[str, ...] = tuple(opts["pool_op"])
        self.widths: tuple[int, ...] = tuple(opts["widths"])
        self.num_supernets: int = opts["mixture"]["supernets"]
        self.positions = [",".join(map(str, p)) for p in itertools.combinations(range(self.blocks), pools)]

    @classmethod
    def check_options(cls, config: dict[str, Any]) -> None:
        parse_options(config)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, in_channels: int, num_classes: int, image_size: int
    ) -> PoolingSpace:
        o = parse_options(config)
        return cls(
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            blocks=o["blocks"],
            pools=o["pools"],
            pool_op=tuple(o["pool_op"]),
            widths=tuple(o["widths"]),
            supernets=o["mixture"]["supernets"],
        )

    @classmethod
    def config_json_schema(cls) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "family": {"const": "pooling-mixture-resnet"},
                "blocks": {"type": "integer", "minimum": 1, "default": DEFAULTS["blocks"]},
                "pools": {"type": "integer", "minimum": 1, "default": DEFAULTS["pools"]},
                "pool_op": {
                    "type": "array",
                    "items": {"enum": list(POOL_OPS)},
                    "minItems": 1,
                    "default": DEFAULTS["pool_op"],
                },
                "widths": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": 1,
                    "default": DEFAULTS["widths"],
                    "description": "channel widths over equal shares of the blocks",
                },
                "mixture": {
                    "type": "object",
                    "properties": {"supernets": {"type": "integer", "minimum": 1, "default": 4}},
                    "additionalProperties": False,
                    "default": DEFAULTS["mixture"],
                },
            },
            "required": ["family"],
            "additionalProperties": False,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "version": self.version,
            "blocks": self.blocks,
            "pools": self.pools,
            "pool_op": list(self.pool_ops),
            "widths": list(self.widths),
            "mixture": {"supernets": self.num_supernets},
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
        }

    # -- geometry -------------------------------------------------------------------------------------

    def width_of(self, block: int) -> int:
        """Output channels of block ``block`` (fixed by its index, whatever the pool positions)."""
        return self.widths[block * len(self.widths) // self.blocks]

    def in_width_of(self, block: int) -> int:
        """Channels entering block ``block`` (and its pool): the stem's for the first."""
        return self.width_of(max(0, block - 1))

    def pool_layout(self, arch: Arch) -> dict[int, str]:
        """Block index -> pool op in front of it."""
        out: dict[int, str] = {}
        start = 0
        for stage in arch.stages:
            if stage.downsample is not None:
                out[start] = stage.downsample
            start += stage.depth
        return out

    # -- the typed choices ----------------------------------------------------------------------------

    def typed_choices(self) -> tuple[Choice, ...]:
        pools = [Choice(f"pool{k}_op", Dimension.DOWNSAMPLE_OP, self.pool_ops) for k in range(self.pools)]
        return (Choice("positions", Dimension.DOWNSAMPLE_AT, tuple(self.positions)), *pools)

    def arch_of(self, values: dict[str, Any]) -> Arch:
        cuts = [int(p) for p in str(values["positions"]).split(",")]
        bounds = [0, *cuts, self.blocks]
        stages = [
            StageArch(
                blocks=(BLOCK,) * (bounds[k + 1] - bounds[k]),
                downsample=None if k == 0 else str(values[f"pool{k - 1}_op"]),
            )
            for k in range(self.pools + 1)
        ]
        return Arch(
            family=self.family, resolution=self.image_size, stages=tuple(stages), version=self.version
        )

    def values_of(self, arch: Arch) -> dict[str, Any]:
        layout = self.pool_layout(arch)
        out: dict[str, Any] = {"positions": ",".join(map(str, sorted(layout)))}
        for k, j in enumerate(sorted(layout)):
            out[f"pool{k}_op"] = layout[j]
        return out

    def default_arch(self) -> Arch:
        """The classic layout: pools spread evenly (ResNet20's [3, 3, 3] for 9 blocks and 2 pools)."""
        cuts = [round(self.blocks * (k + 1) / (self.pools + 1)) for k in range(self.pools)]
        cuts = [min(max(c, k), self.blocks - self.pools + k) for k, c in enumerate(cuts)]
        values: dict[str, Any] = {"positions": ",".join(map(str, cuts))}
        values |= {f"pool{k}_op": self.pool_ops[0] for k in range(self.pools)}
        return self.arch_of(values)

    def largest(self) -> Arch:
        """Pools as late as possible: most blocks run at full resolution (the most work)."""
        last = ",".join(str(self.blocks - self.pools + k) for k in range(self.pools))
        return self.arch_of(
            {"positions": last} | {f"pool{k}_op": self.pool_ops[-1] for k in range(self.pools)}
        )

    def smallest(self) -> Arch:
        first = ",".join(str(k) for k in range(self.pools))
        return self.arch_of(
            {"positions": first} | {f"pool{k}_op": self.pool_ops[0] for k in range(self.pools)}
        )

    def validate(self, arch: Arch) -> None:
        def bad(what: str, value: Any, allowed: Any) -> ValueError:
            return ValueError(
                f"arch {arch.arch_hash} is not in this pooling-mixture-resnet space: "
                f"{what} {value!r} not in {allowed}"
            )

        if arch.family != self.family or arch.version != self.version:
            raise bad("family/version", (arch.family, arch.version), (self.family, self.version))
        if arch.resolution != self.image_size:
            raise bad("resolution", arch.resolution, [self.image_size])
        if len(arch.stages) != self.pools + 1:
            raise bad("number of stages", len(arch.stages), [self.pools + 1])
        if sum(s.depth for s in arch.stages) != self.blocks:
            raise bad("total blocks", sum(s.depth for s in arch.stages), [self.blocks])
        for i, stage in enumerate(arch.stages):
            if i == 0 and stage.downsample is not None:
                raise bad("stage 0 downsample", stage.downsample, [None])
            if i > 0 and stage.downsample not in self.pool_ops:
                raise bad(f"stage {i} downsample", stage.downsample, list(self.pool_ops))
            if i > 0 and stage.depth < 1:
                raise bad(f"stage {i} depth", stage.depth, ">= 1")
            if stage.width_mult != 1.0 or stage.bits is not None:
                raise bad(f"stage {i} width_mult/bits", (stage.width_mult, stage.bits), [(1.0, None)])
            for j, block in enumerate(stage.blocks):
                if block != BLOCK:
                    raise bad(f"stage {i} block {j}", block, [BLOCK])

    # -- costs ----------------------------------------------------------------------------------------

    def layer_costs(self, arch: Arch) -> list[tuple[str, BlockCost]]:
        hw = (arch.resolution, arch.resolution)
        stem, hw = conv_cost(
            in_channels=self.in_channels, out_channels=self.widths[0], kernel=(3, 3), in_hw=hw, bias=False
        )
        out = [("stem", stem + elementwise_cost(self.widths[0], hw))]
        layout = self.pool_layout(arch)
        for j in range(self.blocks):
            cin, cout = self.in_width_of(j), self.width_of(j)
            pool = ZERO_COST
            if j in layout:
                if layout[j] == "conv":
                    pool, hw = conv_cost(in_channels=cin, out_channels=cin, kernel=(2, 2), in_hw=hw, stride=2)
                    pool = pool + elementwise_cost(cin, hw)
                else:
                    hw = (hw[0] // 2, hw[1] // 2)
                    pool = elementwise_cost(cin, hw, reads=4, writes=1)
            out.append((f"pool{j}", pool))
            c1, _ = conv_cost(in_channels=cin, out_channels=cout, kernel=(3, 3), in_hw=hw)
            c2, _ = conv_cost(in_channels=cout, out_channels=cout, kernel=(3, 3), in_hw=hw)
            block = c1 + c2 + elementwise_cost(cout, hw, reads=2, writes=1) + elementwise_cost(cout, hw)
            if cin != cout:
                block = block + conv_cost(in_channels=cin, out_channels=cout, kernel=(1, 1), in_hw=hw)[0]
            out.append((f"b{j}", block))
        fc, _ = conv_cost(
            in_channels=self.widths[-1], out_channels=self.num_classes, kernel=(1, 1), in_hw=(1, 1)
        )
        out.append(("head", elementwise_cost(self.widths[-1], hw, reads=1, writes=0) + fc))
        return out

    def build_supernet(self, *, mean: tuple[float, ...], std: tuple[float, ...]) -> Supernet:
        from supernets.pooling_net import PoolingMixtureSupernet

        return PoolingMixtureSupernet(space=self, mean=mean, std=std)

    def __repr__(self) -> str:
        return f"PoolingSpace(size={self.size()}, {self.describe()})"
