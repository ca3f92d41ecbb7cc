"""Once-for-all search-space families, the architecture encoding, and training schedules."""

from __future__ import annotations

from supernets.arch import Arch, BlockArch, StageArch
from supernets.bn import recalibrate_bn
from supernets.evaluate import calibrated_subnet, deployed_subnet, evaluate_accuracy, score_subnet
from supernets.ofa_mbv3 import OfaMbv3Space
from supernets.ofa_mbv3_net import OfaMbv3Supernet
from supernets.opchoice import OpChoiceSpace
from supernets.pooling_net import PoolingMixtureSupernet
from supernets.pooling_space import PoolingSpace
from supernets.space import (
    Choice,
    Dimension,
    ProductSpace,
    SearchSpace,
    get_space_class,
    list_families,
    make_space,
    register_space,
)
from supernets.supernet import Supernet

__all__ = [
    "Arch",
    "BlockArch",
    "Choice",
    "Dimension",
    "OfaMbv3Space",
    "OfaMbv3Supernet",
    "OpChoiceSpace",
    "PoolingMixtureSupernet",
    "PoolingSpace",
    "ProductSpace",
    "SearchSpace",
    "StageArch",
    "Supernet",
    "calibrated_subnet",
    "deployed_subnet",
    "evaluate_accuracy",
    "get_space_class",
    "list_families",
    "make_space",
    "recalibrate_bn",
    "register_space",
    "score_subnet",
]
