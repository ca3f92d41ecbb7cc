"""Datasets: loading, a seeded train/val/test split, and the hash that identifies them."""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import torch

from nas.sources import SourceError, SourcePolicy, check_source

FASHION_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)


# Built-in datasets and their geometry (channels, classes, image size), known without reading them.
BUILTIN_SHAPES: dict[str, tuple[int, int, int]] = {"fashion-mnist": (1, 10, 28)}


class DatasetError(ValueError):
    """The dataset a job names cannot be loaded; the message says what to fix."""


@dataclass(frozen=True)
class DatasetSplits:
    """Images as float32 in [0, 1], shape (N, C, H, W); labels as int64."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    sha256: str

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(float(m) for m in self.train_x.mean(dim=(0, 2, 3)))

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.train_x.std(dim=(0, 2, 3)))

    def calibration_images(self, n: int, *, seed: int) -> torch.Tensor:
        """A fixed, seeded subset of training images for BatchNorm recalibration."""
        n = min(n, len(self.train_x))
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self.train_x), generator=g)[:n]
        return self.train_x[idx]


def _read_idx(raw: bytes) -> np.ndarray:
    """Parse an IDX file (the MNIST family's format) into a uint8 array."""
    (magic,) = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims).copy()


def _to_images(x: np.ndarray) -> torch.Tensor:
    """uint8 N,H,W[,C] -> float32 N,C,H,W in [0, 1]."""
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(f"images must have shape (N, H, W) or (N, H, W, C), got {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)


def _load_builtin(name: str, data_dir: Path) -> tuple[dict[str, np.ndarray], str, tuple[str, ...]]:
    if name not in BUILTIN_SHAPES:
        raise DatasetError(f"unknown built-in dataset {name!r}; available: {', '.join(BUILTIN_SHAPES)}")
    folder = data_dir / "fashion-mnist"
    h = hashlib.sha256()
    arrays: dict[str, np.ndarray] = {}
    for key, fname in FASHION_MNIST_FILES.items():
        path = folder / fname
        if not path.exists():
            raise DatasetError(
                f"Fashion-MNIST file {path} is missing: install Debian's package "
                "'dataset-fashion-mnist' (make setup does) or set NAS_DATA_DIR"
            )
        raw = gzip.decompress(path.read_bytes())
        h.update(raw)
        arrays[key] = _read_idx(raw)
    return arrays, h.hexdigest(), FASHION_MNIST_CLASSES


def read_source(uri: str, policy: SourcePolicy) -> bytes:
    """The bytes of a dataset file the policy allows, never more than ``policy.max_bytes``."""
    try:
        target = check_source(uri, policy, want="file")
    except SourceError as exc:
        raise DatasetError(str(exc)) from exc
    try:
        with fsspec.open(target, "rb") as f:
            raw: bytes = f.read(policy.max_bytes + 1)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read npz dataset {uri!r}: {exc}") from exc
    if len(raw) > policy.max_bytes:
        raise DatasetError(f"dataset {uri!r} is larger than the limit of {policy.max_bytes} bytes")
    return raw


def _load_npz(uri: str, policy: SourcePolicy) -> tuple[dict[str, np.ndarray], str, tuple[str, ...]]:
    raw = read_source(uri, policy)
    import io

    with np.load(io.BytesIO(raw)) as npz:
        if "x" not in npz or "y" not in npz:
            raise DatasetError(f"npz dataset {uri!r} needs arrays 'x' (uint8 N,H,W[,C]) and 'y' (int labels)")
        x, y = npz["x"], npz["y"]
    if x.dtype != np.uint8:
        raise DatasetError(f"npz 'x' must be uint8 images, got {x.dtype}")
    if len(x) != len(y):
        raise DatasetError(f"npz 'x' has {len(x)} images but 'y' has {len(y)} labels")
    n_classes = int(y.max()) + 1
    return {"all_x": x, "all_y": y}, hashlib.sha256(raw).hexdigest(), tuple(str(i) for i in range(n_classes))


def load_dataset(
    spec: dict[str, Any],
    *,
    data_dir: Path,
    seed: int,
    val_fraction: float = 0.1,
    sources: SourcePolicy | None = None,
) -> DatasetSplits:
    """Load the dataset a job spec names and split it, reproducibly for a given seed.

    Built-in Fashion-MNIST keeps its official test set; the validation split is a
    seeded ``val_fraction`` of the training images (``spec["val_fraction"]`` when given).
    ``spec["limit"]`` caps the number of images in every split (for small jobs). A dataset URI
    must pass ``sources`` (default: local files under ``data_dir`` only; the service passes its
    settings' policy).
    """
    kind = spec.get("kind", "builtin")
    if spec.get("val_fraction") is not None:  # the job's own (``DatasetSpec.val_fraction``)
        val_fraction = float(spec["val_fraction"])
    policy = sources if sources is not None else SourcePolicy.local(data_dir)
    if kind == "builtin":
        arrays, digest, classes = _load_builtin(str(spec.get("name")), data_dir)
        train_x, train_y = arrays["train_x"], arrays["train_y"]
        test_x, test_y = arrays["test_x"], arrays["test_y"]
        name = str(spec.get("name"))
    elif kind == "npz":
        arrays, digest, classes = _load_npz(str(spec.get("uri")), policy)
        x, y = arrays["all_x"], arrays["all_y"]
        perm = np.random.default_rng(seed).permutation(len(x))
        n_test = max(1, round(len(x) * 0.15))
        test_x, test_y = x[perm[:n_test]], y[perm[:n_test]]
        train_x, train_y = x[perm[n_test:]], y[perm[n_test:]]
        name = str(spec.get("uri"))
    else:
        raise DatasetError(f"dataset kind {kind!r} is not supported; use 'builtin' or 'npz'")

    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(train_x))
    n_val = max(1, round(len(train_x) * val_fraction))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    limit = spec.get("limit")
    if limit is not None:
        limit = int(limit)
        train_idx, val_idx = train_idx[:limit], val_idx[:limit]
        test_x, test_y = test_x[:limit], test_y[:limit]

    split_id = hashlib.sha256(f"{digest}:{seed}:{val_fraction}:{limit}".encode()).hexdigest()
    return DatasetSplits(
        name=name,
        train_x=_to_images(train_x[train_idx]),
        train_y=torch.from_numpy(train_y[train_idx].astype(np.int64)),
        val_x=_to_images(train_x[val_idx]),
        val_y=torch.from_numpy(train_y[val_idx].astype(np.int64)),
        test_x=_to_images(test_x),
        test_y=torch.from_numpy(test_y.astype(np.int64)),
        num_classes=len(classes),
        class_names=classes,
        sha256=split_id,
    )


