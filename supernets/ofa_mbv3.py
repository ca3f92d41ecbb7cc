"""The ``ofa-mbv3`` family: MobileNetV3-like stages of elastic MBConv blocks (Once-for-All space)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kernels.base import ZERO_COST, BlockConfig, BlockCost
from kernels.cost import conv_cost, elementwise_cost
from kernels.mbconv import mbconv_cost
from supernets.arch import Arch, BlockArch, StageArch
from supernets.bits import BitsDimension, bits_json_schema, parse_bits, validate_no_bits
from supernets.block_ops import OpDimension
from supernets.space import Choice, Dimension, SearchSpace, register_space
from supernets.supernet import Supernet

__all__ = ["OfaMbv3Space", "StageLayout", "Supernet"]

ACTIVATIONS = ("relu", "hswish")
CHANNEL_DIVISOR = 4


@dataclass(frozen=True)
class StageLayout:
    """Fixed geometry of one stage: base output channels, stride of its first block, SE, activation."""

    channels: int
    stride: int = 1
    se: bool = False
    act: str = "relu"


# Small MobileNetV3-like layout for 28x28 grey images; the stem halves the resolution.
DEFAULT_STAGES = (
    StageLayout(16, 1, False, "relu"),
    StageLayout(24, 2, True, "relu"),
    StageLayout(40, 2, False, "hswish"),
    StageLayout(64, 1, True, "hswish"),
)
DEFAULTS: dict[str, Any] = {
    "kernel_sizes": [3, 5, 7],
    "expand_ratios": [3, 4, 6],
    "depths": [2, 3, 4],
    "width_mults": [0.75, 1.0],
    "resolutions": None,  # the data's image size
    "bits": None,
    "stem_channels": 16,
    "stem_stride": 2,
    "head_channels": 128,
    "stages": None,
}


def _number(value: float) -> int | float:
    f = float(value)
    return int(f) if f.is_integer() else f


def scaled_channels(channels: int, width_mult: float) -> int:
    """Stage width at ``width_mult``: rounded to a multiple of 4, never below 90% of the exact value."""
    exact = channels * width_mult
    rounded = max(CHANNEL_DIVISOR, int(exact + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * exact else rounded


def _choice_list(config: dict[str, Any], key: str, *, kind: type, check: Any, rule: str) -> tuple[Any, ...]:
    value = config[key]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"search_space.{key} must be a non-empty list ({rule}), got {value!r}")
    try:
        items = tuple(sorted({_number(v) if kind is float else int(v) for v in value}))
    except (TypeError, ValueError):
        raise ValueError(f"search_space.{key} must hold numbers ({rule}), got {value!r}") from None
    if not all(check(v) for v in items):
        raise ValueError(f"search_space.{key} values must be {rule}, got {list(value)}")
    return items


def _stage_layouts(value: Any) -> tuple[StageLayout, ...]:
    if value is None:
        return DEFAULT_STAGES
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("search_space.stages must be a non-empty list of {channels, stride, se, act}")
    stages = []
    for i, s in enumerate(value):
        if not isinstance(s, dict) or set(s) - {"channels", "stride", "se", "act"} or "channels" not in s:
            raise ValueError(
                f"search_space.stages[{i}] must be a mapping with 'channels' and optional "
                f"'stride' (1|2), 'se' (bool), 'act' ({'|'.join(ACTIVATIONS)}); got {s!r}"
            )
        layout = StageLayout(
            int(s["channels"]), int(s.get("stride", 1)), bool(s.get("se", False)), s.get("act", "relu")
        )
        if layout.channels < 1 or layout.stride not in (1, 2) or layout.act not in ACTIVATIONS:
            raise ValueError(
                f"search_space.stages[{i}]: channels must be >= 1, stride 1 or 2, "
                f"act one of {ACTIVATIONS}; got {s!r}"
            )
        stages.append(layout)
    return tuple(stages)


@register_space("ofa-mbv3")
class OfaMbv3Space(SearchSpace):
    """Elastic kernel size, expand ratio, depth per stage, width per stage, and input resolution."""

    version = 1

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        kernel_sizes: tuple[int, ...] = (3, 5, 7),
        expand_ratios: tuple[int | float, ...] = (3, 4, 6),
        depths: tuple[int, ...] = (2, 3, 4),
        width_mults: tuple[float, ...] = (0.75, 1.0),
        resolutions: tuple[int, ...] | None = None,
        stem_channels: int = 16,
        stem_stride: int = 2,
        head_channels: int = 128,
        stages: tuple[StageLayout, ...] = DEFAULT_STAGES,
        bits: tuple[int, ...] | None = None,
    ) -> None:
        config = {
            "kernel_sizes": list(kernel_sizes),
            "expand_ratios": list(expand_ratios),
            "depths": list(depths),
            "width_mults": list(width_mults),
            "resolutions": list(resolutions) if resolutions is not None else [image_size],
        }
        self.kernel_sizes = _choice_list(
            config, "kernel_sizes", kind=int, check=lambda k: k % 2 == 1, rule="odd"
        )
        self.expand_ratios = _choice_list(
            config, "expand_ratios", kind=float, check=lambda e: e > 0, rule="> 0"
        )
        self.depths = _choice_list(config, "depths", kind=int, check=lambda d: d >= 1, rule=">= 1")
        self.width_mults = tuple(
            float(w)
            for w in _choice_list(config, "width_mults", kind=float, check=lambda w: w > 0, rule="> 0")
        )
        self.resolutions = _choice_list(
            config, "resolutions", kind=int, check=lambda r: r >= 4, rule=">= 4 pixels"
        )
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("image_size", image_size),
            ("stem_channels", stem_channels),
            ("head_channels", head_channels),
        ):
            if value < 1:
                raise ValueError(f"search_space.{name} must be >= 1, got {value}")
        if stem_stride not in (1, 2):
            raise ValueError(f"search_space.stem_stride must be 1 or 2, got {stem_stride}")
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, image_size
        self.stem_channels, self.stem_stride, self.head_channels = stem_channels, stem_stride, head_channels
        self.stages = tuple(stages)
        self.max_depth = max(self.depths)
        parsed = parse_bits(None if bits is None else list(bits))
        self.bits = None if parsed is None else BitsDimension(parsed, len(self.stages))
        # Blocks are MBConv unless a family searches their operator (``ofa-opchoice``).
        self.block_ops: OpDimension | None = None

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, in_channels: int, num_classes: int, image_size: int
    ) -> OfaMbv3Space:
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise ValueError(
                f"search_space has unknown fields {sorted(unknown)} for family ofa-mbv3; "
                f"allowed: {sorted(DEFAULTS)}"
            )
        c = {k: (DEFAULTS[k] if config.get(k) is None else config[k]) for k in DEFAULTS}
        bits = parse_bits(c["bits"])
        for key in ("stem_channels", "stem_stride", "head_channels"):
            if not isinstance(c[key], int) or isinstance(c[key], bool):
                raise ValueError(f"search_space.{key} must be an integer, got {c[key]!r}")
        for key in ("kernel_sizes", "expand_ratios", "depths", "width_mults", "resolutions"):
            if c[key] is not None and not isinstance(c[key], list | tuple):
                raise ValueError(f"search_space.{key} must be a list, got {c[key]!r}")
        return cls(
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            kernel_sizes=tuple(c["kernel_sizes"]),
            expand_ratios=tuple(c["expand_ratios"]),
            depths=tuple(c["depths"]),
            width_mults=tuple(c["width_mults"]),
            resolutions=None if c["resolutions"] is None else tuple(c["resolutions"]),
            stem_channels=c["stem_channels"],
            stem_stride=c["stem_stride"],
            head_channels=c["head_channels"],
            stages=_stage_layouts(c["stages"]),
            bits=bits,
        )

    @classmethod
    def config_json_schema(cls) -> dict[str, Any]:
        def num_list(item: dict[str, Any]) -> dict[str, Any]:
            return {"type": "array", "items": item, "minItems": 1}

        return {
            "type": "object",
            "properties": {
                "family": {"const": "ofa-mbv3"},
                "kernel_sizes": num_list({"type": "integer", "minimum": 1})
                | {"default": DEFAULTS["kernel_sizes"]},
                "expand_ratios": num_list({"type": "number", "exclusiveMinimum": 0})
                | {"default": DEFAULTS["expand_ratios"]},
                "depths": num_list({"type": "integer", "minimum": 1}) | {"default": DEFAULTS["depths"]},
                "width_mults": num_list({"type": "number", "exclusiveMinimum": 0})
                | {"default": DEFAULTS["width_mults"]},
                "resolutions": num_list({"type": "integer", "minimum": 4})
                | {"description": "input resolutions; default: the data's image size"},
                "bits": bits_json_schema(),
                "stem_channels": {"type": "integer", "minimum": 1, "default": DEFAULTS["stem_channels"]},
                "stem_stride": {"enum": [1, 2], "default": DEFAULTS["stem_stride"]},
                "head_channels": {"type": "integer", "minimum": 1, "default": DEFAULTS["head_channels"]},
                "stages": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "channels": {"type": "integer", "minimum": 1},
                            "stride": {"enum": [1, 2]},
                            "se": {"type": "boolean"},
                            "act": {"enum": list(ACTIVATIONS)},
                        },
                        "required": ["channels"],
                        "additionalProperties": False,
                    },
                    "default": [asdict(s) for s in DEFAULT_STAGES],
                },
            },
            "required": ["family"],
            "additionalProperties": False,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "version": self.version,
            "kernel_sizes": list(self.kernel_sizes),
            "expand_ratios": list(self.expand_ratios),
            "depths": list(self.depths),
            "width_mults": list(self.width_mults),
            "resolutions": list(self.resolutions),
            "bits": None if self.bits is None else list(self.bits.options),
            "stem_channels": self.stem_channels,
            "stem_stride": self.stem_stride,
            "head_channels": self.head_channels,
            "stages": [asdict(s) for s in self.stages],
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
        }

    # -- geometry shared with the supernet -------------------------------------------------------

    def stage_width(self, stage: int, width_mult: float) -> int:
        return scaled_channels(self.stages[stage].channels, width_mult)

    def block_configs(self, arch: Arch) -> list[list[BlockConfig]]:
        """The active block configurations of every stage of ``arch`` (which must be valid)."""
        configs: list[list[BlockConfig]] = []
        in_ch = self.stem_channels
        for i, stage in enumerate(arch.stages):
            out_ch = self.stage_width(i, stage.width_mult)
            row = []
            for j, block in enumerate(stage.blocks):
                stride = self.stages[i].stride if j == 0 else 1
                row.append(BlockConfig(in_ch, out_ch, block.kernel_size, block.expand_ratio, stride))
                in_ch = out_ch
            configs.append(row)
        return configs

    # -- the architecture set ---------------------------------------------------------------------

    def _arch(self, resolution: int, stages: list[tuple[float, list[tuple[int, int | float]]]]) -> Arch:
        return Arch(
            family=self.family,
            resolution=int(resolution),
            stages=tuple(
                StageArch(blocks=tuple(BlockArch(int(k), _number(e)) for k, e in blocks), width_mult=float(w))
                for w, blocks in stages
            ),
            version=self.version,
        )

    def sample(self, rng: np.random.Generator) -> Arch:
        def pick(options: tuple[Any, ...]) -> Any:
            return options[int(rng.integers(len(options)))]

        resolution = pick(self.resolutions)
        stages = []
        for _ in self.stages:
            depth, width = pick(self.depths), pick(self.width_mults)
            stages.append(
                (width, [(pick(self.kernel_sizes), pick(self.expand_ratios)) for _ in range(depth)])
            )
        arch = self._arch(resolution, stages)
        if self.bits is not None:
            arch = self.bits.sample(arch, rng)
        return arch if self.block_ops is None else self.block_ops.sample(arch, rng)

    def largest(self) -> Arch:
        block = (self.kernel_sizes[-1], self.expand_ratios[-1])
        arch = self._arch(
            self.resolutions[-1], [(self.width_mults[-1], [block] * self.depths[-1])] * len(self.stages)
        )
        return self._first_ops(arch if self.bits is None else self.bits.largest(arch))

    def smallest(self) -> Arch:
        block = (self.kernel_sizes[0], self.expand_ratios[0])
        arch = self._arch(
            self.resolutions[0], [(self.width_mults[0], [block] * self.depths[0])] * len(self.stages)
        )
        return self._first_ops(arch if self.bits is None else self.bits.smallest(arch))

    def _first_ops(self, arch: Arch) -> Arch:
        return arch if self.block_ops is None else self.block_ops.first(arch)

    def validate(self, arch: Arch) -> None:
        def bad(what: str, value: Any, allowed: Any) -> ValueError:
            return ValueError(
                f"arch {arch.arch_hash} is not in this {self.family} space: {what} {value!r} not in {allowed}"
            )

        if arch.family != self.family or arch.version != self.version:
            raise bad("family/version", (arch.family, arch.version), (self.family, self.version))
        if arch.resolution not in self.resolutions:
            raise bad("resolution", arch.resolution, self.resolutions)
        if len(arch.stages) != len(self.stages):
            raise bad("number of stages", len(arch.stages), len(self.stages))
        if self.bits is None:
            validate_no_bits(arch, bad)
        else:
            self.bits.validate(arch, bad)
        if self.block_ops is not None:
            self.block_ops.validate(arch, bad)
        for i, stage in enumerate(arch.stages):
            if stage.depth not in self.depths:
                raise bad(f"stage {i} depth", stage.depth, self.depths)
            if stage.width_mult not in self.width_mults:
                raise bad(f"stage {i} width_mult", stage.width_mult, self.width_mults)
            for j, block in enumerate(stage.blocks):
                if block.kernel_size not in self.kernel_sizes:
                    raise bad(f"stage {i} block {j} kernel_size", block.kernel_size, self.kernel_sizes)
                if block.expand_ratio not in self.expand_ratios:
                    raise bad(f"stage {i} block {j} expand_ratio", block.expand_ratio, self.expand_ratios)
                if self.block_ops is None and block.op != "mbconv":
                    raise bad(f"stage {i} block {j} op", block.op, ["mbconv"])

    def size(self) -> int:
        per_block = len(self.kernel_sizes) * len(self.expand_ratios)
        if self.block_ops is not None:
            per_block *= len(self.block_ops.options)
        per_stage = len(self.width_mults) * sum(per_block**d for d in self.depths)
        total = len(self.resolutions) * per_stage ** len(self.stages)
        return total if self.bits is None else total * self.bits.size_factor()

    def typed_choices(self) -> tuple[Choice, ...]:
        out = [Choice("resolution", Dimension.RESOLUTION, self.resolutions)]
        for i in range(len(self.stages)):
            out.append(Choice(f"s{i}_depth", Dimension.DEPTH, self.depths))
            out.append(Choice(f"s{i}_width", Dimension.WIDTH, self.width_mults))
            for j in range(self.max_depth):
                out.append(Choice(f"s{i}_b{j}_ks", Dimension.KERNEL, self.kernel_sizes))
                out.append(Choice(f"s{i}_b{j}_e", Dimension.EXPAND, self.expand_ratios))
        if self.bits is not None:
            out += self.bits.typed_choices()
        if self.block_ops is not None:
            out += self.block_ops.typed_choices()
        return tuple(out)

    def arch_from_choices(self, values: dict[str, Any]) -> Arch:
        def get(key: str) -> Any:
            if key not in values:
                raise ValueError(f"choices lack {key!r}; expected the keys of choices()")
            return values[key]

        stages = []
        for i in range(len(self.stages)):
            depth = int(get(f"s{i}_depth"))
            blocks = [(get(f"s{i}_b{j}_ks"), get(f"s{i}_b{j}_e")) for j in range(min(depth, self.max_depth))]
            stages.append((get(f"s{i}_width"), blocks))
        arch = self._arch(get("resolution"), stages)
        if self.bits is not None:
            arch = self.bits.apply_choices(arch, values)
        if self.block_ops is not None:
            arch = self.block_ops.apply_choices(arch, values)
        self.validate(arch)
        return arch

    def choices_of(self, arch: Arch) -> dict[str, Any]:
        self.validate(arch)
        out: dict[str, Any] = {"resolution": arch.resolution}
        for i, stage in enumerate(arch.stages):
            out[f"s{i}_depth"] = stage.depth
            out[f"s{i}_width"] = stage.width_mult
            for j in range(self.max_depth):
                block = stage.blocks[j] if j < stage.depth else None
                out[f"s{i}_b{j}_ks"] = block.kernel_size if block else self.kernel_sizes[0]
                out[f"s{i}_b{j}_e"] = block.expand_ratio if block else self.expand_ratios[0]
        if self.bits is not None:
            out.update(self.bits.choices_of(arch))
        if self.block_ops is not None:
            out.update(self.block_ops.choices_of(arch))
        return out

    # -- costs ------------------------------------------------------------------------------------

    def layer_costs(self, arch: Arch) -> list[tuple[str, BlockCost]]:
        stem, hw = conv_cost(
            in_channels=self.in_channels,
            out_channels=self.stem_channels,
            kernel=(3, 3),
            in_hw=(arch.resolution, arch.resolution),
            stride=self.stem_stride,
        )
        out = [("stem", stem + elementwise_cost(self.stem_channels, hw))]
        configs = self.block_configs(arch)
        for i, row in enumerate(configs):
            for j in range(self.max_depth):
                if j < len(row):
                    out.append((f"s{i}_b{j}", self.block_cost(i, j, row[j], hw, arch.stages[i].blocks[j].op)))
                    hw = ((hw[0] - 1) // row[j].stride + 1, (hw[1] - 1) // row[j].stride + 1)
                else:
                    out.append((f"s{i}_b{j}", ZERO_COST))
        last = configs[-1][-1].out_channels
        conv, _ = conv_cost(in_channels=last, out_channels=self.head_channels, kernel=(1, 1), in_hw=hw)
        fc, _ = conv_cost(
            in_channels=self.head_channels, out_channels=self.num_classes, kernel=(1, 1), in_hw=(1, 1)
        )
        head = conv + elementwise_cost(self.head_channels, hw, reads=2, writes=1) + fc
        out.append(("head", head))
        return out

    def block_cost(
        self, stage: int, index: int, config: BlockConfig, input_hw: tuple[int, int], op: str
    ) -> BlockCost:
        """Deploy-form cost of block ``index`` of ``stage`` (``op``; in ``ofa-mbv3`` always MBConv)."""
        return mbconv_cost(config, input_hw=input_hw, use_se=self.stages[stage].se, residual=index > 0)

    def build_supernet(self, *, mean: tuple[float, ...], std: tuple[float, ...]) -> Supernet:
        from supernets.ofa_mbv3_net import OfaMbv3Supernet

        net = OfaMbv3Supernet(space=self, mean=mean, std=std)
        if self.bits is not None:
            import torch

            from supernets.quant import attach_quantizers

            example = torch.zeros(1, self.in_channels, self.image_size, self.image_size)
            attach_quantizers(net, net.blocks, self.bits.options, lambda: net.active_arch, example)
        return net

    def __repr__(self) -> str:
        return f"OfaMbv3Space(size={self.size():.3g}, {self.describe()})"
