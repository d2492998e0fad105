"""A causal Transformer sequence model: the O(L^2) baseline for Drama's Mamba, usable in
the same agent.

Pre-norm blocks ``x + MHA(LN(x))``, ``x + MLP(LN(x))`` with causal softmax attention and
positions either as fixed sinusoids added to the input (``rope=False``) or as rotary
embeddings of queries and keys (``rope=True``: scores depend only on the offset between
two steps, so a sliding window can run past the lengths seen in training).

Two forms with the same parameters, like ``MambaStack``:

- parallel: ``__call__(x [B, L, d]) -> (h [B, L, d], cache)``, scores ``[B, heads, L, L]``
  (time and memory quadratic in ``L``); ``cache`` holds the keys and values of the last
  ``window`` steps, ready for ``step``;
- recurrent: ``step(x [B, d], cache) -> (h [B, d], cache)`` attends over a fixed-size
  ring buffer of ``window`` keys and values per layer (a sliding window: step ``t`` sees
  steps ``t - window + 1 .. t``). While ``t < window`` its outputs equal the parallel
  form's to float tolerance.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.nets.dense import Dense


def sinusoidal_codes(pos: jax.Array, dim: int) -> jax.Array:
    """Sine/cosine position codes (Vaswani et al., 2017): ``pos [...] -> [..., dim]``."""
    pos = pos.astype(jnp.float32)[..., None]
    freq = jnp.exp(-jnp.log(10_000.0) * jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = pos * freq
    out = jnp.zeros((*angles.shape[:-1], dim))
    out = out.at[..., 0::2].set(jnp.sin(angles))
    return out.at[..., 1::2].set(jnp.cos(angles[..., : dim // 2]))


def sinusoidal_positions(length: int, dim: int) -> jax.Array:
    """``[length, dim]`` sine/cosine position codes of steps ``0 .. length - 1``."""
    return sinusoidal_codes(jnp.arange(length), dim)


def rotary(x: jax.Array, pos: jax.Array) -> jax.Array:
    """Rotary position embedding (Su et al., 2021) of ``x [B, L, heads, hd]`` at
    ``pos [B, L]`` (rotate-half form; ``hd`` even)."""
    half = x.shape[-1] // 2
    freq = jnp.exp(-jnp.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = pos.astype(jnp.float32)[..., None, None] * freq  # [B, L, 1, half]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).astype(x.dtype)


class KVCache(struct.PyTreeNode):
    """Sliding-window cache: ``keys``, ``values`` one ``[B, window, heads, hd]`` per layer
    (step ``p`` in slot ``p % window``), ``pos [B]`` the number of steps seen."""

    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]
    pos: jax.Array


class AttentionBlock(nn.Module):
    """One pre-norm block; ``__call__`` is the parallel (causal) form, ``step`` the cached
    one. Returns the keys and values it computed so the stack can cache them."""

    d_model: int
    num_heads: int
    ff_mult: int
    rope: bool

    def setup(self):
        d = self.d_model
        self.ln_attn = nn.LayerNorm()
        self.qkv = Dense(3 * d, use_bias=False)
        self.attn_out = Dense(d, use_bias=False)
        self.ln_mlp = nn.LayerNorm()
        self.mlp_in = Dense(self.ff_mult * d)
        self.mlp_out = Dense(d)

    def _qkv(self, x: jax.Array, pos: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``x [B, L, d]``, ``pos [B, L]`` -> ``q, k, v [B, L, heads, hd]``."""
        bsz, length, dim = x.shape
        head_dim = dim // self.num_heads
        qkv = self.qkv(self.ln_attn(x)).reshape((bsz, length, 3, self.num_heads, head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.rope:
            q, k = rotary(q, pos), rotary(k, pos)
        return q, k, v

    def _attend(self, q, k, v, mask) -> jax.Array:
        """``q [B, Lq, H, hd]``, ``k, v [B, Lk, H, hd]``, ``mask [B|1, 1, Lq, Lk]``."""
        bsz, length, heads, head_dim = q.shape
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(q.dtype)
        weights = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape((bsz, length, heads * head_dim))
        return self.attn_out(out)

    def _mlp(self, x: jax.Array) -> jax.Array:
        return x + self.mlp_out(nn.gelu(self.mlp_in(self.ln_mlp(x))))

    def __call__(self, x: jax.Array, pos: jax.Array):
        """``x [B, L, d]``, ``pos [B, L]`` -> ``(y [B, L, d], k, v [B, L, H, hd])``."""
        length = x.shape[1]
        q, k, v = self._qkv(x, pos)
        mask = jnp.tril(jnp.ones((length, length), jnp.bool_))[None, None]
        x = x + self._attend(q, k, v, mask)
        return self._mlp(x), k, v

    def step(self, x: jax.Array, keys: jax.Array, values: jax.Array, pos: jax.Array):
        """``x [B, d]``, cache ``keys, values [B, W, H, hd]``, ``pos [B]`` (this step's
        index) -> ``(y [B, d], keys, values)`` with this step written to slot ``pos % W``."""
        window = keys.shape[1]
        q, k, v = self._qkv(x[:, None], pos[:, None])
        slot = jax.nn.one_hot(pos % window, window, dtype=jnp.bool_)[:, :, None, None]
        keys = jnp.where(slot, k, keys)
        values = jnp.where(slot, v, values)
        valid = jnp.arange(window)[None] <= pos[:, None]  # [B, W]: slots written so far
        y = x[:, None] + self._attend(q, keys, values, valid[:, None, None, :])
        return self._mlp(y)[:, 0], keys, values


class TransformerStack(nn.Module):
    """``num_layers`` pre-norm causal Transformer blocks and a final LayerNorm.

    ``ff_mult`` sets the MLP width (``ff_mult * d_model``); ``ff_mult=1`` gives about
    ``6 d_model^2`` parameters per block, the same as a Mamba-2 block with ``expand=2``.
    ``window`` is the KV-cache length of the recurrent form. ``__call__(x [B, L, d],
    state=None) -> (h [B, L, d], KVCache)`` and ``step(x [B, d], KVCache) -> (h [B, d],
    KVCache)`` mirror ``MambaStack``.
    """

    d_model: int
    num_layers: int = 2
    num_heads: int = 4
    ff_mult: int = 1
    window: int = 64
    rope: bool = False

    def setup(self):
        if self.d_model % self.num_heads:
            raise ValueError(
                f"TransformerStack: d_model={self.d_model} must be a multiple of "
                f"num_heads={self.num_heads}"
            )
        self.blocks = [
            AttentionBlock(self.d_model, self.num_heads, self.ff_mult, self.rope)
            for _ in range(self.num_layers)
        ]
        self.ln_out = nn.LayerNorm()

    @nn.nowrap
    def initial_state(self, batch: int) -> KVCache:
        """An empty cache for ``batch`` sequences."""
        shape = (batch, self.window, self.num_heads, self.d_model // self.num_heads)
        zeros = tuple(jnp.zeros(shape) for _ in range(self.num_layers))
        return KVCache(zeros, zeros, jnp.zeros((batch,), jnp.int32))

    def _embed(self, x: jax.Array, pos: jax.Array) -> jax.Array:
        return x if self.rope else x + sinusoidal_codes(pos, self.d_model)

    def __call__(self, x: jax.Array, state: KVCache | None = None) -> tuple[jax.Array, KVCache]:
        if state is not None:
            raise NotImplementedError("TransformerStack: the parallel form starts at step 0")
        bsz, length, _ = x.shape
        pos = jnp.broadcast_to(jnp.arange(length), (bsz, length))
        x = self._embed(x, pos)
        # Slot s of the cache holds the latest step p < length with p % window == s.
        slots = jnp.arange(self.window)
        src = slots + self.window * ((length - 1 - slots) // self.window)
        keep = (slots < length)[None, :, None, None]
        src = jnp.clip(src, 0, length - 1)
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block(x, pos)
            keys.append(jnp.where(keep, k[:, src], 0.0))
            values.append(jnp.where(keep, v[:, src], 0.0))
        cache = KVCache(tuple(keys), tuple(values), jnp.full((bsz,), length, jnp.int32))
        return self.ln_out(x), cache

    def step(self, x: jax.Array, state: KVCache) -> tuple[jax.Array, KVCache]:
        x = self._embed(x, state.pos)
        keys, values = [], []
        for block, k, v in zip(self.blocks, state.keys, state.values, strict=True):
            x, k, v = block.step(x, k, v, state.pos)
            keys.append(k)
            values.append(v)
        return self.ln_out(x), KVCache(tuple(keys), tuple(values), state.pos + 1)
