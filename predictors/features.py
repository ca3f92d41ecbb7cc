"""Fixed-length feature vectors for subnets: per-layer choices one-hot plus free cost statistics."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from kernels.base import BlockCost
from supernets.arch import Arch


class SpaceLike(Protocol):
    """The part of ``supernets.SearchSpace`` that feature extraction needs."""

    def choices(self) -> dict[str, list[Any]]: ...

    def choices_of(self, arch: Arch) -> dict[str, Any]: ...

    def layer_costs(self, arch: Arch) -> list[tuple[str, BlockCost]]: ...

    def largest(self) -> Arch: ...


def space_key(space: SpaceLike) -> str:
    """A short stable id of a search space's dimensions and layer positions."""
    layers = [name for name, _ in space.layer_costs(space.largest())]
    doc = json.dumps({"choices": space.choices(), "layers": layers}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Rows depend only on (space, arch): searches evaluate the same archs with several predictors and
# generations, so encoding each once is the largest saving in a predictor-only search.
_ROWS: dict[tuple[str, Arch], np.ndarray] = {}
_ROWS_MAX = 200_000


class FeatureEncoder:
    """Turns archs of one search space into rows of a float matrix with named columns."""

    def __init__(self, *, space: SpaceLike) -> None:
        self.space = space
        self.dims: list[tuple[str, list[Any]]] = sorted((k, list(v)) for k, v in space.choices().items())
        if not self.dims:
            raise ValueError("the search space reports no choices; cannot build features for it")
        self.layer_names = [name for name, _ in space.layer_costs(space.largest())]
        self.key = space_key(space)
        self.names = self._column_names()
        self._owners = self._owner_layers()
        # Precomputed layout of a row, so that encoding one arch is a few array writes.
        self._numeric = [all(_is_number(v) for v in values) for _, values in self.dims]
        self._index = [{v: i for i, v in enumerate(values)} for _, values in self.dims]
        self._offsets: list[int] = []
        offset = 0
        for (_, values), numeric in zip(self.dims, self._numeric, strict=True):
            self._offsets.append(offset)
            offset += len(values) + int(numeric)
        self._layers_offset = offset

    def _column_names(self) -> list[str]:
        names: list[str] = []
        for dim, values in self.dims:
            names += [f"{dim}={v}" for v in values]
            if all(_is_number(v) for v in values):
                names.append(f"{dim}#value")
        for layer in self.layer_names:
            names += [f"{layer}.macs", f"{layer}.params", f"{layer}.bytes"]
        names += ["total.macs", "total.params", "total.bytes", "total.active_layers", "resolution"]
        return names

    @property
    def n_features(self) -> int:
        return len(self.names)

    def free_stats(self, arch: Arch) -> dict[str, float]:
        """Costs known without measuring: total MACs, params, bytes moved."""
        total = BlockCost(0, 0, 0)
        for _, cost in self.space.layer_costs(arch):
            total = total + cost
        return {"macs": float(total.macs), "params": float(total.params), "bytes": float(total.bytes_moved)}

    def _owner_layers(self) -> list[int | None]:
        """For each dim, the layer position it configures (``s0_b2_ks`` -> ``s0_b2``), if any."""
        owners: list[int | None] = []
        for dim, _ in self.dims:
            hits = [i for i, layer in enumerate(self.layer_names) if dim.startswith(layer + "_")]
            owners.append(max(hits, key=lambda i: len(self.layer_names[i])) if hits else None)
        return owners

    def encode_one(self, arch: Arch) -> np.ndarray:
        """One row; choices of skipped layers (zero cost) are all-zero, not the space's filler value."""
        key = (self.key, arch)
        row = _ROWS.get(key)
        if row is None:
            row = self._encode(arch)
            row.setflags(write=False)
            if len(_ROWS) >= _ROWS_MAX:
                _ROWS.clear()
            _ROWS[key] = row
        return row

    def _encode(self, arch: Arch) -> np.ndarray:
        chosen = self.space.choices_of(arch)
        costs = self.space.layer_costs(arch)
        if [name for name, _ in costs] != self.layer_names:
            raise ValueError(
                "space.layer_costs(arch) returned different layer positions than for the largest arch; "
                "features need fixed positions (ZERO_COST for skipped blocks)"
            )
        per_layer = np.array([(c.macs, c.params, c.bytes_moved) for _, c in costs], dtype=np.float64)
        skipped = (per_layer[:, 0] == 0) & (per_layer[:, 1] == 0)
        row = np.zeros(self.n_features, dtype=np.float64)
        for d, ((dim, values), owner) in enumerate(zip(self.dims, self._owners, strict=True)):
            value = None if owner is not None and skipped[owner] else chosen.get(dim)
            offset = self._offsets[d]
            if value is not None:
                i = self._index[d].get(value)
                if i is not None:
                    row[offset + i] = 1.0
            if self._numeric[d] and isinstance(value, int | float):
                row[offset + len(values)] = float(value)
        start = self._layers_offset
        row[start : start + per_layer.size] = per_layer.ravel()
        start += per_layer.size
        row[start : start + 3] = per_layer.sum(axis=0)
        row[start + 3] = float(len(skipped) - skipped.sum())
        row[start + 4] = float(arch.resolution)
        return row

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """Feature matrix, one row per arch."""
        if len(archs) == 0:
            return np.zeros((0, self.n_features), dtype=np.float64)
        return np.stack([self.encode_one(a) for a in archs])
