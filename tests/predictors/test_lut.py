from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels.fuse import reparameterize_model
from predictors import LookupTableLatency, Predictor, model_units
from predictors.lut import unit_key
from supernets import SearchSpace, Supernet
from tests.predictors.conftest import unique_archs


@pytest.fixture(scope="module")
def supernet(tiny_space: SearchSpace) -> Supernet:
    torch.manual_seed(0)
    return tiny_space.build_supernet(mean=(0.5,), std=(0.25,))


def test_units_cover_the_forward_pass(tiny_space: SearchSpace, supernet: Supernet) -> None:
    arch = tiny_space.largest()
    model = reparameterize_model(supernet.extract(arch).eval())
    units = model_units(model, (1, 16, 16))
    assert len(units) == len(list(model.children()))
    # Chaining the units on their recorded shapes reproduces the model's output.
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        h = x
        for module, shape in units:
            assert tuple(h.shape[1:]) == shape
            h = module(h)
        torch.testing.assert_close(h, model(x))


def test_lut_sums_its_table_and_reuses_entries(tiny_space: SearchSpace, supernet: Supernet) -> None:
    archs = unique_archs(tiny_space, 3, seed=2)
    lut = LookupTableLatency(
        space=tiny_space, supernet=supernet, profile="cpu-fp32", input_shape=(1, 16, 16), warmup=1, repeats=3
    )
    lut.fit(archs, np.ones(3))
    measured = lut.n_measured
    assert measured == len(lut.table) > 0
    pred = lut.predict(archs)
    assert lut.n_measured == measured  # nothing measured twice
    model = reparameterize_model(supernet.extract(archs[0]).eval())
    expected = sum(lut.table[unit_key(m, s)] for m, s in model_units(model, (1, 16, 16)))
    assert pred[0] == pytest.approx(expected)
    loaded = Predictor.from_bytes(lut.to_bytes(), space=tiny_space, supernet=supernet)
    assert isinstance(loaded, LookupTableLatency) and loaded.table == lut.table
    np.testing.assert_allclose(loaded.predict(archs), pred)
    assert loaded.n_measured == 0


def test_lut_rejects_bad_input_shape(tiny_space: SearchSpace, supernet: Supernet) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        LookupTableLatency(space=tiny_space, supernet=supernet, profile="cpu-fp32", input_shape=(16, 16))
