"""Running mean and variance as pytrees, the one normalisation module.

``RunningStats`` merges batches (Chan et al.'s parallel update; population variance;
PPO's observation normaliser and the ``NormalizeObservation`` wrapper). ``Welford``
merges one sample at a time (sample variance, 1 until two samples; the stream-x
learners' observation and return statistics, as in their reference code).
"""

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


class Welford(struct.PyTreeNode):
    """Welford's running mean and sum of squared deviations of a stream of ``[*shape]``."""

    mean: jax.Array
    m2: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> Welford:
        zeros = jnp.zeros(shape, jnp.float32)
        return cls(mean=zeros, m2=zeros, count=jnp.zeros((), jnp.float32))

    @property
    def var(self) -> jax.Array:
        """Sample variance (``ddof=1``); 1 until two samples have been seen."""
        return jnp.where(self.count >= 2, self.m2 / jnp.maximum(self.count - 1, 1.0), 1.0)


def welford_update(stats: Welford, x: jax.Array) -> Welford:
    """Merges one sample ``x [*shape]``."""
    count = stats.count + 1
    mean = stats.mean + (x - stats.mean) / count
    return Welford(mean=mean, m2=stats.m2 + (x - stats.mean) * (x - mean), count=count)
