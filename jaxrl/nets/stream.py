"""The stream-x network: sparse init, LayerNorm without affine parameters, leaky ReLU."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.nets.init import sparse_uniform


class StreamMLP(nn.Module):
    """``[..., in] -> [..., out]``: per hidden layer Dense, LayerNorm, leaky ReLU; then Dense.

    Every kernel (output layer included) uses ``sparse_uniform(sparsity)`` and every bias
    starts at zero. The LayerNorm has no learned scale or offset and normalises each
    hidden vector over its own units (epsilon 1e-5, as PyTorch's ``F.layer_norm``).
    ``layer_norm=False`` and ``sparsity=0`` give a plain dense MLP (the baseline).
    """

    out: int
    hidden: Sequence[int] = (32, 32)
    sparsity: float = 0.9
    layer_norm: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = sparse_uniform(self.sparsity)
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=init, dtype=self.dtype)(x)
            if self.layer_norm:
                x = nn.LayerNorm(epsilon=1e-5, use_bias=False, use_scale=False, dtype=self.dtype)(x)
            x = nn.leaky_relu(x)
        return nn.Dense(self.out, kernel_init=init, dtype=self.dtype)(x)
