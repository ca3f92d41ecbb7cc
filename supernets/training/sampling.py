"""Trainer hooks: which subnets anchor every step, and how a step's subnets are drawn.

A weight-sharing schedule trains, at each step, its *anchors* (a teacher that learns from the
labels and whose detached predictions every other subnet distils from, plus subnets trained at
every step beside it) and ``num_random_subnets`` subnets a :class:`SubnetSampler` draws. Both are
picked by name from the job's ``training`` block (``anchors``, ``sampler``) through one registry,
so a family or a dimension (a mixture of supernets, bit-widths) plugs in a policy of its own by
registering it, without editing the schedules.

A sampler is of a *kind* (a subclass of :class:`Sampler`) and a schedule draws with one kind
(``Trainer.sampler_kind``): sandwich and DεpS with a :class:`SubnetSampler` (``n`` subnets a
step), the balanced mixture with a ``MixtureSampler`` (a configuration and the member that trains
it, ``supernets/training/mixture_sampler.py``). ``samplers_of(kind)`` lists the names a schedule
can take; the first is its default. ``bind(trainer)`` hands a sampler the trainer whose state it
reads (the mixture reads the supernet's accuracy estimates and the step).

Anchors come from the space's own ``largest()`` and ``smallest()``, so a quantization-aware space
anchors on the float largest and the lowest-bit smallest. Samplers draw only from the trainer's
generator, which is part of its checkpoint, so training resumes bit-exactly with any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

import numpy as np

from supernets.arch import Arch
from supernets.space import SearchSpace

if TYPE_CHECKING:
    from supernets.training.base import Trainer


@dataclass(frozen=True)
class Anchors:
    """The subnets a step always trains: ``teacher`` from the labels, ``students`` beside it."""

    teacher: Arch
    students: tuple[Arch, ...]


class AnchorPolicy(ABC):
    """Which subnets every step of a sandwich-like schedule trains and distils from."""

    name: ClassVar[str] = ""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    @abstractmethod
    def anchors(self) -> Anchors:
        """The step's anchors (fixed for a space; asked once per step, so they may depend on state)."""


class Sampler:
    """How a schedule's subnets are drawn; a subclass per kind of draw (see the module docstring)."""

    name: ClassVar[str] = ""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def bind(self, trainer: Trainer) -> None:
        """Called once by the trainer that draws with this sampler, at the end of its base setup."""
        return None


class SubnetSampler(Sampler, ABC):
    """How the random subnets of a step are drawn from the space."""

    @abstractmethod
    def draw(self, rng: np.random.Generator, n: int) -> list[Arch]:
        """``n`` subnets drawn with ``rng`` only (the trainer's generator, saved with its state)."""


_ANCHORS: dict[str, type[AnchorPolicy]] = {}
_SAMPLERS: dict[str, type[Sampler]] = {}

A = TypeVar("A", bound=type[AnchorPolicy])
S = TypeVar("S", bound=type[Sampler])


def register_anchors(name: str) -> Callable[[A], A]:
    """Class decorator: an anchor policy selectable as ``training.anchors: NAME``."""

    def wrap(cls: A) -> A:
        _register(_ANCHORS, "anchors", name, cls)
        return cls

    return wrap


def register_sampler(name: str) -> Callable[[S], S]:
    """Class decorator: a subnet sampler selectable as ``training.sampler: NAME``."""

    def wrap(cls: S) -> S:
        _register(_SAMPLERS, "sampler", name, cls)
        return cls

    return wrap


def _register(table: dict[str, type], knob: str, name: str, cls: type) -> None:
    if name in table and table[name] is not cls:
        raise ValueError(f"training.{knob} {name!r} is already registered to {table[name].__name__}")
    table[name] = cls
    cls.name = name  # type: ignore[attr-defined]


def anchor_policies() -> tuple[str, ...]:
    """Names ``training.anchors`` may take; the first is the default."""
    return tuple(_ANCHORS)


