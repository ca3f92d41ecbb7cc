"""Efficient convolution blocks: elastic forms for supernets, static deploy forms."""

from __future__ import annotations

from kernels._registry import get_block, list_blocks, register_block
from kernels.base import ZERO_COST, BlockConfig, BlockCost, ElasticBlock
from kernels.conv_bn import ConvBNAct
from kernels.fuse import fuse_conv_bn, reparameterize_model

__all__ = [
    "ZERO_COST",
    "BlockConfig",
    "BlockCost",
    "ConvBNAct",
    "ElasticBlock",
    "fuse_conv_bn",
    "get_block",
    "list_blocks",
    "register_block",
    "reparameterize_model",
]
