"""Adapter for Brax environments on the MJX backend: ``brax/<name>`` (e.g. ``brax/ant``).

Brax's raw envs (``brax.envs.get_environment``, without brax's training
wrappers) only terminate (falling over, pole past its angle limit, NaNs); they
have no time limit, so ``done`` maps to ``terminated`` and truncation comes from
``jaxrl.envs.EpisodeLimit`` (``max_episode_steps = 1000``, the Brax/Gym
convention). Actions live in ``[-1, 1]`` (Brax rescales them to the actuator
range) and are clipped there before stepping.
"""

from __future__ import annotations

from typing import Any

import brax.envs
import jax
import jax.numpy as jnp

from jaxrl.envs.core import Box, Env, EnvState, call_args, cast_like, first_state

#: Brax's unit-test env (no physics, no MJX backend): not offered.
_EXCLUDED = frozenset({"fast"})


def names() -> list[str]:
    """Registered Brax env names (``ant``, ``halfcheetah``, ``hopper``, ...)."""
    return sorted(n for n in brax.envs._envs if n not in _EXCLUDED)


def args(name: str) -> dict[str, Any]:
    """``backend`` and Brax env ``name``'s plain-valued constructor arguments."""
    return {"backend": str, **call_args(brax.envs._envs[name])}


def make(name: str, **kwargs: Any) -> BraxEnv:
    """Builds Brax env ``name`` on the MJX backend; ``kwargs`` go to its constructor.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    if name not in names():
        raise ValueError(f"unknown brax env {name!r}; known: {', '.join(names())}")
    kwargs.setdefault("backend", "mjx")
    return BraxEnv(brax.envs.get_environment(name, **kwargs))


class BraxEnv(Env):
    """A Brax ``Env`` under the jaxrl protocol; ``EnvState.inner`` is the whole Brax ``State``.

    Observation ``[observation_size]`` float32, action ``[action_size]`` in
    ``[-1, 1]``. Brax dynamics are deterministic after reset, so ``step`` leaves
    ``EnvState.key`` alone.
    """

    max_episode_steps = 1000

    def __init__(self, env: Any):
        self.env = env
        obs = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs
        if not hasattr(obs, "shape") or len(obs.shape) != 1:
            raise ValueError(f"expected a flat array observation, got {obs}")
        self.observation_spec = Box(tuple(obs.shape))
        self.action_spec = Box((int(env.action_size),), -1.0, 1.0)

    def __repr__(self) -> str:
        return f"BraxEnv({type(self.env).__name__})"

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        inner = jax.tree.map(jnp.asarray, self.env.reset(sub))
        inner = inner.replace(
            obs=jnp.asarray(inner.obs, jnp.float32),
            reward=jnp.asarray(inner.reward, jnp.float32),
            done=jnp.asarray(inner.done, jnp.float32),
        )
        return first_state(inner, inner.obs, key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        # Some Brax envs update `metrics` in place: pass copies.
        prev = state.inner.replace(metrics=dict(state.inner.metrics), info=dict(state.inner.info))
        inner = self.env.step(prev, action)
        inner = jax.tree.map(cast_like, inner, state.inner)
        return state.replace(
            inner=inner,
            obs=inner.obs,
            reward=inner.reward.reshape(()),
            terminated=(inner.done > 0).reshape(()),
            truncated=jnp.zeros((), jnp.bool_),
        )
