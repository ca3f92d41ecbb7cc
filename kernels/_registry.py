"""Registry of elastic blocks, so supernet families can pick block types by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kernels.base import ElasticBlock

_BLOCKS: dict[str, type[ElasticBlock]] = {}

B = TypeVar("B", bound=type[ElasticBlock])


def register_block(name: str) -> Callable[[B], B]:
    """Class decorator: make an elastic block available as ``name``."""

    def wrap(cls: B) -> B:
        if name in _BLOCKS and _BLOCKS[name] is not cls:
            raise ValueError(f"block name {name!r} is already registered to {_BLOCKS[name].__name__}")
        _BLOCKS[name] = cls
        cls.block_name = name
        return cls

    return wrap


def get_block(name: str) -> type[ElasticBlock]:
    """The elastic block class registered as ``name``."""
    try:
        return _BLOCKS[name]
    except KeyError:
        known = ", ".join(sorted(_BLOCKS)) or "none"
        raise KeyError(f"unknown block {name!r}; registered blocks: {known}") from None


def list_blocks() -> list[str]:
    return sorted(_BLOCKS)
