"""The predictor contract: fit on measured subnets, predict for new ones, serialise atomically."""

from __future__ import annotations

import json
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from predictors.metrics import PredictorMetrics, evaluate_predictions
from supernets.arch import Arch

FORMAT_VERSION = 1

_KINDS: dict[str, type[Predictor]] = {}


@dataclass
class PredictorMetadata:
    """What a stored predictor is: its kind, target, space, format version, data size and quality."""

    kind: str
    target: str
    space_key: str
    version: int = FORMAT_VERSION
    n_samples: int = 0
    metrics: dict[str, float | int] = field(default_factory=dict)
    fitted_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Predictor(ABC):
    """Maps archs of one search space to a scalar objective (latency in ms, accuracy, ...).

    Subclasses set ``kind``, implement ``_fit``/``_predict``, and describe
    themselves by ``_config()`` (constructor keywords, JSON) and ``_get_state()``
    / ``_set_state()`` (fitted state, JSON), so every predictor round-trips
    through ``to_bytes``/``from_bytes`` without pickle. Collaborators that cannot
    be serialised (the search space, a supernet) are passed again when loading.
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    def __init__(self, *, target: str, space_key: str) -> None:
        if not target:
            raise ValueError("target must name what is predicted, e.g. 'latency_ms' or 'accuracy'")
        self.metadata = PredictorMetadata(kind=self.kind, target=target, space_key=space_key)

    @property
    def is_fitted(self) -> bool:
        return self.metadata.fitted_at is not None

    def fit(self, archs: Sequence[Arch], y: ArrayLike) -> Self:
        """Fit on measured subnets; returns self."""
        values = np.asarray(y, dtype=np.float64).ravel()
        if len(archs) != values.size:
            raise ValueError(f"got {len(archs)} archs but {values.size} target values; pass one per arch")
        if values.size == 0:
            raise ValueError("cannot fit a predictor on zero measured subnets")
        if not np.isfinite(values).all():
            raise ValueError("target values must be finite; drop failed measurements before fitting")
        self._fit(list(archs), values)
        self.metadata.n_samples = int(values.size)
        self.metadata.fitted_at = time.time()
        return self

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted target, one value per arch."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(archs, y) first")
        if len(archs) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self._predict(list(archs)), dtype=np.float64)

    def evaluate(self, archs: Sequence[Arch], y: ArrayLike) -> PredictorMetrics:
        """Quality on held-out subnets; also recorded in ``metadata.metrics``."""
        metrics = evaluate_predictions(y, self.predict(archs))
        self.metadata.metrics = metrics.to_dict()
        return metrics

    @abstractmethod
    def _fit(self, archs: list[Arch], y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, archs: list[Arch]) -> np.ndarray: ...

    @abstractmethod
    def _config(self) -> dict[str, Any]:
        """Constructor keywords (JSON-able, without collaborators) that rebuild this predictor."""

    @abstractmethod
    def _get_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None: ...

    def to_bytes(self) -> bytes:
        doc = {"metadata": self.metadata.to_dict(), "config": self._config(), "state": self._get_state()}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, **collaborators: Any) -> Predictor:
        """Rebuild a predictor of any registered kind; pass ``space=``/``supernet=`` as it needs."""
        try:
            doc = json.loads(data)
            meta = PredictorMetadata(**doc["metadata"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a serialised predictor: {exc!r}") from exc
        if meta.version > FORMAT_VERSION:
            raise ValueError(
                f"predictor format version {meta.version} is newer than this code's {FORMAT_VERSION}; "
                "upgrade the package to load it"
            )
        sub = _KINDS.get(meta.kind)
        if sub is None:
            raise ValueError(
                f"unknown predictor kind {meta.kind!r}; known kinds: {', '.join(sorted(_KINDS))}"
            )
        if cls is not Predictor and not issubclass(sub, cls):
            raise ValueError(f"data holds a {meta.kind!r} predictor, not a {cls.__name__}")
        obj = sub(**doc["config"], **collaborators)
        if obj.metadata.space_key != meta.space_key:
            raise ValueError(
                f"predictor was fitted on search space {meta.space_key}, but the space given has key "
                f"{obj.metadata.space_key}; pass the same search space it was fitted on"
            )
        obj._set_state(doc["state"])
        obj.metadata = meta
        return obj

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file in the same folder, then ``os.replace``)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.to_bytes())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], **collaborators: Any) -> Predictor:
        return cls.from_bytes(Path(path).read_bytes(), **collaborators)


def predictor_kinds() -> list[str]:
    return sorted(_KINDS)
