"""Networks: flax.linen modules whose params are plain pytrees."""

from jaxrl.nets.mlp import MLP, Categorical, DiagGaussian, TanhGaussian, ValueHead

__all__ = ["MLP", "Categorical", "DiagGaussian", "TanhGaussian", "ValueHead"]
