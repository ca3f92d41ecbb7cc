"""Search-space families: the abstract interface every family implements, and the family registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from kernels.base import ZERO_COST, BlockCost
from supernets.arch import Arch

if TYPE_CHECKING:
    from supernets.supernet import Supernet

# Keys of a search-space description that are set by the data, not by the job's search_space block.
DATA_KEYS = ("in_channels", "num_classes", "image_size")


class SearchSpace(ABC):
    """A family of subnets: sampling, mutation, validation, a flat categorical view, costs, the supernet."""

    family: str = ""
    version: int = 1

    @classmethod
    @abstractmethod
    def from_config(
        cls, config: dict[str, Any], *, in_channels: int, num_classes: int, image_size: int
    ) -> SearchSpace:
        """The space a job's ``search_space`` block (without ``family``) describes, for the given data."""

    @classmethod
    @abstractmethod
    def config_json_schema(cls) -> dict[str, Any]:
        """JSON schema of the family's ``search_space`` block."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able description; ``make_space(describe(), ...)`` rebuilds an equal space."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random choice in every dimension."""

    @abstractmethod
    def largest(self) -> Arch: ...

    @abstractmethod
    def smallest(self) -> Arch: ...

    @abstractmethod
    def validate(self, arch: Arch) -> None:
        """Raise ``ValueError`` saying what is wrong if ``arch`` is not in this space."""

    @abstractmethod
    def size(self) -> int:
        """Number of distinct architectures."""

    @abstractmethod
    def choices(self) -> dict[str, list[Any]]:
        """The space as flat categorical dimensions (for Optuna), in a fixed order."""

    @abstractmethod
    def arch_from_choices(self, values: dict[str, Any]) -> Arch:
        """The architecture a full set of flat choices names (choices of skipped blocks are ignored)."""

    @abstractmethod
    def choices_of(self, arch: Arch) -> dict[str, Any]:
        """Flat choices naming ``arch``; skipped blocks get a fixed filler value."""

    @abstractmethod
    def layer_costs(self, arch: Arch) -> list[tuple[str, BlockCost]]:
        """Cost of every possible layer position in a fixed order; skipped ones cost ``ZERO_COST``."""

    @abstractmethod
    def build_supernet(self, *, mean: tuple[float, ...], std: tuple[float, ...]) -> Supernet:
        """A freshly initialised supernet for this space whose inputs are normalised by ``mean``/``std``."""

    def contains(self, arch: Arch) -> bool:
        try:
            self.validate(arch)
        except ValueError:
            return False
        return True

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float) -> Arch:
        """``arch`` with each flat choice redrawn uniformly with probability ``prob``."""
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"mutation prob must be in [0, 1], got {prob}")
        values = self.choices_of(arch)
        for key, options in self.choices().items():
            redraw = rng.random() < prob
            pick = options[int(rng.integers(len(options)))]
            if redraw:
                values[key] = pick
        return self.arch_from_choices(values)

    def total_cost(self, arch: Arch) -> BlockCost:
        total = ZERO_COST
        for _, cost in self.layer_costs(arch):
            total = total + cost
        return total


_FAMILIES: dict[str, type[SearchSpace]] = {}

S = TypeVar("S", bound=type[SearchSpace])


def register_space(family: str) -> Callable[[S], S]:
    """Class decorator: make a search-space family available by name."""

    def wrap(cls: S) -> S:
        if family in _FAMILIES and _FAMILIES[family] is not cls:
            raise ValueError(f"family {family!r} is already registered to {_FAMILIES[family].__name__}")
        _FAMILIES[family] = cls
        cls.family = family
        return cls

    return wrap


def get_space_class(family: str) -> type[SearchSpace]:
    """The search-space class registered as ``family``."""
    try:
        return _FAMILIES[family]
    except KeyError:
        raise ValueError(
            f"unknown search_space.family {family!r}; "
            f"available families: {', '.join(list_families()) or 'none'}"
        ) from None


def list_families() -> list[str]:
    return sorted(_FAMILIES)


def make_space(config: dict[str, Any], *, in_channels: int, num_classes: int, image_size: int) -> SearchSpace:
    """The space a job's ``search_space`` block describes (``family`` plus the family's own fields).

    A description from ``SearchSpace.describe()`` is accepted too: its data keys must match the data.
    """
    if "family" not in config:
        raise ValueError(f"search_space needs a 'family'; available families: {', '.join(list_families())}")
    cls = get_space_class(str(config["family"]))
    rest = {k: v for k, v in config.items() if k not in ("family", "version")}
    given = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
    for key in DATA_KEYS:
        if key in rest:
            value = rest.pop(key)
            if value != given[key]:
                raise ValueError(
                    f"search_space.{key} is {value} but the dataset has {given[key]}; drop the key or fix it"
                )
    version = config.get("version", cls.version)
    if version != cls.version:
        raise ValueError(f"search_space.version {version} is not supported; {cls.family} is at {cls.version}")
    return cls.from_config(rest, in_channels=in_channels, num_classes=num_classes, image_size=image_size)
