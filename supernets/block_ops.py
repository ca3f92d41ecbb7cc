"""The operator of every block as a searched dimension: one ``s{i}_b{j}_op`` choice per block position.

A stage-of-blocks family (``ofa-mbv3`` and its subclasses) keeps an :class:`OpDimension` when its
blocks choose their operator from the kernel registry (``ofa-opchoice``), and calls it from its
``sample``/``largest``/``smallest``/``validate``/``size``/``typed_choices``/``arch_from_choices``/
``choices_of``, as :class:`supernets.bits.BitsDimension` is called for bit-widths. Without one,
every block is ``BlockArch.op``'s default, so existing hashes do not change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from supernets.arch import Arch
from supernets.space import Choice, Dimension


def op_key(stage: int, block: int) -> str:
    return f"s{stage}_b{block}_op"


def with_ops(arch: Arch, pick: Callable[[int, int], str]) -> Arch:
    """``arch`` with block ``j`` of stage ``i`` running operator ``pick(i, j)``."""
    stages = tuple(
        dataclasses.replace(
            s, blocks=tuple(dataclasses.replace(b, op=pick(i, j)) for j, b in enumerate(s.blocks))
        )
        for i, s in enumerate(arch.stages)
    )
    return dataclasses.replace(arch, stages=stages)


class OpDimension:
    """The operator choices of every block position of ``num_stages`` stages of up to ``max_depth``."""

    def __init__(self, options: Sequence[str], *, num_stages: int, max_depth: int) -> None:
        if not options or len(set(options)) != len(options):
            raise ValueError(f"operator options must be distinct and non-empty, got {list(options)}")
        self.options = tuple(str(op) for op in options)
        self.num_stages = num_stages
        self.max_depth = max_depth

    def first(self, arch: Arch) -> Arch:
        """``arch`` with every block as the first operator (the largest and smallest subnets use it)."""
        return with_ops(arch, lambda i, j: self.options[0])

    def sample(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """``arch`` with a uniformly random operator per block (drawn after the architecture's draws)."""
        return with_ops(arch, lambda i, j: self.options[int(rng.integers(len(self.options)))])

    def validate(self, arch: Arch, bad: Any) -> None:
        """Raise ``bad(what, value, allowed)`` for a block whose operator is not an option."""
        for i, stage in enumerate(arch.stages):
            for j, block in enumerate(stage.blocks):
                if block.op not in self.options:
                    raise bad(f"stage {i} block {j} op", block.op, list(self.options))

    def typed_choices(self) -> tuple[Choice, ...]:
        return tuple(
            Choice(op_key(i, j), Dimension.OPERATOR, self.options)
            for i in range(self.num_stages)
            for j in range(self.max_depth)
        )

    def apply_choices(self, arch: Arch, values: dict[str, Any]) -> Arch:
        """``arch`` with each present block's operator from ``values`` (skipped blocks' keys are ignored)."""

        def pick(i: int, j: int) -> str:
            key = op_key(i, j)
            if key not in values:
                raise ValueError(f"choices lack {key!r}; expected the keys of choices()")
            return str(values[key])

        return with_ops(arch, pick)

    def choices_of(self, arch: Arch) -> dict[str, Any]:
        """The operator of every block position; skipped blocks get the first operator as filler."""
        out: dict[str, Any] = {}
        for i, stage in enumerate(arch.stages):
            for j in range(self.max_depth):
                out[op_key(i, j)] = stage.blocks[j].op if j < stage.depth else self.options[0]
        return out
