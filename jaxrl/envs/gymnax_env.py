"""Adapter for gymnax environments: ``gymnax/<id>`` (e.g. ``gymnax/CartPole-v1``).

The adapter steps gymnax's ``step_env``, never ``step``: gymnax's ``step`` resets
finished episodes by itself and applies gymnax's time limit, while in jaxrl both
belong to wrappers (``AutoReset``, ``EpisodeLimit``).

Termination vs truncation: in gymnax 1.0 ``step_env`` returns only the natural
termination of the task (``is_terminal`` no longer includes the time limit;
``Environment.step`` computes the time limit separately with ``is_truncated``,
which this adapter never calls). So the adapter reports ``step_env``'s flag as
``terminated`` and always ``truncated=False``; gymnax's
``params.max_steps_in_episode`` becomes ``max_episode_steps``, which
``jaxrl.envs.make`` turns into an ``EpisodeLimit``. Tasks whose natural end
depends on time (bsuite's UmbrellaChain, MemoryChain) still terminate.

Spaces: gymnax ``Discrete`` actions map to ``Discrete``, ``Box`` to ``Box``.
Observations are cast to float32 with gymnax's shape kept; a ``Discrete``
observation space (FrozenLake) becomes a one-hot ``Box((n,), 0, 1)``.
"""

from __future__ import annotations

from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from jaxrl.envs.core import (
    Box,
    Discrete,
    Env,
    EnvState,
    Spec,
    call_args,
    cast_like,
    first_state,
)

_F32_MAX = float(np.finfo(np.float32).max)


def names() -> list[str]:
    """Every gymnax id (``MNISTBandit-bsuite`` downloads MNIST when built)."""
    return list(gymnax.registered_envs)


def args(env_id: str) -> dict[str, Any]:
    """The plain-valued keyword arguments of gymnax env ``env_id``'s constructor."""
    env, _ = gymnax.make(env_id)
    return call_args(type(env))


def make(env_id: str, env_params: dict[str, Any] | None = None, **kwargs: Any) -> GymnaxEnv:
    """Builds gymnax env ``env_id``.

    Args:
      env_id: a gymnax id from ``names()``.
      env_params: overrides of the env's default ``EnvParams`` fields.
      **kwargs: passed to the gymnax env's constructor.

    Raises:
      ValueError: for an unknown id, listing the known ones.
    """
    if env_id not in gymnax.registered_envs:
        raise ValueError(f"unknown gymnax env {env_id!r}; known: {', '.join(names())}")
    env, params = gymnax.make(env_id, **kwargs)
    if env_params:
        params = params.replace(**env_params)
    return GymnaxEnv(env, params)


def _bound(value: Any, shape: tuple[int, ...]) -> float | tuple:
    """A gymnax bound as a float (uniform) or nested tuple; |v| >= float32 max -> inf."""
    arr = np.broadcast_to(np.asarray(value, np.float64), shape)
    arr = np.where(np.abs(arr) >= _F32_MAX, np.copysign(np.inf, arr), arr)
    flat = arr.reshape(-1)
    if flat.size == 0 or np.all(flat == flat[0]):
        return float(flat[0]) if flat.size else 0.0
    return _nested_tuple(arr)


def _nested_tuple(arr: np.ndarray) -> tuple:
    if arr.ndim == 1:
        return tuple(float(v) for v in arr)
    return tuple(_nested_tuple(a) for a in arr)


def _action_spec(space: spaces.Space) -> Spec:
    """gymnax action space -> ``Discrete(n)`` or ``Box(shape, low, high)``."""
    if isinstance(space, spaces.Discrete):
        return Discrete(int(space.n))
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        return Box(shape, _bound(space.low, shape), _bound(space.high, shape))
    raise ValueError(f"unsupported gymnax action space {type(space).__name__}")


def _observation_spec(space: spaces.Space) -> Box:
    """gymnax observation space -> ``Box``; ``Discrete(n)`` becomes one-hot ``[n]``."""
    if isinstance(space, spaces.Discrete):
        return Box((int(space.n),), 0.0, 1.0)
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        return Box(shape, _bound(space.low, shape), _bound(space.high, shape))
    raise ValueError(f"unsupported gymnax observation space {type(space).__name__}")


class GymnaxEnv(Env):
    """A gymnax ``Environment`` with fixed ``params`` under the jaxrl protocol.

    ``EnvState.inner`` is gymnax's env state. ``EnvState.key`` is split on every
    step for the key ``step_env`` consumes, so a trajectory is a function of the
    reset key and the actions.
    """

    def __init__(self, env: Any, params: Any):
        self.env = env
        self.params = params
        obs_space = env.observation_space(params)
        self._one_hot = isinstance(obs_space, spaces.Discrete)
        self.observation_spec = _observation_spec(obs_space)
        self.action_spec = _action_spec(env.action_space(params))
        self.max_episode_steps = int(params.max_steps_in_episode)

    def __repr__(self) -> str:
        return f"GymnaxEnv({self.env.name})"

    def _obs(self, obs: Any) -> jax.Array:
        """gymnax observation -> float32 ``[*observation_spec.shape]``."""
        if self._one_hot:
            return jax.nn.one_hot(obs, self.observation_spec.shape[0], dtype=jnp.float32)
        return jnp.asarray(obs, jnp.float32).reshape(self.observation_spec.shape)

    def _action(self, action: jax.Array) -> jax.Array:
        if isinstance(self.action_spec, Discrete):
            return jnp.asarray(action, jnp.int32).reshape(())
        return jnp.asarray(action, jnp.float32).reshape(self.action_spec.shape)

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        obs, inner = self.env.reset_env(sub, self.params)
        return first_state(jax.tree.map(jnp.asarray, inner), self._obs(obs), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        key, sub = jax.random.split(state.key)
        obs, inner, reward, terminated, _ = self.env.step_env(
            sub, state.inner, self._action(action), self.params
        )
        inner = jax.tree.map(cast_like, inner, state.inner)
        return state.replace(
            inner=inner,
            obs=self._obs(obs),
            reward=jnp.asarray(reward, jnp.float32).reshape(()),
            terminated=jnp.asarray(terminated, jnp.bool_).reshape(()),
            truncated=jnp.zeros((), jnp.bool_),
            key=key,
        )
