"""Core types: an agent is a tuple of pure functions over a pytree state.

Axis convention, used everywhere: trajectories are time-major, ``[T, B, ...]``
(T steps of B parallel envs); replay samples are flat, ``[N, ...]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.core.domains import check_hparam

Metrics = dict[str, jax.Array]
AgentState = Any
Carry = Any


class LoopContext(struct.PyTreeNode):
    """What the training loop knows at an update; every batch carries one.

    Attributes:
      env_step: int32, env steps taken so far over all training envs (gradient steps
        for offline loops).
      train_return: float32, mean return of the training envs' last finished episodes
        (offline: of the training data).
      train_return_valid: bool, every training env has finished at least one episode.
    """

    env_step: jax.Array
    train_return: jax.Array
    train_return_valid: jax.Array


class Transition(struct.PyTreeNode):
    """One step of experience (leaves ``[T, B, ...]`` or ``[N, ...]``).

    Attributes:
      obs: observation the action was taken in.
      action: action taken (int32 for discrete, float32 ``[..., act_dim]`` for box).
      reward: reward received, float32.
      terminated: the step ended in a terminal state: do not bootstrap.
      truncated: the episode was cut by a time limit: bootstrap from ``next_obs``.
      next_obs: the observation the step reached (before any auto-reset).
      extras: what ``Agent.act`` returned in ``info`` (log-probs, values, search
        statistics, ...), for the keys the agent's data declaration keeps.
      context: the loop's ``LoopContext`` (scalars, no batch axis); set by the loop on
        the batch it hands to ``update``, ``None`` elsewhere.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    extras: dict = struct.field(default_factory=dict)
    context: LoopContext | None = None

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class InitFn(Protocol):
    def __call__(self, key: jax.Array) -> AgentState: ...


class ActFn(Protocol):
    """``act(state, obs [B, ...], key, explore, *, env_state, carry) -> (action [B, ...], info)``.

    ``env_state`` is the batch's ``jaxrl.envs.EnvState`` (a planner steps the simulator
    from it; ``None`` where there is none, e.g. offline evaluation of a logged obs);
    ``carry`` is the recurrent state from ``Agent.initial_carry`` / ``Agent.observe``
    (``None`` for feed-forward agents). Agents that need neither ignore both, and since
    unused inputs are dropped by the compiler they cost nothing. ``info`` is a dict of
    ``[B, ...]`` arrays; the loop keeps the keys the data declaration names and hands it
    to ``observe``. ``act`` never returns a carry: ``observe`` is the one channel.
    """

    def __call__(
        self,
        state: AgentState,
        obs: jax.Array,
        key: jax.Array,
        explore: bool = True,
        *,
        env_state: Any = None,
        carry: Carry = None,
    ) -> tuple[jax.Array, dict]: ...


class UpdateFn(Protocol):
    """``update(state, batch, key) -> (state, metrics)``; ``batch.context`` is a ``LoopContext``."""

    def __call__(
        self, state: AgentState, batch: Any, key: jax.Array
    ) -> tuple[AgentState, Metrics]: ...


class InitialCarryFn(Protocol):
    def __call__(self, batch_size: int) -> Carry: ...


class ObserveFn(Protocol):
    """``observe(state, carry, obs [B, ...], action [B, ...], info) -> carry`` after a step.

    ``obs`` is the observation the action was taken in, ``action`` the action the env was
    stepped with, ``info`` what ``act`` returned for it (a plan, a search result), or zeros
    of that structure where the loop played an action of its own (a warm-up's random
    action). A belief over the world (Drama) reads ``obs`` and ``action``; an agent that
    commits to a plan in ``act`` (the action-sequence transform) reads the plan from
    ``info``.
    """

    def __call__(
        self, state: AgentState, carry: Carry, obs: jax.Array, action: jax.Array, info: dict
    ) -> Carry: ...


class Agent(NamedTuple):
    """ONE protocol for every family: pure functions, all jittable and vmappable.

    ``init(key) -> state``; ``act`` (see ``ActFn``); ``update`` (see ``UpdateFn``).
    A recurrent agent (one that acts from a belief carried across env steps) also
    gives ``initial_carry(batch) -> carry`` (the belief at an episode start) and
    ``observe(state, carry, obs, action, info) -> carry`` (see ``ObserveFn``), the only
    way a carry moves: ``act`` reads it, never returns it. Every loop carries it per env
    through ``jaxrl.loops.next_carry`` and restarts it at episode ends. Feed-forward
    agents leave both ``None``.
    """

    init: InitFn
    act: ActFn
    update: UpdateFn
    initial_carry: InitialCarryFn | None = None
    observe: ObserveFn | None = None

    @property
    def recurrent(self) -> bool:
        return self.initial_carry is not None


def hparams_from(cls: type, overrides: dict[str, Any] | None = None) -> Any:
    """Builds an hparams dataclass of float32 scalars from its defaults and ``overrides``,
    each checked against its field's declared domain (``jaxrl.core.domains``).

    Raises:
      ValueError: for an unknown field, a value that is not a number, or one outside its
        field's domain (one line naming the field, the value and the domain).
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
        check_hparam(cls, f.name, v)
    return cls(**values)


def tree_finite(tree: Any) -> jax.Array:
    """True when every floating leaf of ``tree`` is finite (a cheap NaN/Inf flag).

    The leaves are flattened into one vector first: one fused reduction instead of one
    per leaf, which keeps the compiled program (and its compile time) small.
    """
    leaves = [jnp.ravel(x) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.isfinite(jnp.concatenate(leaves))) if leaves else jnp.asarray(True)


def mean_metrics(metrics: Metrics) -> Metrics:
    """Metrics averaged over their leading axis (iterations, updates or learners)."""
    return jax.tree.map(lambda x: jnp.mean(x.astype(jnp.float32), axis=0), metrics)
