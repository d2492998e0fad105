"""Adapter for MuJoCo Playground's DM Control suite: ``playground/<Name>``.

Names are ``mujoco_playground.registry.dm_control_suite.ALL_ENVS`` (e.g.
``playground/CartpoleBalance``, ``playground/CheetahRun``). Envs are built with
``impl='jax'`` (MJX's JAX implementation) by default: Playground's default
``'warp'`` needs a GPU and is far slower on CPU.

Playground envs have no time limit of their own (Brax's training wrappers add
one), and ``done`` only flags a diverged simulation (NaNs) or, for a few tasks,
a real terminal state; it maps to ``terminated``. The env config's
``episode_length`` (1000 for DM Control) becomes ``max_episode_steps`` so that
``jaxrl.envs.EpisodeLimit`` truncates. Actions are clipped to ``[-1, 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from mujoco_playground import registry

from jaxrl.envs.core import PLAIN_TYPES, Box, Env, EnvState, cast_like, first_state


def names() -> list[str]:
    """DM Control suite task names (``CartpoleBalance``, ``CheetahRun``, ...)."""
    return list(registry.dm_control_suite.ALL_ENVS)


def args(name: str) -> dict[str, Any]:
    """``impl`` and the plain-valued top-level fields of task ``name``'s env config."""
    config = registry.get_default_config(name)
    plain = {k: type(v) for k, v in config.items() if type(v) in PLAIN_TYPES}
    return {"impl": str, **plain}


def make(name: str, impl: str = "jax", **config_overrides: Any) -> PlaygroundEnv:
    """Builds DM Control task ``name``.

    Args:
      name: a task from ``names()``.
      impl: MJX implementation, ``'jax'`` (default, right for CPU) or ``'warp'``.
      **config_overrides: env config fields to override (flattened keys, e.g.
        ``ctrl_dt=0.02``).

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    if name not in names():
        raise ValueError(f"unknown playground env {name!r}; known: {', '.join(names())}")
    env = registry.load(name, config_overrides={"impl": impl, **config_overrides})
    return PlaygroundEnv(env)


def _flat_obs(obs: Any) -> jax.Array:
    """Playground observation -> float32 array; a dict yields its ``'state'`` entry,
    or else its leaves flattened and concatenated in key order."""
    if isinstance(obs, Mapping):
        if "state" in obs:
            obs = obs["state"]
        else:
            leaves = jax.tree.leaves(obs)
            obs = jnp.concatenate([jnp.ravel(x) for x in leaves]) if leaves else jnp.zeros(0)
    return jnp.asarray(obs, jnp.float32)


class PlaygroundEnv(Env):
    """A Playground ``MjxEnv`` under the jaxrl protocol; ``EnvState.inner`` is its ``State``.

    Observation ``[obs_size]`` float32, action ``[action_size]`` in ``[-1, 1]``.
    Playground keeps its own PRNG key in ``inner.info['rng']`` (seeded by reset),
    so ``step`` leaves ``EnvState.key`` alone.
    """

    def __init__(self, env: Any):
        self.env = env
        obs = jax.eval_shape(lambda k: _flat_obs(env.reset(k).obs), jax.random.PRNGKey(0))
        self.observation_spec = Box(tuple(obs.shape))
        self.action_spec = Box((int(env.action_size),), -1.0, 1.0)
        self.max_episode_steps = int(env._config.episode_length)

    def __repr__(self) -> str:
        return f"PlaygroundEnv({type(self.env).__name__})"

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        inner = self.env.reset(sub)
        inner = jax.tree.map(jnp.asarray, inner).replace(
            reward=jnp.asarray(inner.reward, jnp.float32),
            done=jnp.asarray(inner.done, jnp.float32),
        )
        return first_state(inner, _flat_obs(inner.obs), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        # Playground tasks update `metrics` in place: pass copies.
        prev = state.inner.replace(metrics=dict(state.inner.metrics), info=dict(state.inner.info))
        inner = self.env.step(prev, action)
        inner = jax.tree.map(cast_like, inner, state.inner)
        return state.replace(
            inner=inner,
            obs=_flat_obs(inner.obs),
            reward=inner.reward.reshape(()),
            terminated=(inner.done > 0).reshape(()),
            truncated=jnp.zeros((), jnp.bool_),
        )