def samplers() -> tuple[str, ...]:
    """Names ``training.sampler`` may take (of every kind)."""
    return tuple(_SAMPLERS)


def samplers_of(kind: type[Sampler]) -> tuple[str, ...]:
    """Names of the samplers of ``kind`` (what a schedule drawing with ``kind`` takes); the first is
    its default."""
    return tuple(name for name, cls in _SAMPLERS.items() if issubclass(cls, kind))


def _lookup(table: dict[str, type], knob: str, name: str) -> type:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown training.{knob} {name!r}; choose one of {', '.join(table)}") from None


def make_anchors(name: str, space: SearchSpace) -> AnchorPolicy:
    cls: type[AnchorPolicy] = _lookup(_ANCHORS, "anchors", name)
    return cls(space)


def make_sampler(name: str, space: SearchSpace) -> Sampler:
    cls: type[Sampler] = _lookup(_SAMPLERS, "sampler", name)
    return cls(space)


# -- anchor policies ----------------------------------------------------------------------------------


@register_anchors("sandwich")
class SandwichAnchors(AnchorPolicy):
    """BigNAS's sandwich: the largest teaches, the smallest is trained at every step beside it."""

    def anchors(self) -> Anchors:
        return Anchors(self.space.largest(), (self.space.smallest(),))


@register_anchors("largest")
class LargestAnchors(AnchorPolicy):
    """Only the largest at every step; the smallest is trained when the sampler draws it."""

    def anchors(self) -> Anchors:
        return Anchors(self.space.largest(), ())


# -- samplers -----------------------------------------------------------------------------------------


@register_sampler("uniform")
class UniformSampler(SubnetSampler):
    """Every dimension uniformly and independently (``space.sample``), the BigNAS default."""

    def draw(self, rng: np.random.Generator, n: int) -> list[Arch]:
        return [self.space.sample(rng) for _ in range(n)]


MAX_TRIES = 256


@register_sampler("flops-stratified")
class FlopsStratifiedSampler(SubnetSampler):
    """One subnet per FLOPs stratum, AttentiveNAS-style: the whole complexity range every step.

    The log-FLOPs from the smallest's to the largest's are cut into ``n`` strata of equal
    width, and the ``i``-th subnet of a step is drawn uniformly, by rejection, from the subnets
    in stratum ``i`` (after ``MAX_TRIES`` misses, the candidate nearest the stratum's middle).
    Equal widths in FLOPs itself are out of reach by rejection: uniform draws of the demo's
    space never came within 40% of the largest's FLOPs in 2,000 tries, and fewer than 1% fell
    in the upper half of the range, so the strata are geometric.
    """

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        self.low = float(np.log(space.total_cost(space.smallest()).flops))
        self.high = float(np.log(space.total_cost(space.largest()).flops))

    def stratum(self, i: int, n: int) -> tuple[float, float]:
        """FLOPs bounds of stratum ``i`` of ``n`` (the ends open, so every subnet is in one)."""
        width = (self.high - self.low) / n
        lo = 0.0 if i == 0 else float(np.exp(self.low + i * width))
        hi = np.inf if i == n - 1 else float(np.exp(self.low + (i + 1) * width))
        return lo, hi

    def draw(self, rng: np.random.Generator, n: int) -> list[Arch]:
        out: list[Arch] = []
        for i in range(n):
            lo, hi = self.stratum(i, n)
            middle = self.low + (i + 0.5) * (self.high - self.low) / n
            best: tuple[float, Arch] | None = None
            for _ in range(MAX_TRIES):
                arch = self.space.sample(rng)
                flops = float(self.space.total_cost(arch).flops)
                if lo <= flops < hi:
                    best = (0.0, arch)
                    break
                miss = abs(float(np.log(max(flops, 1.0))) - middle)
                if best is None or miss < best[0]:
                    best = (miss, arch)
            assert best is not None
            out.append(best[1])
        return out
