"""Networks: flax.linen modules whose params are plain pytrees."""

from jaxrl.nets.mlp import MLP, Categorical, DiagGaussian, TanhGaussian, ValueHead
from jaxrl.nets.stream import StreamMLP

__all__ = ["MLP", "Categorical", "DiagGaussian", "StreamMLP", "TanhGaussian", "ValueHead"]
