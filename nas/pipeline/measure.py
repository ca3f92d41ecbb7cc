"""Stage 3: measure a seeded random sample of subnets and store the round-0 front."""

from __future__ import annotations

import numpy as np

from nas.pipeline.evaluate import measure_subnets
from nas.pipeline.objectives import job_front, reference_for, save_front
from nas.pipeline.state import JobState
from nas.store import crud
from supernets import Arch, ProductSpace

STAGE = "measure"
INITIAL_SHARE = 0.5  # of measure_budget spent on the random initial sample when searching
EXHAUSTIVE_UP_TO = 64  # enumerable spaces this small (or within the budget) are measured whole


def initial_sample_size(state: JobState) -> int:
    search = state.ctx.spec.search
    if search.rounds <= 0:
        return search.measure_budget
    return max(4, min(search.measure_budget, int(search.measure_budget * INITIAL_SHARE)))


def initial_sample(state: JobState) -> list[Arch]:
    """The seeded sample (largest and smallest first), or every arch of a small enough space."""
    space, spec = state.space, state.ctx.spec
    n = initial_sample_size(state)
    rng = np.random.default_rng(spec.seed)
    archs: dict[str, Arch] = {}
    if isinstance(space, ProductSpace) and space.size() <= max(spec.search.measure_budget, EXHAUSTIVE_UP_TO):
        # a space this small is searched exhaustively: every architecture is measured
        archs = {a.arch_hash: a for a in space.enumerate_archs()}
        n = len(archs)
    for arch in [space.largest(), space.smallest()]:
        archs.setdefault(arch.arch_hash, arch)
    tries = 0
    while len(archs) < n and tries < 50 * n:
        arch = space.sample(rng)
        archs.setdefault(arch.arch_hash, arch)
        tries += 1
    return list(archs.values())[:n]


def stored_reference(state: JobState) -> list[float] | None:
    """The reference point of the round-0 front an earlier attempt stored, if any."""
    with state.ctx.db.read() as s:
        for front in crud.front_history(s, job_id=state.ctx.job_id):
            if front.round == 0 and front.reference_point is not None:
                return list(front.reference_point)
    return None


def run_measure(state: JobState) -> None:
    """Measure the initial sample into the job's pool; fix the reference point (stored with round 0)."""
    records = measure_subnets(state, initial_sample(state), source="sample", stage=STAGE)
    reference = stored_reference(state)
    if reference is None:
        reference = reference_for(state, records)
        save_front(state, records, job_front(state, records, reference), round_no=0, final=False, stage=STAGE)
    state.reference = reference
