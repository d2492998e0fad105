"""Adapter for NAVIX (Pignatelli et al. 2024, MiniGrid in JAX): ``navix/<id>``, e.g.
``navix/Navix-Empty-5x5-v0``; any id in ``navix.registry()``.

The adapter calls NAVIX's ``_step`` (``step`` auto-resets, which in jaxrl belongs to
``AutoReset``). NAVIX marks each timestep ``TRANSITION`` (0), ``TRUNCATION`` (1) or
``TERMINATION`` (2); these map to ``terminated`` and ``truncated``. NAVIX's episode
limit ``max_steps`` (``navix.make``'s default 100, or the ``max_steps`` keyword) is
lifted out of reach and becomes ``max_episode_steps``, which ``jaxrl.envs.make`` turns
into an ``EpisodeLimit`` (truncation), as for Craftax. Envs with a time penalty on
termination (``penality_coeff != 0``, which reads ``max_steps``) keep NAVIX's own limit
and report its truncation as ``truncated``.

Observations are NAVIX's arrays (symbolic ``[H, W, 3]`` ids by default) flattened to
one float32 vector; actions are ``Discrete(len(action_set))``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import navix

from jaxrl.envs.core import Box, Discrete, Env, EnvState, cast_like, first_state

_NO_LIMIT = 2**30
_TRUNCATION, _TERMINATION = 1, 2


def names() -> list[str]:
    return sorted(navix.registry())


def args(env_id: str) -> dict[str, Any]:
    """``max_steps``: NAVIX's own time limit (the others ``navix.make`` takes are functions)."""
    return {"max_steps": int}


def make(env_id: str, max_steps: int = 100, **kwargs: Any) -> NavixEnv:
    """Builds NAVIX env ``env_id``; ``kwargs`` go to ``navix.make`` (e.g. ``observation_fn``).

    Raises:
      ValueError: for an unknown id, listing the known ones.
    """
    if env_id not in navix.registry():
        raise ValueError(f"unknown navix env {env_id!r}; known: {', '.join(names())}")
    env = navix.make(env_id, max_steps=max_steps, **kwargs)
    return NavixEnv(env, env_id)


class NavixEnv(Env):
    """A NAVIX env under the jaxrl protocol (``inner``: NAVIX's ``Timestep``)."""

    def __init__(self, env: Any, env_id: str):
        self.env_id = env_id
        if float(env.penality_coeff) == 0.0:
            self.max_episode_steps = int(env.max_steps)
            env = env.replace(max_steps=_NO_LIMIT)
        else:
            self.max_episode_steps = None
        self.env = env
        self.observation_spec = Box((math.prod(env.observation_space.shape),))
        self.action_spec = Discrete(len(env.action_set))

    def __repr__(self) -> str:
        return f"NavixEnv({self.env_id})"

    def _obs(self, obs: jax.Array) -> jax.Array:
        return jnp.asarray(obs, jnp.float32).reshape(-1)

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        ts = jax.tree.map(jnp.asarray, self.env.reset(sub))
        return first_state(ts, self._obs(ts.observation), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = jnp.asarray(action, jnp.int32).reshape(())
        ts = self.env._step(state.inner, action)
        ts = jax.tree.map(cast_like, ts, state.inner)
        return state.replace(
            inner=ts,
            obs=self._obs(ts.observation),
            reward=jnp.asarray(ts.reward, jnp.float32).reshape(()),
            terminated=(ts.step_type == _TERMINATION).reshape(()),
            truncated=(ts.step_type == _TRUNCATION).reshape(()),
        )
