"""Parameter initialisers that avoid LAPACK custom calls.

``orthogonal`` matches flax's ``nn.initializers.orthogonal`` in distribution (a
Haar-random orthogonal matrix times ``scale``) but orthonormalises with
Gram-Schmidt in plain JAX ops instead of a QR custom call: on the XLA CPU
runtime of jax 0.10 a *batched* QR (an init vmapped over seeds) can deadlock the
intra-op thread pool (seen here in about 1 run of 4).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def orthonormal_columns(a: jax.Array) -> jax.Array:
    """Gram-Schmidt, twice per column for float32 accuracy: ``[n, m] -> [n, m]``, n >= m.

    Equals ``Q`` of the QR factorisation of ``a`` with ``diag(R) > 0``.
    """
    n, m = a.shape
    if n < m:
        raise ValueError(f"need rows >= columns, got {a.shape}")

    def body(j, q):
        v = q[:, j]
        earlier = (jnp.arange(m) < j).astype(q.dtype)
        for _ in range(2):
            v = v - q @ ((q.T @ v) * earlier)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, m, body, a)


def orthogonal(scale: float = 1.0):
    """A flax initialiser: ``init(key, shape, dtype) -> [*shape]`` with orthogonal 2-D view."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        rows = 1
        for d in shape[:-1]:
            rows *= d
        cols = shape[-1]
        tall = (max(rows, cols), min(rows, cols))
        q = orthonormal_columns(jax.random.normal(key, tall, jnp.float32))
        if rows < cols:
            q = q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


def sparse_uniform(sparsity: float = 0.9):
    """A flax Dense-kernel initialiser ``[fan_in, fan_out]``: U(+-1/sqrt(fan_in)) weights,
    then for each output unit ``ceil(sparsity * fan_in)`` of its inputs, drawn at random,
    set to zero (stream-x sparse initialisation; ``sparsity=0`` keeps every weight).
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        if len(shape) != 2:
            raise ValueError(f"sparse_uniform expects a [fan_in, fan_out] kernel, got {shape}")
        fan_in, fan_out = shape
        num_zeros = math.ceil(sparsity * fan_in)
        w_key, mask_key = jax.random.split(key)
        bound = 1.0 / math.sqrt(fan_in)
        w = jax.random.uniform(w_key, shape, jnp.float32, -bound, bound)
        # Rank of each input within its unit under a random order: the first num_zeros go.
        order = jnp.argsort(jax.random.uniform(mask_key, shape), axis=0)
        rank = jnp.argsort(order, axis=0)
        return jnp.where(rank < num_zeros, 0.0, w).astype(dtype)

    return init
