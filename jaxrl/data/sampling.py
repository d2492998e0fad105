"""The one masked / weighted row sampler."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def weighted_indices(key: jax.Array, weights: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Indices into ``weights [N]`` drawn with replacement, ``P(i) ∝ weights[i]``.

    ``weights`` are non-negative integers (a bool mask: uniform over the True rows; row
    lengths: uniform over the rows' steps). Returns int32 ``shape``. One ``randint`` and a
    binary search of the cumulative weights: O(N) per call, no ``[N]``-wide categorical.
    With all weights zero every index is ``N`` (out of range: mask such draws yourself).
    """
    cdf = jnp.cumsum(weights.astype(jnp.int32))
    u = jax.random.randint(key, shape, 0, jnp.maximum(cdf[-1], 1))
    return jnp.searchsorted(cdf, u, side="right").astype(jnp.int32)
