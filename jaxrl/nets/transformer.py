"""A causal Transformer sequence model, the O(L^2) baseline for Drama's Mamba benchmark.

Pre-norm blocks ``x + MHA(LN(x))``, ``x + MLP(LN(x))`` with causal softmax attention over
the whole sequence (scores ``[B, heads, L, L]``: time and memory quadratic in ``L``) and
fixed sinusoidal positions. Parallel form only (no KV cache): it exists to compare
training cost with ``MambaStack`` at equal parameter count.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.nets.dense import Dense


def sinusoidal_positions(length: int, dim: int) -> jax.Array:
    """``[length, dim]`` sine/cosine position codes (Vaswani et al., 2017)."""
    pos = jnp.arange(length, dtype=jnp.float32)[:, None]
    freq = jnp.exp(-jnp.log(10_000.0) * jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = pos * freq[None]
    out = jnp.zeros((length, dim))
    out = out.at[:, 0::2].set(jnp.sin(angles))
    return out.at[:, 1::2].set(jnp.cos(angles[:, : dim // 2]))


class CausalSelfAttention(nn.Module):
    num_heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``x [B, L, d] -> [B, L, d]``."""
        bsz, length, dim = x.shape
        head_dim = dim // self.num_heads
        qkv = Dense(3 * dim, use_bias=False)(x).reshape((bsz, length, 3, self.num_heads, head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(x.dtype)
        mask = jnp.tril(jnp.ones((length, length), jnp.bool_))
        weights = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape((bsz, length, dim))
        return Dense(dim, use_bias=False)(out)


class TransformerStack(nn.Module):
    """``num_layers`` pre-norm causal Transformer blocks and a final LayerNorm.

    ``ff_mult`` sets the MLP width (``ff_mult * d_model``); ``ff_mult=1`` gives about
    ``6 d_model^2`` parameters per block, the same as a Mamba-2 block with ``expand=2``.
    ``__call__(x [B, L, d], state=None) -> (h [B, L, d], None)`` mirrors ``MambaStack``.
    """

    d_model: int
    num_layers: int = 2
    num_heads: int = 4
    ff_mult: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, state: None = None) -> tuple[jax.Array, None]:
        if self.d_model % self.num_heads:
            raise ValueError(
                f"TransformerStack: d_model={self.d_model} must be a multiple of "
                f"num_heads={self.num_heads}"
            )
        x = x + sinusoidal_positions(x.shape[1], self.d_model)[None]
        for _ in range(self.num_layers):
            x = x + CausalSelfAttention(self.num_heads)(nn.LayerNorm()(x))
            h = nn.gelu(Dense(self.ff_mult * self.d_model)(nn.LayerNorm()(x)))
            x = x + Dense(self.d_model)(h)
        return nn.LayerNorm()(x), None
