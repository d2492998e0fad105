"""Parameter initialisers that avoid LAPACK custom calls, and a network's kernels from
one PRNG call.

``orthogonal`` matches flax's ``nn.initializers.orthogonal`` in distribution (a
Haar-random orthogonal matrix times ``scale``) but orthonormalises with
Gram-Schmidt in plain JAX ops instead of a QR custom call: on the XLA CPU
runtime of jax 0.10 a *batched* QR (an init vmapped over seeds) can deadlock the
intra-op thread pool (seen here in about 1 run of 4).

``draw_kernels`` gives every Dense kernel of a network (lecun-normal or orthogonal)
from one PRNG call and one batched Gram-Schmidt loop. Layer by layer, each kernel
costs a key fold-in, its own draw and (orthogonal) its own loop; on XLA:CPU each
threefry call is a loop of about 16 kernels, so a 6-layer PPO actor-critic's init
was a third of its training program (measured in ``docs``/the PR notes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


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
        # (The floor only matters for an all-zero column: ``draw_kernels``' padding.)
        return q.at[:, j].set(v / jnp.maximum(jnp.linalg.norm(v), 1e-30))

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


#: ``erf(sqrt(2))``: a uniform draw on ``(-c, c)`` through ``sqrt(2) erfinv`` is a
#: standard normal truncated to ``(-2, 2)`` (what ``jax.random.truncated_normal`` does).
_TRUNCATED = math.erf(math.sqrt(2.0))
#: flax's ``variance_scaling`` divides by the std of that truncated normal.
_TRUNCATED_STD = 0.87962566103423978


class KernelSpec(NamedTuple):
    """A Dense kernel ``[fan_in, fan_out]``: orthogonal times ``scale``, or (``orthogonal``
    False) flax's ``lecun_normal`` (``scale`` unused)."""

    shape: tuple[int, int]
    orthogonal: bool
    scale: float = 1.0


def draw_kernels(key: jax.Array, specs: Sequence[KernelSpec]) -> list[jax.Array]:
    """The kernels of ``specs``, float32, from one PRNG call.

    Each kernel has the distribution of its initialiser (``orthogonal(scale)`` or flax's
    ``lecun_normal``). The orthogonal ones share one Gram-Schmidt loop: every tall
    ``[n, m]`` Gaussian goes into a zero-padded ``[L, N, M]`` batch (columns are
    orthonormalised in order, so padding rows and later columns leave the real block
    as it would be alone).
    """
    sizes = [math.prod(s.shape) for s in specs]
    # jax.random.normal's open interval: sqrt(2) erfinv(u) is finite on [nextafter(-1), 1).
    low = float(np.nextafter(np.float32(-1.0), np.float32(0.0)))
    u = jax.random.uniform(key, (sum(sizes),), jnp.float32, low, 1.0)
    offsets = np.cumsum([0, *sizes])
    noise = [u[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    kernels: list[jax.Array | None] = [None] * len(specs)
    tall = []
    for i, (spec, z) in enumerate(zip(specs, noise, strict=True)):
        rows, cols = spec.shape
        if spec.orthogonal:
            shape = (max(rows, cols), min(rows, cols))
            tall.append((i, shape, math.sqrt(2.0) * jax.scipy.special.erfinv(z).reshape(shape)))
        else:
            std = math.sqrt(1.0 / rows) / _TRUNCATED_STD
            w = math.sqrt(2.0) * jax.scipy.special.erfinv(_TRUNCATED * z)
            kernels[i] = (std * jnp.clip(w, -2.0, 2.0)).reshape(spec.shape)
    if tall:
        n = max(shape[0] for _, shape, _ in tall)
        m = max(shape[1] for _, shape, _ in tall)
        batch = jnp.stack(
            [jnp.pad(g, ((0, n - s[0]), (0, m - s[1]))) for _, s, g in tall]
        )  # [L, N, M]
        q = jax.vmap(orthonormal_columns)(batch)
        for (i, shape, _), ql in zip(tall, q, strict=True):
            k = ql[: shape[0], : shape[1]]
            rows, cols = specs[i].shape
            kernels[i] = specs[i].scale * (k.T if rows < cols else k)
    return kernels


def fixed(value: jax.Array):
    """A flax initialiser that returns ``value`` (drawn beforehand, e.g. by
    ``draw_kernels``); its key is unused, so the layer's key fold-in compiles away."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        del key
        if tuple(shape) != tuple(value.shape):
            raise ValueError(f"fixed initialiser holds {value.shape}, layer wants {shape}")
        return value.astype(dtype)

    return init
