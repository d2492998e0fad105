"""Adapter for Craftax (Matthews et al. 2024): ``craftax/<id>``, e.g.
``craftax/Craftax-Classic-Symbolic-v1``; any id ``craftax.craftax_env`` builds.

Craftax envs follow gymnax's interface without auto-reset. The adapter steps
``step_env`` with the episode limit lifted (``max_timesteps`` set out of reach), so
``terminated`` is the game's own end (death, lava) and never the time limit; Craftax's
``max_timesteps`` becomes ``max_episode_steps``, which ``jaxrl.envs.make`` turns into an
``EpisodeLimit`` (truncation), as for every other family. Actions are ``Discrete``;
observations keep Craftax's array shape as float32 (symbolic ids: a flat vector;
pixel ids: ``[H, W, 3]``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from craftax.craftax_env import make_craftax_env_from_name

from jaxrl.envs.core import Box, Discrete, Env, EnvState, cast_like, first_state

#: The ids ``make_craftax_env_from_name`` accepts (craftax 1.x).
IDS = (
    "Craftax-Classic-Symbolic-v1",
    "Craftax-Classic-Pixels-v1",
    "Craftax-Symbolic-v1",
    "Craftax-Pixels-v1",
)
_NO_LIMIT = 2**30


def names() -> list[str]:
    return list(IDS)


def args(env_id: str) -> dict[str, Any]:
    """None from text (``env_params``, a dict of ``EnvParams`` overrides, is Python-only)."""
    return {}


def make(env_id: str, env_params: dict[str, Any] | None = None) -> CraftaxEnv:
    """Builds Craftax env ``env_id`` with optional ``EnvParams`` overrides.

    Raises:
      ValueError: for an unknown id, listing the known ones.
    """
    if env_id not in IDS:
        raise ValueError(f"unknown craftax env {env_id!r}; known: {', '.join(IDS)}")
    env = make_craftax_env_from_name(env_id, auto_reset=False)
    params = env.default_params
    if env_params:
        params = params.replace(**env_params)
    return CraftaxEnv(env, params, env_id)


class CraftaxEnv(Env):
    """A Craftax env with fixed ``params`` under the jaxrl protocol (``inner``: its state)."""

    def __init__(self, env: Any, params: Any, env_id: str):
        self.env = env
        self.env_id = env_id
        self.max_episode_steps = int(params.max_timesteps)
        self.params = params.replace(max_timesteps=_NO_LIMIT)
        obs_space = env.observation_space(params)
        self.observation_spec = Box(
            tuple(obs_space.shape), float(jnp.min(obs_space.low)), float(jnp.max(obs_space.high))
        )
        self.action_spec = Discrete(int(env.action_space(params).n))

    def __repr__(self) -> str:
        return f"CraftaxEnv({self.env_id})"

    def _obs(self, obs: Any) -> jax.Array:
        return jnp.asarray(obs, jnp.float32).reshape(self.observation_spec.shape)

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        obs, inner = self.env.reset_env(sub, self.params)
        return first_state(jax.tree.map(jnp.asarray, inner), self._obs(obs), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        key, sub = jax.random.split(state.key)
        action = jnp.asarray(action, jnp.int32).reshape(())
        obs, inner, reward, done, _ = self.env.step_env(sub, state.inner, action, self.params)
        inner = jax.tree.map(cast_like, inner, state.inner)
        return state.replace(
            inner=inner,
            obs=self._obs(obs),
            reward=jnp.asarray(reward, jnp.float32).reshape(()),
            terminated=jnp.asarray(done, jnp.bool_).reshape(()),
            truncated=jnp.zeros((), jnp.bool_),
            key=key,
        )
