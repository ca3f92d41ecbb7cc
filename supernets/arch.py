"""The architecture encoding: a frozen, hashable description of one subnet."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BlockArch:
    """Choices for one active block: its type in the kernel registry, kernel size, expand ratio."""

    kernel_size: int
    expand_ratio: float
    op: str = "mbconv"


@dataclass(frozen=True)
class StageArch:
    """One stage: its active blocks (depth = number of blocks), output width and bit-width.

    ``downsample`` names the layer that halves the resolution in front of the stage's first block
    (``"max"``, ``"avg"``, ``"conv"``) in families that search where to downsample; ``None`` where a
    family downsamples inside its blocks (and then it is left out of the encoding, keeping old hashes).
    """

    blocks: tuple[BlockArch, ...]
    width_mult: float = 1.0
    bits: int | None = None
    downsample: str | None = None

    @property
    def depth(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class Arch:
    """A subnet of a search-space family; ``arch_hash`` identifies it across jobs."""

    family: str
    resolution: int
    stages: tuple[StageArch, ...]
    version: int = 1
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "version": self.version,
            "resolution": self.resolution,
            "stages": [_stage_dict(s) for s in self.stages],
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Arch:
        try:
            stages = tuple(
                StageArch(
                    blocks=tuple(
                        BlockArch(
                            kernel_size=int(b["kernel_size"]),
                            expand_ratio=_number(b["expand_ratio"]),
                            op=str(b.get("op", "mbconv")),
                        )
                        for b in s["blocks"]
                    ),
                    width_mult=float(s.get("width_mult", 1.0)),
                    bits=None if s.get("bits") is None else int(s["bits"]),
                    downsample=None if s.get("downsample") is None else str(s["downsample"]),
                )
                for s in data["stages"]
            )
            return cls(
                family=str(data["family"]),
                resolution=int(data["resolution"]),
                stages=stages,
                version=int(data.get("version", 1)),
                extra=tuple(sorted(dict(data.get("extra") or {}).items())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid architecture encoding: {exc!r}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Arch:
        return cls.from_dict(json.loads(text))

    @property
    def arch_hash(self) -> str:
        """Stable identity: sha256 of the canonical JSON, 16 hex digits."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)


def _stage_dict(stage: StageArch) -> dict[str, Any]:
    out: dict[str, Any] = {
        "width_mult": stage.width_mult,
        "bits": stage.bits,
        "blocks": [
            {"kernel_size": b.kernel_size, "expand_ratio": b.expand_ratio, "op": b.op} for b in stage.blocks
        ],
    }
    if stage.downsample is not None:  # omitted when unset: existing hashes stay as they were
        out["downsample"] = stage.downsample
    return out


def _number(value: Any) -> float:
    """Expand ratios are written as ints when whole, so 4 and 4.0 hash the same."""
    f = float(value)
    return int(f) if f.is_integer() else f
