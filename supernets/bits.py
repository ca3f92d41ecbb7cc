"""Bit-width as a searched dimension, shared by every family: one ``bits@stage{i}`` choice per stage.

A family that accepts ``search_space.bits`` keeps a :class:`BitsDimension` and calls it from its
``sample``/``largest``/``smallest``/``validate``/``size``/``typed_choices``/``arch_from_choices``/
``choices_of``.
Weights and activations of a stage share one bit-width; ``32`` means float (no quantization).
Without a bits dimension every ``StageArch.bits`` stays ``None``, so existing hashes do not change.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from supernets.arch import Arch
from supernets.space import Choice, Dimension

ALLOWED_BITS = (4, 6, 8, 32)
FLOAT_BITS = 32


def parse_bits(value: Any) -> tuple[int, ...] | None:
    """The sorted bit-widths a ``search_space.bits`` value names, or ``None`` for no bits dimension."""
    if value is None:
        return None
    rule = f"a non-empty list of distinct bit-widths from {list(ALLOWED_BITS)} (32 = float)"
    if not isinstance(value, list | tuple) or len(value) == 0:
        raise ValueError(f"search_space.bits must be {rule}, got {value!r}")
    if any(isinstance(b, bool) or not isinstance(b, int) for b in value):
        raise ValueError(f"search_space.bits must be {rule}, got {list(value)!r}")
    bad = [b for b in value if b not in ALLOWED_BITS]
    if bad:
        raise ValueError(f"search_space.bits: {bad} not supported; use {rule}")
    if len(set(value)) != len(value):
        raise ValueError(f"search_space.bits lists a bit-width twice: {list(value)}")
    return tuple(sorted(int(b) for b in value))


def bits_json_schema() -> dict[str, Any]:
    """JSON schema of ``search_space.bits`` (for every family that accepts it)."""
    return {
        "anyOf": [
            {
                "type": "array",
                "items": {"enum": list(ALLOWED_BITS)},
                "minItems": 1,
                "uniqueItems": True,
            },
            {"type": "null"},
        ],
        "default": None,
        "description": "bit-widths searched per stage (weights and activations); 32 means float",
    }


def bits_key(stage: int) -> str:
    return f"bits@stage{stage}"


def stage_bits(arch: Arch) -> tuple[int | None, ...]:
    return tuple(s.bits for s in arch.stages)


def with_bits(arch: Arch, bits: Sequence[int | None]) -> Arch:
    """``arch`` with stage ``i`` at ``bits[i]``."""
    if len(bits) != len(arch.stages):
        raise ValueError(f"need one bit-width per stage ({len(arch.stages)}), got {len(bits)}")
    stages = tuple(dataclasses.replace(s, bits=b) for s, b in zip(arch.stages, bits, strict=True))
    return dataclasses.replace(arch, stages=stages)


def is_float(bits: int | None) -> bool:
    return bits is None or bits >= FLOAT_BITS


class BitsDimension:
    """The per-stage bit-width choices of one space (``options`` sorted ascending)."""

    def __init__(self, options: Sequence[int], num_stages: int) -> None:
        parsed = parse_bits(list(options))
        assert parsed is not None
        self.options = parsed
        self.num_stages = num_stages

    @property
    def highest(self) -> int:
        return self.options[-1]

    @property
    def lowest(self) -> int:
        return self.options[0]

    def uniform(self, arch: Arch, bits: int) -> Arch:
        """``arch`` with every stage at ``bits``."""
        if bits not in self.options:
            raise ValueError(f"bit-width {bits} is not in this space's bits {list(self.options)}")
        return with_bits(arch, [bits] * len(arch.stages))

    def largest(self, arch: Arch) -> Arch:
        return self.uniform(arch, self.highest)

    def smallest(self, arch: Arch) -> Arch:
        return self.uniform(arch, self.lowest)

    def sample(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """``arch`` with a uniformly random bit-width per stage (draws after the architecture's draws)."""
        picks = [self.options[int(rng.integers(len(self.options)))] for _ in arch.stages]
        return with_bits(arch, picks)

    def size_factor(self) -> int:
        return len(self.options) ** self.num_stages

    def validate(self, arch: Arch, bad: Any) -> None:
        """Raise ``bad(what, value, allowed)`` for a stage whose bit-width is not an option."""
        for i, stage in enumerate(arch.stages):
            if stage.bits not in self.options:
                raise bad(f"stage {i} bits", stage.bits, list(self.options))

    def typed_choices(self) -> tuple[Choice, ...]:
        return tuple(Choice(bits_key(i), Dimension.BITS, self.options) for i in range(self.num_stages))

    def apply_choices(self, arch: Arch, values: dict[str, Any]) -> Arch:
        picks: list[int | None] = []
        for i in range(self.num_stages):
            key = bits_key(i)
            if key not in values:
                raise ValueError(f"choices lack {key!r}; expected the keys of choices()")
            picks.append(int(values[key]))
        return with_bits(arch, picks)

    def choices_of(self, arch: Arch) -> dict[str, Any]:
        return {bits_key(i): s.bits for i, s in enumerate(arch.stages)}


def validate_no_bits(arch: Arch, bad: Any) -> None:
    """For spaces without a bits dimension: every stage must be ``None``."""
    for i, stage in enumerate(arch.stages):
        if stage.bits is not None:
            raise bad(f"stage {i} bits", stage.bits, [None])


_STAGE_LAYER = re.compile(r"^s(\d+)_")


def size_bytes(space: Any, arch: Arch) -> int:
    """Bytes of the weights of ``arch`` stored at their bit-widths (float layers at 4 bytes).

    Every parameter of a layer position ``s{i}_...`` (``space.layer_costs`` names) counts at stage
    ``i``'s bit-width; the stem, the head and float stages count at 32 bits. Sub-8-bit stages count
    at their true size although they are deployed as int8.
    """
    bits_of = stage_bits(arch)
    total_bits = 0
    for name, cost in space.layer_costs(arch):
        match = _STAGE_LAYER.match(name)
        bits = bits_of[int(match.group(1))] if match and int(match.group(1)) < len(bits_of) else None
        total_bits += int(cost.params) * (FLOAT_BITS if is_float(bits) else int(bits))  # type: ignore[arg-type]
    return (total_bits + 7) // 8
