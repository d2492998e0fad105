"""Building blocks of streaming deep RL ("stream-x", Elsayed, Vasan and Mahmood, 2024).

A streaming learner uses each transition once, as it arrives: no replay buffer, no
batches. What makes that stable, each a small piece here:

- eligibility traces as pytrees shaped like the params (``trace_*``);
- ObGD, the overshooting-bounded step size (``obgd``), and, for the "stream barrier"
  baseline, Adam fed with ``-delta * z`` (``trace_adam``); both are optax
  ``GradientTransformationExtraArgs`` whose ``update`` takes ``delta`` and ``reset``;
- online observation normalisation (Welford, sample variance, 1 until two samples as
  in the reference code) and reward scaling by the running std of the discounted
  return (``StreamNorm``);
- a linear epsilon schedule (``linear_schedule``).

The network pieces (sparse init, LayerNorm without affine parameters, leaky ReLU)
are in ``jaxrl.nets.stream``. Gradients passed to the optimisers are gradients of
the *prediction* (``grad v(s)``, ``grad log pi(a|s)``), not of a loss: the update
``delta * z`` ascends them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.core import Transition
from jaxrl.core.domains import POSITIVE, UNIT, hparam
from jaxrl.loops import AlgoSpec
from jaxrl.normalize import Welford, welford_update

# --- eligibility traces ------------------------------------------------------------------


def trace_init(params: Any) -> Any:
    """A zero trace shaped like ``params``."""
    return jax.tree.map(jnp.zeros_like, params)


def trace_accumulate(trace: Any, grads: Any, decay: jax.Array) -> Any:
    """Accumulating trace ``z <- decay * z + grad`` (``decay = gamma * lambda``)."""
    return jax.tree.map(lambda z, g: decay * z + g, trace, grads)


def trace_reset(trace: Any, reset: jax.Array) -> Any:
    """``trace`` with every leaf zeroed where ``reset`` (a bool scalar) is true."""
    return jax.tree.map(lambda z: jnp.where(reset, jnp.zeros_like(z), z), trace)


def trace_l1(trace: Any) -> jax.Array:
    """``||z||_1`` summed over every parameter of the pytree, a float32 scalar."""
    return sum(jnp.sum(jnp.abs(z)) for z in jax.tree.leaves(trace))


# --- optimisers ----------------------------------------------------------------------------


class TraceState(NamedTuple):
    trace: Any


def obgd_step_size(delta: jax.Array, trace: Any, lr: jax.Array, kappa: jax.Array) -> jax.Array:
    """ObGD's step size: with ``M = lr * kappa * max(|delta|, 1) * ||z||_1``,
    ``lr / M`` when ``M > 1``, else ``lr``."""
    m = lr * kappa * jnp.maximum(jnp.abs(delta), 1.0) * trace_l1(trace)
    return jnp.where(m > 1.0, lr / jnp.maximum(m, 1.0), lr)


def obgd(
    lr: float | jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
    kappa: float | jax.Array,
) -> optax.GradientTransformationExtraArgs:
    """Overshooting-bounded gradient descent with an eligibility trace.

    ``update(grads, state, params=None, *, delta, reset)``: the trace becomes
    ``z = gamma lam z + grads``; the returned updates are ``step * delta * z`` (add them
    to the params) with ``step = obgd_step_size(delta, z, lr, kappa)``; the trace kept
    for the next call is zero when ``reset`` (episode end), after this update.
    Hyperparameters may be traced arrays.
    """

    def init(params: Any) -> TraceState:
        return TraceState(trace_init(params))

    def update(grads, state, params=None, *, delta, reset):
        del params
        z = trace_accumulate(state.trace, grads, gamma * lam)
        step = obgd_step_size(delta, z, lr, kappa)
        updates = jax.tree.map(lambda e: step * delta * e, z)
        return updates, TraceState(trace_reset(z, reset))

    return optax.GradientTransformationExtraArgs(init, update)


class TraceAdamState(NamedTuple):
    trace: Any
    adam: optax.ScaleByAdamState


def trace_adam(
    lr: float | jax.Array, gamma: float | jax.Array, lam: float | jax.Array
) -> optax.GradientTransformationExtraArgs:
    """Classic TD(lambda)-style learning with Adam: the same trace as ``obgd``, and Adam
    applied to the semi-gradient ``-delta * z`` (the stream-barrier baseline).

    Same ``update(grads, state, params=None, *, delta, reset)`` signature as ``obgd``.
    """
    adam = optax.scale_by_adam()

    def init(params: Any) -> TraceAdamState:
        return TraceAdamState(trace_init(params), adam.init(params))

    def update(grads, state, params=None, *, delta, reset):
        del params
        z = trace_accumulate(state.trace, grads, gamma * lam)
        direction, adam_state = adam.update(jax.tree.map(lambda e: -delta * e, z), state.adam)
        updates = jax.tree.map(lambda u: -lr * u, direction)
        return updates, TraceAdamState(trace_reset(z, reset), adam_state)

    return optax.GradientTransformationExtraArgs(init, update)


def make_optimizer(
    name: str, lr: jax.Array, gamma: jax.Array, lam: jax.Array, kappa: jax.Array
) -> optax.GradientTransformationExtraArgs:
    """``"obgd"`` (stream-x) or ``"adam"`` (``trace_adam``, which ignores ``kappa``)."""
    if name == "obgd":
        return obgd(lr, gamma, lam, kappa)
    if name == "adam":
        return trace_adam(lr, gamma, lam)
    raise ValueError(f"unknown optimizer {name!r}; known: obgd, adam")


# --- observation and reward normalisation --------------------------------------------------


class StreamNorm(struct.PyTreeNode):
    """Welford statistics of observations and of the discounted-return trace ``u``.

    Attributes:
      obs: statistics of every observation reached, ``[*obs_shape]``.
      ret: statistics of ``u``, scalar.
      ret_trace: ``u <- gamma (1 - done) u + r``, scalar.
    """

    obs: Welford
    ret: Welford
    ret_trace: jax.Array

    @classmethod
    def create(cls, obs_shape: tuple[int, ...]) -> StreamNorm:
        return cls(
            obs=Welford.create(obs_shape),
            ret=Welford.create(()),
            ret_trace=jnp.zeros((), jnp.float32),
        )


def observe_obs(norm: StreamNorm, obs: jax.Array) -> StreamNorm:
    """Merges one observation ``[*obs_shape]`` into the Welford statistics."""
    return norm.replace(obs=welford_update(norm.obs, obs))


def normalize_obs(norm: StreamNorm, obs: jax.Array) -> jax.Array:
    """``(obs - mean) / sqrt(var + 1e-8)`` for ``obs [..., *obs_shape]`` (no clipping)."""
    return (obs - norm.obs.mean) / jnp.sqrt(norm.obs.var + 1e-8)


def scale_reward(
    norm: StreamNorm, reward: jax.Array, done: jax.Array, gamma: jax.Array
) -> tuple[StreamNorm, jax.Array]:
    """Updates ``u <- gamma (1 - done) u + r`` and its statistics; returns
    ``(norm, r / sqrt(var(u) + 1e-8))`` for one scalar reward."""
    u = gamma * (1.0 - done.astype(jnp.float32)) * norm.ret_trace + reward
    ret = welford_update(norm.ret, u)
    return norm.replace(ret=ret, ret_trace=u), reward / jnp.sqrt(ret.var + 1e-8)


def linear_schedule(
    start: jax.Array, end: jax.Array, duration: jax.Array, t: jax.Array
) -> jax.Array:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then ``end``."""
    frac = jnp.clip(t / jnp.maximum(duration, 1.0), 0.0, 1.0)
    return start + frac * (end - start)


