"""Multi-objective search: Optuna studies on predictors, refined by real measurements."""

from __future__ import annotations

from nas.search.candidate import Candidate
from nas.search.evolve import evolve_on_predictors
from nas.search.exact import ExactCostPredictor
from nas.search.protocols import PredictorLike, SpaceLike, predict_values
from nas.search.refine import MeasuredPoint, RoundResult, SearchResult, record_measured, refine_search
from nas.search.select import select_candidates
from nas.search.study import ALGORITHMS, constraint_name, make_sampler, open_storage, search_with_optuna

__all__ = [
    "ALGORITHMS",
    "Candidate",
    "ExactCostPredictor",
    "MeasuredPoint",
    "PredictorLike",
    "RoundResult",
    "SearchResult",
    "SpaceLike",
    "constraint_name",
    "evolve_on_predictors",
    "make_sampler",
    "open_storage",
    "predict_values",
    "record_measured",
    "refine_search",
    "search_with_optuna",
    "select_candidates",
]
