"""Efficient convolution blocks: elastic forms for supernets, static deploy forms."""

from __future__ import annotations

from kernels._registry import get_block, list_blocks, register_block
from kernels.base import ZERO_COST, BlockConfig, BlockCost, ElasticBlock
from kernels.bottleneck import ElasticInvertedBottleneck, ElasticMixer, InvertedBottleneck, hidden_channels
from kernels.compiled import compile_deploy, deploy, fuse_block, to_channels_last, triton_available
from kernels.conv_bn import ConvBNAct
from kernels.cost import conv_cost, elementwise_cost, measure_macs
from kernels.elastic_conv import ElasticConvBN
from kernels.fuse import fuse_conv_bn, reparameterize_model
from kernels.fused_mbconv import ElasticFusedMBConv, FusedMBConv
from kernels.inception_dw import (
    ElasticInceptionDW,
    ElasticInceptionDWConv,
    InceptionDWConv,
    inception_dw_cost,
)
from kernels.large_kernel import (
    ElasticLargeKernelDW,
    ElasticRepLargeKernelDW,
    RepLargeKernelDW,
    large_kernel_dw_cost,
)
from kernels.mbconv import ElasticMBConv, MBConv, mbconv_cost
from kernels.preprocess import Preprocess
from kernels.se import ElasticSqueezeExcite, SqueezeExcite

__all__ = [
    "ZERO_COST",
    "BlockConfig",
    "BlockCost",
    "ConvBNAct",
    "ElasticBlock",
    "ElasticConvBN",
    "ElasticFusedMBConv",
    "ElasticInceptionDW",
    "ElasticInceptionDWConv",
    "ElasticInvertedBottleneck",
    "ElasticLargeKernelDW",
    "ElasticMBConv",
    "ElasticMixer",
    "ElasticRepLargeKernelDW",
    "ElasticSqueezeExcite",
    "FusedMBConv",
    "InceptionDWConv",
    "InvertedBottleneck",
    "MBConv",
    "Preprocess",
    "RepLargeKernelDW",
    "SqueezeExcite",
    "compile_deploy",
    "conv_cost",
    "deploy",
    "elementwise_cost",
    "fuse_block",
    "fuse_conv_bn",
    "get_block",
    "hidden_channels",
    "inception_dw_cost",
    "large_kernel_dw_cost",
    "list_blocks",
    "mbconv_cost",
    "measure_macs",
    "register_block",
    "reparameterize_model",
    "to_channels_last",
    "triton_available",
]