def prepare_transition(
    norm: StreamNorm, t: Transition, gamma: jax.Array, config: Any
) -> tuple[StreamNorm, jax.Array, jax.Array, jax.Array]:
    """One transition ``t`` (unbatched leaves) through the stream-x input pipeline:
    ``(norm, obs, next_obs, reward)``, with ``config.normalize_obs`` / ``config.scale_reward``.

    As in the reference code, ``obs`` is normalised with the statistics it was acted on
    with and ``next_obs`` after it joins them (an episode's first obs never joins);
    the reward is scaled by the running std of the discounted return when scaling.
    """
    chex.assert_rank(t.reward, 0)
    chex.assert_shape(t.obs, norm.obs.mean.shape)
    normalize, obs, next_obs, reward = config.normalize_obs, t.obs, t.next_obs, t.reward
    x = normalize_obs(norm, obs) if normalize else obs
    if normalize:
        norm = observe_obs(norm, next_obs)
    if config.scale_reward:
        norm, reward = scale_reward(norm, reward, t.done, gamma)
    next_x = normalize_obs(norm, next_obs) if normalize else next_obs
    return norm, x, next_x, reward


OPTIMIZERS = ("obgd", "adam")


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings of the stream-x control learners (``stream_ac``, ``stream_q``).

    ``hidden``: the paper uses 2x32 for discrete control, 2x128 for MuJoCo; ``num_envs``
    independent learners, each with its own env; ``optimizer``: one of ``OPTIMIZERS``.
    """

    total_steps: int = 500_000
    num_envs: int = 1
    hidden: tuple[int, ...] = (32, 32)
    sparsity: float = 0.9
    layer_norm: bool = True
    normalize_obs: bool = True
    scale_reward: bool = True
    optimizer: str = "obgd"
    num_evals: int = 20
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    """Step size and eligibility-trace settings every stream-x learner has (float32)."""

    lr: float = hparam(1.0, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    lam: float = hparam(0.8, UNIT)


#: Fields every streaming learner's ``Config`` has that must be positive.
POSITIVE = ("num_envs",)


def data(config: Any, env: Any) -> loops.Stream:
    """``config.num_envs`` independent learners, one transition per update."""
    return loops.Stream(num_envs=config.num_envs)


#: ``spec(name, summary, Config, HParams, make_agent, action_kinds=..., check=...)``: a
#: streaming learner's ``AlgoSpec`` (``Stream`` data, cartpole by default).
spec = functools.partial(AlgoSpec, data=data, default_env="cartpole", positive=POSITIVE)


def check_optimizer(config: Config, env: Any) -> None:
    """The stream-x control learners' check: a known ``optimizer`` and valid settings."""
    check_config(config, OPTIMIZERS)


def check_config(config: Any, optimizers: Any) -> None:
    """Checks a streaming learner's ``Config``; ValueError naming the field otherwise."""
    if config.optimizer not in optimizers:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; known: {', '.join(optimizers)}")
    if not 0.0 <= config.sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {config.sparsity}")
    if config.num_eval_envs % config.num_envs:
        raise ValueError(
            f"num_eval_envs={config.num_eval_envs} must be a multiple of num_envs={config.num_envs}"
        )
