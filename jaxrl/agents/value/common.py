"""Pieces the value-based family shares (DQN, PQN, stream Q): epsilon-greedy acting on
Q-values, its linear epsilon schedule, and the chosen action's Q-value."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents.stream.common import linear_schedule


def epsilon(
    start: jax.Array, end: jax.Array, fraction: jax.Array, step: jax.Array, total: int
) -> jax.Array:
    """Epsilon moving linearly from ``start`` to ``end`` over the first ``fraction`` of
    ``total`` steps (env steps or updates, as the caller counts ``step``), then ``end``."""
    return linear_schedule(start, end, fraction * total, step)


def epsilon_greedy(key: jax.Array, q: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``q [B, A] -> (action [B] int32, greedy [B] int32)``: a uniformly random action with
    probability ``eps`` (scalar or ``[B]``), else the greedy ``argmax q``."""
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    coin_key, action_key = jax.random.split(key)
    random = jax.random.randint(action_key, greedy.shape, 0, q.shape[-1], jnp.int32)
    action = jnp.where(jax.random.uniform(coin_key, greedy.shape) < eps, random, greedy)
    return action, greedy


def chosen(q: jax.Array, action: jax.Array) -> jax.Array:
    """``Q(s, a)``: ``q [..., A]`` at ``action [...]`` (int), shape ``[...]``."""
    return jnp.take_along_axis(q, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
