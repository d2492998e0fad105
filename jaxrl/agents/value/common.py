"""Pieces the value-based family shares (DQN, PQN, stream Q): the linear epsilon schedule,
epsilon-greedy acting on Q-values, the chosen action's Q-value and the TD loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents.stream.common import linear_schedule

#: ``td_loss`` kinds: ``"mse"``, ``0.5 (q - target)^2``; ``"huber"``, Huber with delta 1.
LOSSES = ("mse", "huber")


def epsilon(hparams: Any, step: jax.Array, total: int) -> jax.Array:
    """Epsilon moving linearly from ``hparams.eps_start`` to ``hparams.eps_end`` over the
    first ``hparams.exploration_fraction`` of ``total`` steps (env steps, updates or
    iterations, as the caller counts ``step``), then ``eps_end``."""
    duration = hparams.exploration_fraction * total
    return linear_schedule(hparams.eps_start, hparams.eps_end, duration, step)


def epsilon_greedy(key: jax.Array, q: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``q [B, A] -> (action [B] int32, greedy [B] int32)``: a uniformly random action with
    probability ``eps`` (scalar or ``[B]``), else the greedy ``argmax q``."""
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    coin_key, action_key = jax.random.split(key)
    random = jax.random.randint(action_key, greedy.shape, 0, q.shape[-1], jnp.int32)
    action = jnp.where(jax.random.uniform(coin_key, greedy.shape) < eps, random, greedy)
    return action, greedy


def epsilon_greedy_act(
    q_fn: Callable[[Any, jax.Array], jax.Array], eps_fn: Callable[[Any], jax.Array]
) -> Callable[..., tuple[jax.Array, dict]]:
    """An ``Agent.act`` for a state with ``params``: ``q_fn(state.params, obs [B, ...]) ->
    q [B, A]``; ``argmax q`` without ``explore``, else ``epsilon_greedy`` at
    ``eps_fn(state)``. Returns ``(action [B] int32, {})``."""

    def act(state: Any, obs: jax.Array, key: jax.Array, explore=True, **_):
        q = q_fn(state.params, obs)
        if not explore:
            return jnp.argmax(q, axis=-1).astype(jnp.int32), {}
        return epsilon_greedy(key, q, eps_fn(state))[0], {}

    return act


def chosen(q: jax.Array, action: jax.Array) -> jax.Array:
    """``Q(s, a)``: ``q [..., A]`` at ``action [...]`` (int), shape ``[...]``."""
    return jnp.take_along_axis(q, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def td_loss(q: jax.Array, target: jax.Array, kind: str = "mse") -> jax.Array:
    """Mean over ``[N]`` of ``0.5 (q - target)^2`` (``"mse"``) or Huber, delta 1."""
    if kind == "huber":
        return jnp.mean(optax.huber_loss(q, target, delta=1.0))
    return 0.5 * jnp.mean(jnp.square(q - target))
