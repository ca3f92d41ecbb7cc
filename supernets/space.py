"""Search-space families: the abstract interface every family implements, and the family registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from kernels.base import ZERO_COST, BlockCost
from supernets.arch import Arch

if TYPE_CHECKING:
    from supernets.supernet import Supernet

# Keys of a search-space description that are set by the data, not by the job's search_space block.
DATA_KEYS = ("in_channels", "num_classes", "image_size")
# Schedules that train one weight-shared supernet (a family's default schedule is the first it lists).
SHARED_SUPERNET_SCHEDULES = ("sandwich", "progressive-shrinking", "deps", "standalone")


class Dimension(StrEnum):
    """What a flat choice sets; schedules read it (progressive shrinking frees dimensions by phase)."""

    RESOLUTION = "resolution"  # input image size
    KERNEL = "kernel"  # a block's kernel size
    EXPAND = "expand"  # a block's expand ratio
    DEPTH = "depth"  # blocks in a stage
    WIDTH = "width"  # a stage's width multiplier
    OPERATOR = "operator"  # a block's operator from the kernel registry
    BITS = "bits"  # a stage's bit-width
    DOWNSAMPLE_AT = "downsample-at"  # the blocks a network downsamples in front of
    DOWNSAMPLE_OP = "downsample-op"  # the layer that downsamples there


@dataclass(frozen=True)
class Choice:
    """One flat categorical choice of a space: its key (for Optuna), what it sets, its options in order."""

    key: str
    dimension: Dimension
    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a choice needs a non-empty key")
        if not isinstance(self.dimension, Dimension):
            raise ValueError(f"choice {self.key!r}: dimension must be a Dimension, got {self.dimension!r}")
        if len(self.options) == 0:
            raise ValueError(f"choice {self.key!r} has no options")
        object.__setattr__(self, "options", tuple(self.options))  # a list given: keep it immutable


class SearchSpace(ABC):
    """A family of subnets: sampling, mutation, validation, a flat categorical view, costs, the supernet."""

    family: str = ""
    version: int = 1
    # training schedules that can train this family's supernet; the first is the default
    schedules: ClassVar[tuple[str, ...]] = SHARED_SUPERNET_SCHEDULES

    @classmethod
    def check_options(cls, config: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the field if ``config`` (without ``family``) cannot be valid for
        any data; called at submission. Families whose checks need the data may leave it empty."""
        return None

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
    def typed_choices(self) -> tuple[Choice, ...]:
        """The space as flat categorical choices, each with the dimension it sets, in a fixed order."""

    def choices(self) -> dict[str, list[Any]]:
        """``typed_choices()`` as key -> options (what Optuna and the feature encoder read)."""
        return {c.key: list(c.options) for c in self.typed_choices()}

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


class ProductSpace(SearchSpace):
    """A family whose architectures are every combination of a few typed choices.

    The family supplies ``typed_choices()`` (options as JSON scalars, so Optuna can hold them),
    ``arch_of(values)`` and ``values_of(arch)``; sampling, size and an enumeration follow.
    Every combination must be a valid architecture.
    """

    @abstractmethod
    def arch_of(self, values: dict[str, Any]) -> Arch:
        """The architecture one option per dimension names."""

    @abstractmethod
    def values_of(self, arch: Arch) -> dict[str, Any]:
        """The option of every dimension ``arch`` takes (``arch`` is valid)."""

    def arch_from_choices(self, values: dict[str, Any]) -> Arch:
        picked = {}
        for key, options in self.choices().items():
            if key not in values:
                raise ValueError(f"choices lack {key!r}; expected the keys of choices()")
            if values[key] not in options:
                raise ValueError(f"choice {key}={values[key]!r} is not one of {options}")
            picked[key] = values[key]
        arch = self.arch_of(picked)
        self.validate(arch)
        return arch

    def choices_of(self, arch: Arch) -> dict[str, Any]:
        self.validate(arch)
        return self.values_of(arch)

    def size(self) -> int:
        n = 1
        for options in self.choices().values():
            n *= len(options)
        return n

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.arch_of({k: v[int(rng.integers(len(v)))] for k, v in self.choices().items()})

    def index(self, arch: Arch) -> int:
        """Position of ``arch`` in ``enumerate_archs()`` (mixed radix over the dimensions)."""
        values = self.choices_of(arch)
        i = 0
        for key, options in self.choices().items():
            i = i * len(options) + options.index(values[key])
        return i

    def arch_at(self, index: int) -> Arch:
        if not 0 <= index < self.size():
            raise ValueError(f"architecture index {index} is outside 0..{self.size() - 1}")
        values: dict[str, Any] = {}
        for key, options in reversed(list(self.choices().items())):
            index, r = divmod(index, len(options))
            values[key] = options[r]
        return self.arch_of(values)

    def enumerate_archs(self) -> list[Arch]:
        """Every architecture, in index order."""
        return [self.arch_at(i) for i in range(self.size())]


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
