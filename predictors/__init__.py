"""Hardware profiles, the latency measurement protocol, and latency/accuracy predictors."""

from __future__ import annotations

from predictors.accuracy import XGBAccuracyPredictor
from predictors.adaptive import propose_adaptive
from predictors.base import Predictor, PredictorMetadata, predictor_kinds
from predictors.features import FeatureEncoder, space_key
from predictors.flops_baseline import FlopsLatencyPredictor
from predictors.hardware import (
    PROFILES,
    HardwareProfile,
    detect_profiles,
    environment,
    get_profile,
    resource_name,
)
from predictors.latency import XGBLatencyPredictor
from predictors.lut import LookupTableLatency, model_units
from predictors.measure import LatencyStats, measure_latency, pinned_threads, prepare_for_profile
from predictors.metrics import PredictorMetrics, evaluate_predictions
from predictors.reference import ReferenceClock, build_reference_net, reference_clock

__all__ = [
    "PROFILES",
    "FeatureEncoder",
    "FlopsLatencyPredictor",
    "HardwareProfile",
    "LatencyStats",
    "LookupTableLatency",
    "Predictor",
    "PredictorMetadata",
    "PredictorMetrics",
    "ReferenceClock",
    "XGBAccuracyPredictor",
    "XGBLatencyPredictor",
    "build_reference_net",
    "detect_profiles",
    "environment",
    "evaluate_predictions",
    "get_profile",
    "measure_latency",
    "model_units",
    "pinned_threads",
    "predictor_kinds",
    "prepare_for_profile",
    "propose_adaptive",
    "reference_clock",
    "resource_name",
    "space_key",
]
