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
``discount == 0`` there is termination and ``discount > 0`` truncation. But most
Jumanji envs (Snake, Maze, Cleaner, Tetris, PacMan, ...) end at their own
``time_limit`` with ``discount == 0`` too. So where the env exposes ``time_limit``, the
adapter counts steps itself and reports a ``LAST`` timestep at or past that limit as
``truncated`` (a genuine end on exactly the limit step is then also called a
truncation, the one ambiguity), and any other ``LAST`` with ``discount == 0`` as
``terminated``. ``time_limit`` also becomes ``max_episode_steps``, so
``jaxrl.envs.make``'s ``EpisodeLimit`` truncates at the same step. Envs without a
``time_limit`` get ``max_episode_steps=None`` (pass ``episode_length`` to ``make``,
which evaluation needs). Multi-agent envs (LevelBasedForaging, RobotWarehouse) are
served as one agent choosing the joint action; their per-agent rewards are summed.
The adapter never auto-resets (``AutoReset`` does).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import jumanji
from jumanji import registration, specs
from jumanji.types import StepType

from jaxrl.envs.core import Box, Discrete, Env, EnvState, call_args, cast_like, first_state

_MAX_ACTIONS = 2**31 - 1
_NO_LIMIT = 2**30


def names() -> list[str]:
    return sorted(jumanji.registered_environments())


def args(env_id: str) -> dict[str, Any]:
    """The plain-valued keyword arguments of Jumanji env ``env_id``'s constructor (e.g.
    ``time_limit``, ``num_rows``); Game2048's ``board_size``."""
    return call_args(registration.load(registration._REGISTRY[env_id].entry_point))


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
        self._limit = _NO_LIMIT if self.max_episode_steps is None else self.max_episode_steps

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
        inner = (jax.tree.map(jnp.asarray, inner), jnp.zeros((), jnp.int32))
        return first_state(inner, self._obs(ts.observation), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """``state.inner`` is ``(jumanji_state, steps since reset)``."""
        inner, steps = state.inner
        new, ts = self.env.step(inner, self._action(action))
        new = jax.tree.map(cast_like, new, inner)
        steps = steps + 1
        last = jnp.all(ts.step_type == StepType.LAST)
        timeout = jnp.logical_or(jnp.any(ts.discount > 0), steps >= self._limit)
        return state.replace(
            inner=(new, steps),
            obs=self._obs(ts.observation),
            reward=jnp.sum(jnp.asarray(ts.reward, jnp.float32)),
            terminated=jnp.logical_and(last, jnp.logical_not(timeout)),
            truncated=jnp.logical_and(last, timeout),
        )
