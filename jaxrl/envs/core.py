"""The functional environment protocol shared by every jaxrl environment.

An environment is a stateless object with two pure functions::

    reset(key) -> EnvState
    step(state, action) -> EnvState

plus static ``observation_spec`` and ``action_spec``. All randomness an env needs
after ``reset`` lives in ``EnvState.key``, so ``step`` is a function of its inputs.
Wrappers keep their own bookkeeping in ``EnvState.info`` (a dict of arrays).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Collection
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@dataclasses.dataclass(frozen=True)
class Box:
    """A box of real values with shape ``shape`` and elementwise bounds."""

    shape: tuple[int, ...]
    low: float | tuple = -jnp.inf
    high: float | tuple = jnp.inf
    dtype: Any = jnp.float32

    @property
    def discrete(self) -> bool:
        return False

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform sample; unbounded dimensions are drawn from [-1, 1]."""
        low = jnp.broadcast_to(jnp.asarray(self.low, jnp.float32), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, jnp.float32), self.shape)
        low = jnp.where(jnp.isfinite(low), low, -1.0)
        high = jnp.where(jnp.isfinite(high), high, 1.0)
        return jax.random.uniform(key, self.shape, self.dtype, low, high)


@dataclasses.dataclass(frozen=True)
class Discrete:
    """``num_actions`` integer actions 0..n-1 (a scalar int32 per env)."""

    num_actions: int
    shape: tuple[int, ...] = ()
    dtype: Any = jnp.int32

    @property
    def discrete(self) -> bool:
        return True

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, self.num_actions, self.dtype)


Spec = Box | Discrete


class EnvState(struct.PyTreeNode):
    """State of one (or, once batched, B) environments.

    Attributes:
      inner: the wrapped simulator's own state (any pytree).
      obs: observation after the last transition, ``[*obs_shape]`` (``[B, ...]`` batched).
      reward: reward of the last transition, float32 scalar.
      terminated: the last transition reached a terminal state (no bootstrap).
      truncated: the episode was cut by a time limit (bootstrap from ``final_obs``).
      key: PRNG key the env consumes for stochastic dynamics and resets.
      info: wrapper bookkeeping, a dict of arrays with a fixed structure.
    """

    inner: Any
    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    key: jax.Array
    info: dict = struct.field(default_factory=dict)

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class Env:
    """Base class of the functional protocol. Subclasses are stateless."""

    observation_spec: Box
    action_spec: Spec
    #: Default episode length used by ``jaxrl.envs.make`` (``None``: unbounded).
    max_episode_steps: int | None = None
    #: The simulator's state lives outside JAX (ALE's XLA vector env, ``ale/<game>``):
    #: ``step`` starts the next episode itself where one ends (the last observation in
    #: ``info["final_obs"]``, so ``AutoReset`` leaves it alone), and the state can be
    #: neither checkpointed nor split over devices.
    external_state: bool = False
    #: Evaluation samples actions (``explore=True``) instead of taking the policy's mode:
    #: Atari (``ale/<game>``), where a greedy policy can stall a game for its whole 27k-step
    #: horizon (Breakout's ball is served only by FIRE), as the Atari100k papers sample.
    eval_explore: bool = False

    def reset(self, key: jax.Array) -> EnvState:
        raise NotImplementedError

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        raise NotImplementedError

    @property
    def unwrapped(self) -> Env:
        return self

    def capabilities(self) -> tuple[Any, ...]:
        """What this env offers agents beyond the protocol (``jaxrl.envs.capabilities``
        records: a demonstrator, a dataset, linear features, a human model); none here."""
        return ()

    @property
    def batch_size(self) -> int | None:
        """Number of envs stepped together, ``None`` for a single env."""
        return None


def first_state(inner: Any, obs: jax.Array, key: jax.Array) -> EnvState:
    """An EnvState right after a reset: zero reward, not done, empty info."""
    return EnvState(
        inner=inner,
        obs=obs,
        reward=jnp.zeros((), jnp.float32),
        terminated=jnp.zeros((), jnp.bool_),
        truncated=jnp.zeros((), jnp.bool_),
        key=key,
        info={},
    )


def cast_like(new: Any, old: jax.Array) -> jax.Array:
    """``new`` as an array of ``old``'s dtype, so that state dtypes stay fixed across steps."""
    new = jnp.asarray(new)
    return new if new.dtype == old.dtype else new.astype(old.dtype)


#: The value types an env option may have (``jaxrl train --env-arg KEY=VALUE``).
PLAIN_TYPES = (bool, int, float, str)


def _plain(hint: Any) -> bool:
    """Whether ``hint`` is a plain value type, a tuple of them, or one of them or None."""
    if hint in PLAIN_TYPES:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return bool(args) and all(a in PLAIN_TYPES or a is Ellipsis for a in args)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and _plain(rest[0])
    return False


def call_args(fn: Callable[..., Any], skip: Collection[str] = ()) -> dict[str, Any]:
    """``{keyword: type}`` of the arguments of ``fn`` (a function or a class) that take a
    plain value (``PLAIN_TYPES``, a tuple of them, or one of them or None): what can be
    given as text. A parameter without a usable annotation is typed by its default;
    ``skip`` names parameters to leave out (e.g. the env id an adapter passes itself)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # annotations naming what is only imported for type checkers
        hints = {}
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        hint = hints.get(p.name)
        if not _plain(hint) and p.default is not p.empty and p.default is not None:
            hint = type(p.default)
        if _plain(hint):
            out[p.name] = hint
    return out
