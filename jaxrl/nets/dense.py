"""``Dense``: ``flax.linen.Dense`` whose weight gradient runs on XLA:CPU's fast matmul path.

In the backward pass of ``y = x @ W`` the weight gradient is ``x^T @ dy``. XLA
folds the transpose into the dot (contracting dimension 0 of both operands), and
XLA:CPU runs that form through a generic dot kernel instead of its fused
(YNNPACK) matmul. Profiling PPO on CartPole showed those dots taking about
half of every gradient step. ``matmul`` has a custom VJP that materialises
``x^T`` behind an optimisation barrier, so the weight gradient is a plain
row-major matmul. Values and gradients are the same matmuls; on other backends,
or for any other contraction, the standard ``lax.dot_general`` runs.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` for ``x: [..., in]``, ``w: [in, out]`` -> ``[..., out]``."""
    return x @ w


def _matmul_fwd(x, w):
    return x @ w, (x, w)


def _matmul_bwd(res, g):
    x, w = res
    x2 = x.reshape(-1, x.shape[-1])
    g2 = g.reshape(-1, g.shape[-1])
    x2t = jax.lax.optimization_barrier(x2.T)  # keep the transpose out of the dot
    return g @ w.T, (x2t @ g2).astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """``lax.dot_general``; the ``[..., in] x [in, out]`` case uses ``matmul`` on CPU."""
    (lhs_c, rhs_c), (lhs_b, rhs_b) = dimension_numbers
    plain = (
        jax.default_backend() == "cpu"
        and rhs.ndim == 2
        and tuple(lhs_c) == (lhs.ndim - 1,)
        and tuple(rhs_c) == (0,)
        and not lhs_b
        and not rhs_b
        and precision is None
        and preferred_element_type in (None, jnp.result_type(lhs, rhs))
    )
    if plain:
        return matmul(lhs, rhs)
    return jax.lax.dot_general(
        lhs, rhs, dimension_numbers, precision, preferred_element_type=preferred_element_type
    )


#: ``nn.Dense`` with the CPU-friendly weight gradient; same params and values.
Dense = functools.partial(nn.Dense, dot_general=dot_general)
