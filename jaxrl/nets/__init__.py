"""Networks: flax.linen modules whose params are plain pytrees."""

from jaxrl.nets.cnn import NatureCNN
from jaxrl.nets.mamba import Mamba2, MambaStack, MambaState
from jaxrl.nets.mlp import (
    MLP,
    Categorical,
    DiagGaussian,
    DiscreteQ,
    QNetwork,
    TanhGaussian,
    TanhPolicy,
    ValueHead,
)
from jaxrl.nets.moe import MoE, MoETanhGaussian
from jaxrl.nets.stream import StreamMLP

__all__ = [
    "MLP",
    "Categorical",
    "DiagGaussian",
    "DiscreteQ",
    "Mamba2",
    "MambaStack",
    "MambaState",
    "MoE",
    "MoETanhGaussian",
    "NatureCNN",
    "QNetwork",
    "StreamMLP",
    "TanhGaussian",
    "TanhPolicy",
    "ValueHead",
]
