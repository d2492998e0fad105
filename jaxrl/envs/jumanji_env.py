"""Adapter for Jumanji (Bonnet et al. 2024): ``jumanji/<id>``, e.g. ``jumanji/Snake-v1``;
any id in ``jumanji.registered_environments()``.

Observations: Jumanji's observation is a pytree (a NamedTuple of arrays, e.g. Snake's
``grid [12, 12, 5]``, ``step_count []``, ``action_mask [4]``). A single-array
observation keeps its shape; otherwise every array leaf is cast to float32, flattened
and concatenated in ``jax.tree.leaves`` order into one vector ``[sum of leaf sizes]``
(Snake-v1: ``[725]``). Action masks are part of the vector; the adapter does not
enforce them (Jumanji treats an invalid action as a no-op or a penalty).

Actions: a ``DiscreteArray`` becomes ``Discrete(n)``; a ``MultiDiscreteArray`` with
``num_values`` ``[n_1, ..., n_k]`` becomes one ``Discrete(n_1 * ... * n_k)`` whose
index is unravelled (row-major) into the k sub-actions (a product beyond int32, e.g.
JobShop's, raises ``ValueError``). Continuous action specs (MultiCVRP, SearchAndRescue)
raise ``ValueError`` naming the env. Sokoban downloads its levels on first use.

Termination vs truncation: Jumanji ends an episode with a ``LAST`` timestep;
``discount == 0`` there is termination, ``discount > 0`` is Jumanji's own time limit,
reported as ``truncated``. Where the env exposes its limit (``time_limit``, e.g. Snake,
Maze), it is also ``max_episode_steps``, so ``jaxrl.envs.make``'s ``EpisodeLimit``
fires at the same step (truncation either way); envs without one get
``max_episode_steps=None`` (pass ``episode_length`` to ``make`` for evaluation).
The adapter never auto-resets (``AutoReset`` does).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import jumanji
from jumanji import specs
from jumanji.types import StepType

from jaxrl.envs.core import Box, Discrete, Env, EnvState, cast_like, first_state

_MAX_ACTIONS = 2**31 - 1


def names() -> list[str]:
    return sorted(jumanji.registered_environments())


def make(env_id: str, **kwargs: Any) -> JumanjiEnv:
    """Builds Jumanji env ``env_id``; ``kwargs`` go to its constructor (e.g. ``time_limit``).

    Raises:
      ValueError: for an unknown id (listing the known ones) or a continuous action spec.
    """
    if env_id not in jumanji.registered_environments():
        raise ValueError(f"unknown jumanji env {env_id!r}; known: {', '.join(names())}")
    return JumanjiEnv(jumanji.make(env_id, **kwargs), env_id)


class JumanjiEnv(Env):
    """A Jumanji env under the jaxrl protocol (``inner``: Jumanji's state)."""

    def __init__(self, env: Any, env_id: str):
        self.env = env
        self.env_id = env_id
        spec = env.action_spec
        if isinstance(spec, specs.DiscreteArray):
            self._action_shape: tuple[int, ...] = ()
            self.action_spec = Discrete(int(spec.num_values))
        elif isinstance(spec, specs.MultiDiscreteArray):
            self._action_shape = tuple(int(n) for n in jnp.ravel(spec.num_values))
            self._action_dtype = spec.dtype
            self._action_spec_shape = tuple(spec.shape)
            n = math.prod(self._action_shape)
            if n > _MAX_ACTIONS:
                raise ValueError(
                    f"jumanji env {env_id!r}: its MultiDiscreteArray {self._action_shape} "
                    f"flattens to {n} actions, more than int32 holds"
                )
            self.action_spec = Discrete(n)
        else:
            raise ValueError(
                f"jumanji env {env_id!r} has action spec {type(spec).__name__}; "
                "the adapter supports DiscreteArray and MultiDiscreteArray only"
            )
        leaves = jax.tree.leaves(env.observation_spec.generate_value())
        self._single = len(leaves) == 1
        shape = tuple(leaves[0].shape) if self._single else (sum(x.size for x in leaves),)
        self.observation_spec = Box(shape)
        limit = getattr(env, "time_limit", None)
        self.max_episode_steps = int(limit) if isinstance(limit, int) else None

    def __repr__(self) -> str:
        return f"JumanjiEnv({self.env_id})"

    def _obs(self, obs: Any) -> jax.Array:
        leaves = [jnp.asarray(x, jnp.float32) for x in jax.tree.leaves(obs)]
        if self._single:
            return leaves[0]
        return jnp.concatenate([x.reshape(-1) for x in leaves])

    def _action(self, action: jax.Array) -> jax.Array:
        action = jnp.asarray(action, jnp.int32).reshape(())
        if not self._action_shape:
            return action
        parts = jnp.stack(jnp.unravel_index(action, self._action_shape))
        return parts.astype(self._action_dtype).reshape(self._action_spec_shape)

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        inner, ts = self.env.reset(sub)
        return first_state(jax.tree.map(jnp.asarray, inner), self._obs(ts.observation), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        inner, ts = self.env.step(state.inner, self._action(action))
        inner = jax.tree.map(cast_like, inner, state.inner)
        last = ts.step_type == StepType.LAST
        return state.replace(
            inner=inner,
            obs=self._obs(ts.observation),
            reward=jnp.asarray(ts.reward, jnp.float32).reshape(()),
            terminated=jnp.logical_and(last, ts.discount == 0).reshape(()),
            truncated=jnp.logical_and(last, ts.discount > 0).reshape(()),
        )