def npz_geometry(uri: str, policy: SourcePolicy) -> tuple[int, int, int]:
    """(channels, classes, image size) of an ``.npz`` dataset, from the array headers and labels only.

    The images are not read: ``x``'s shape and dtype come from its ``.npy`` header.
    """
    import zipfile

    from numpy.lib import format as npy

    try:
        target = check_source(uri, policy, want="file")
    except SourceError as exc:
        raise DatasetError(str(exc)) from exc
    try:
        with fsspec.open(target, "rb") as f, zipfile.ZipFile(f) as zf:
            names = set(zf.namelist())
            if "x.npy" not in names or "y.npy" not in names:
                raise DatasetError(
                    f"npz dataset {uri!r} needs arrays 'x' (uint8 N,H,W[,C]) and 'y' (int labels)"
                )
            with zf.open("x.npy") as xf:
                version = npy.read_magic(xf)
                read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _, dtype = read_header(xf)
            with zf.open("y.npy") as yf:
                y = npy.read_array(yf, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read npz dataset {uri!r}: {exc}") from exc
    if np.dtype(dtype) != np.uint8:
        raise DatasetError(f"npz 'x' must be uint8 images, got {np.dtype(dtype)}")
    if len(shape) not in (3, 4) or 0 in shape:
        raise DatasetError(f"npz 'x' must have shape (N, H, W) or (N, H, W, C), got {shape}")
    if y.ndim != 1 or len(y) != shape[0] or not np.issubdtype(y.dtype, np.integer) or len(y) == 0:
        raise DatasetError(f"npz 'y' must hold one integer label per image ({shape[0]}), got {y.shape}")
    if int(y.min()) < 0:
        raise DatasetError("npz 'y' labels must be >= 0")
    channels = 1 if len(shape) == 3 else int(shape[3])
    return channels, int(y.max()) + 1, int(shape[2])
