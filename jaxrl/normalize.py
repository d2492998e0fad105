"""Running mean and variance (parallel Welford / Chan et al.) as a pytree."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct


class RunningStats(struct.PyTreeNode):
    """Running statistics of a stream of arrays of shape ``shape``.

    ``var`` is the population variance of everything seen so far.
    """

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> RunningStats:
        return cls(
            mean=jnp.zeros(shape, jnp.float32),
            var=jnp.ones(shape, jnp.float32),
            count=jnp.asarray(1e-4, jnp.float32),
        )


def update_stats(stats: RunningStats, x: jax.Array, batch_ndim: int = 1) -> RunningStats:
    """Merges a batch ``x`` of shape ``[*batch, *shape]`` into ``stats``."""
    axes = tuple(range(batch_ndim))
    x = jnp.asarray(x, jnp.float32)
    n = float(math.prod(x.shape[:batch_ndim]))
    b_mean = jnp.mean(x, axis=axes) if axes else x
    b_var = jnp.var(x, axis=axes) if axes else jnp.zeros_like(x)
    delta = b_mean - stats.mean
    total = stats.count + n
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + b_var * n + jnp.square(delta) * stats.count * n / total
    return RunningStats(mean=mean, var=m2 / total, count=total)


def normalize(
    stats: RunningStats, x: jax.Array, clip: float = 10.0, eps: float = 1e-8
) -> jax.Array:
    """``(x - mean) / sqrt(var + eps)`` clipped to ``[-clip, clip]``."""
    y = (x - stats.mean) / jnp.sqrt(stats.var + eps)
    return jnp.clip(y, -clip, clip)
