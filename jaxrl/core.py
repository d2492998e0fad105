"""Core types: an agent is a triple of pure functions over a pytree state.

Axis convention, used everywhere: trajectories are time-major, ``[T, B, ...]``
(T steps of B parallel envs); replay samples are flat, ``[N, ...]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

Metrics = dict[str, jax.Array]


class Transition(struct.PyTreeNode):
    """One step of experience (leaves ``[T, B, ...]`` or ``[N, ...]``).

    Attributes:
      obs: observation the action was taken in.
      action: action taken (int32 for discrete, float32 ``[..., act_dim]`` for box).
      reward: reward received, float32.
      terminated: the step ended in a terminal state: do not bootstrap.
      truncated: the episode was cut by a time limit: bootstrap from ``next_obs``.
      next_obs: the observation the step reached (before any auto-reset).
      extras: what ``Agent.act`` returned in ``info`` (log-probs, values, ...).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    extras: dict = struct.field(default_factory=dict)

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class Agent(NamedTuple):
    """Pure functions of an agent; all jittable and vmappable.

    init(key) -> state
    act(state, obs, key, explore) -> (action, info)   # obs [B, *obs_shape]
    update(state, batch, key) -> (state, metrics)      # batch: Transition
    """

    init: Callable[[jax.Array], Any]
    act: Callable[..., tuple[jax.Array, dict]]
    update: Callable[[Any, Transition, jax.Array], tuple[Any, Metrics]]


def hparams_from(cls: type, overrides: dict[str, Any] | None = None) -> Any:
    """Builds an hparams dataclass of float32 scalars from its defaults and ``overrides``.

    Raises:
      ValueError: for an unknown field or a value that is not a number.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    overrides = dict(overrides or {})
    for k in overrides:
        if k not in names:
            raise ValueError(
                f"unknown hyperparameter {k!r} for {cls.__name__}; known: {', '.join(names)}"
            )
    values = {}
    for f in dataclasses.fields(cls):
        v = overrides.get(f.name, f.default)
        try:
            values[f.name] = jnp.asarray(v, jnp.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"hyperparameter {f.name!r} must be a number, got {v!r}") from err
    return cls(**values)


def tree_finite(tree: Any) -> jax.Array:
    """True when every floating leaf of ``tree`` is finite (a cheap NaN/Inf flag).

    The leaves are flattened into one vector first: one fused reduction instead of one
    per leaf, which keeps the compiled program (and its compile time) small.
    """
    leaves = [jnp.ravel(x) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.isfinite(jnp.concatenate(leaves))) if leaves else jnp.asarray(True)


def clip_by_global_norm(grads: Any, max_norm: jax.Array) -> tuple[Any, jax.Array]:
    """Scales ``grads`` so their global L2 norm is at most ``max_norm`` (``inf``: no-op).

    Returns ``(clipped, norm)`` with the norm *before* clipping. The norm is one
    reduction over the concatenated leaves rather than one per leaf (smaller program,
    same value as ``optax.global_norm``).
    """
    flat = jnp.concatenate([jnp.ravel(g) for g in jax.tree.leaves(grads)])
    norm = jnp.sqrt(jnp.sum(jnp.square(flat)))
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads), norm
