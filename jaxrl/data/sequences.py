"""Sequence replay with Drama's dynamic frequency-based sampling (DFS).

The buffer keeps each env's stream of transitions in time order: leaves
``[capacity, num_envs, ...]``, written at ``size`` (no wrap-around: a model-based run
stores everything it collects, as Atari100k does). A sequence is ``length``
consecutive steps of one env, named by its start ``(t, env)``; flat start index
``t * num_envs + env``.

DFS keeps two counters per start index: ``wm_counts`` (times drawn for world-model
training) and ``img_counts`` (times drawn as an imagination context). With
temperature ``tau`` (the official code, ``replay_buffer.py`` of
github.com/realwenlongwang/Drama, with its ``Alpha = Beta = 1``):

- world-model batches draw ``p_i ~ exp(-c_i / tau)``: transitions the model has
  trained on less come first, so fresh data is learnt quickly;
- imagination contexts draw ``p_i = softmax((d_i - max(0, d_i)) / tau)``, i.e.
  ``softmax(min(0, d_i) / tau)``, with ``d_i = c_i - c_img_i / r`` and
  ``r = img_batch / wm_batch`` the batch ratio (an imagination draw takes ``r`` times
  more starts than a world-model draw, so its counts are scaled down by ``r``): starts
  used for imagination more often than the model has trained on them are
  down-weighted, so early, inaccurate parts of the model are not imagined from
  repeatedly.

Each draw takes distinct starts (without replacement, as ``torch.multinomial(...,
replacement=False)`` there); only while fewer starts than the batch are stored do the
missing draws repeat starts. Only starts whose whole sequence is stored are drawn.
``dfs=False`` gives uniform sampling over the same starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct


class SequenceReplay(struct.PyTreeNode):
    """Per-env transition streams with DFS counters.

    Attributes:
      data: dict of leaves ``[capacity, num_envs, ...]``.
      size: int32, steps stored per env.
      wm_counts, img_counts: ``[capacity, num_envs]`` float32 draw counters.
    """

    data: Any
    size: jax.Array
    wm_counts: jax.Array
    img_counts: jax.Array

    @property
    def capacity(self) -> int:
        return self.wm_counts.shape[0]

    @property
    def num_envs(self) -> int:
        return self.wm_counts.shape[1]


def sequence_replay_init(example: Any, capacity: int) -> SequenceReplay:
    """An empty buffer for steps shaped like ``example`` (leaves ``[num_envs, ...]``)."""
    if capacity <= 0:
        raise ValueError(f"buffer capacity must be positive, got {capacity}")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    num_envs = jax.tree.leaves(example)[0].shape[0]
    zeros = jnp.zeros((capacity, num_envs), jnp.float32)
    return SequenceReplay(data, jnp.zeros((), jnp.int32), zeros, zeros)


def sequence_replay_add(buffer: SequenceReplay, steps: Any) -> SequenceReplay:
    """Appends ``steps`` (leaves ``[n, num_envs, ...]``, time-major) at ``size``.

    The caller keeps ``size + n <= capacity`` (the model-based driver sizes the buffer
    for the whole run); writes past the end are clipped by ``dynamic_update_slice``.
    """
    n = jax.tree.leaves(steps)[0].shape[0]

    def write(dst, src):
        start = (buffer.size,) + (0,) * (dst.ndim - 1)
        return jax.lax.dynamic_update_slice(dst, src.astype(dst.dtype), start)

    data = jax.tree.map(write, buffer.data, steps)
    return buffer.replace(data=data, size=jnp.minimum(buffer.size + n, buffer.capacity))


def valid_starts(buffer: SequenceReplay, length: int) -> jax.Array:
    """``[capacity, num_envs]`` bool: starts whose ``length`` steps are all stored."""
    t = jnp.arange(buffer.capacity)[:, None]
    return jnp.broadcast_to(t + length <= buffer.size, buffer.wm_counts.shape)


def wm_logits(
    wm_counts: jax.Array, valid: jax.Array, temperature: jax.Array | float, dfs: bool = True
) -> jax.Array:
    """Unnormalised log-probabilities of world-model starts: ``-c / tau`` (0 if not DFS)."""
    logits = -wm_counts / temperature if dfs else jnp.zeros_like(wm_counts)
    return jnp.where(valid, logits, -jnp.inf)


def imagination_logits(
    wm_counts: jax.Array,
    img_counts: jax.Array,
    valid: jax.Array,
    temperature: jax.Array | float,
    dfs: bool = True,
    batch_ratio: float = 1.0,
) -> jax.Array:
    """Unnormalised log-probabilities of imagination starts: ``(d - max(0, d)) / tau``
    with ``d = c - c_img / batch_ratio`` (``batch_ratio = img_batch / wm_batch``)."""
    d = wm_counts - img_counts / batch_ratio
    logits = (d - jnp.maximum(0.0, d)) / temperature if dfs else jnp.zeros_like(d)
    return jnp.where(valid, logits, -jnp.inf)


def draw_starts(
    key: jax.Array, logits: jax.Array, batch_size: int, replace: bool = False
) -> jax.Array:
    """``batch_size`` flat indices drawn from ``softmax(logits)`` (``logits [N]``, ``-inf``
    where a start may not be drawn).

    ``replace=False``: distinct indices, sequentially without replacement (Gumbel top-k:
    the ``batch_size`` largest ``logits + Gumbel noise``); where fewer than ``batch_size``
    indices have finite logits, the draws past them are made with replacement.
    """
    if replace:
        return jax.random.categorical(key, logits, shape=(batch_size,))
    top_key, fill_key = jax.random.split(key)
    noisy = logits + jax.random.gumbel(top_key, logits.shape)
    top, starts = jax.lax.top_k(noisy, min(batch_size, logits.shape[0]))
    fill = jax.random.categorical(fill_key, logits, shape=(batch_size,))
    top = jnp.pad(top, (0, batch_size - top.shape[0]), constant_values=-jnp.inf)
    starts = jnp.pad(starts, (0, batch_size - starts.shape[0]))
    return jnp.where(jnp.isfinite(top), starts, fill)


def sample_sequences(
    buffer: SequenceReplay,
    key: jax.Array,
    logits: jax.Array,
    batch_size: int,
    length: int,
    replace: bool = False,
) -> tuple[Any, jax.Array]:
    """Draws ``batch_size`` starts from ``softmax(logits)`` (``draw_starts``: without
    replacement unless ``replace``).

    Args:
      logits: ``[capacity, num_envs]``, ``-inf`` where a start may not be drawn.

    Returns:
      ``(sequences, starts)``: leaves ``[batch_size, length, ...]`` and the flat start
      indices ``[batch_size]`` (for ``count_draws``).
    """
    chex.assert_shape(logits, buffer.wm_counts.shape)
    starts = draw_starts(key, logits.reshape(-1), batch_size, replace)
    t0, env = starts // buffer.num_envs, starts % buffer.num_envs
    t = t0[:, None] + jnp.arange(length)  # [batch, length]
    seqs = jax.tree.map(lambda d: d[t, env[:, None]], buffer.data)
    return seqs, starts


def count_draws(counts: jax.Array, starts: jax.Array) -> jax.Array:
    """``counts`` with one added per drawn flat start index (repeats count repeatedly)."""
    flat = counts.reshape(-1).at[starts].add(1.0)
    return flat.reshape(counts.shape)


class SequenceBatch(struct.PyTreeNode):
    """What a sequence sampler hands to ``update``.

    Attributes:
      wm: world-model sequences, dict of leaves ``[wm_batch, wm_seq_len, ...]``.
      img: imagination contexts, dict of leaves ``[img_batch, context_len, ...]``.
      context: the loop's ``LoopContext`` (set by the loop).
    """

    wm: Any
    img: Any
    context: Any = None


@dataclasses.dataclass(frozen=True)
class DFSSampler:
    """Drama's two draws per update from a ``SequenceReplay``: ``wm_batch`` world-model
    sequences of ``wm_seq_len`` steps and ``img_batch`` imagination contexts of
    ``context_len`` steps, by DFS (``dfs``, ``temperature``; imagination counts scaled by
    ``batch_ratio``) or uniformly, each without replacement; each draw updates its
    counter."""

    wm_batch: int
    wm_seq_len: int
    img_batch: int
    context_len: int
    dfs: bool = True
    temperature: float = 10.0

    @property
    def batch_ratio(self) -> float:
        """``img_batch / wm_batch``: how many more starts an imagination draw takes."""
        return self.img_batch / self.wm_batch

    @property
    def min_length(self) -> int:
        """Steps per env that must be stored before anything can be drawn."""
        return max(self.wm_seq_len, self.context_len)

    def sample(
        self, buffer: SequenceReplay, keys: jax.Array
    ) -> tuple[SequenceBatch, SequenceReplay]:
        """``keys [2, 2]``: the world-model draw's, then the contexts'."""
        valid = valid_starts(buffer, self.wm_seq_len)
        logits = wm_logits(buffer.wm_counts, valid, self.temperature, self.dfs)
        wm, wm_starts = sample_sequences(buffer, keys[0], logits, self.wm_batch, self.wm_seq_len)
        buffer = buffer.replace(wm_counts=count_draws(buffer.wm_counts, wm_starts))
        valid = valid_starts(buffer, self.context_len)
        logits = imagination_logits(
            buffer.wm_counts, buffer.img_counts, valid, self.temperature, self.dfs, self.batch_ratio
        )
        img, img_starts = sample_sequences(
            buffer, keys[1], logits, self.img_batch, self.context_len
        )
        buffer = buffer.replace(img_counts=count_draws(buffer.img_counts, img_starts))
        return SequenceBatch(wm, img), buffer
