"""Stream TD(lambda) (Elsayed, Vasan and Mahmood, 2024): prediction, no control.

Learns the value of a fixed behaviour policy (uniform random unless one is given)
from a stream of transitions: ``delta = r + gamma V(s') - V(s)`` and ObGD on the trace
of ``grad V(s)``, reset at episode end; online observation normalisation and reward
scaling as in the other stream-x learners. ``make_predict`` turns the learned values
back into reward units.

Not registered with ``jaxrl train``: its evaluation return is the behaviour policy's,
which says nothing about what it learned. Use ``make_train`` and ``make_predict``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.stream import common as sx
from jaxrl.core import Agent, Transition
from jaxrl.core.domains import POSITIVE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.nets import StreamMLP

#: ``policy(obs [B, *obs_shape], key) -> action [B, ...]``
Policy = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings."""

    total_steps: int = 100_000
    num_envs: int = 1
    hidden: tuple[int, ...] = (32, 32)
    sparsity: float = 0.9
    layer_norm: bool = True
    normalize_obs: bool = True
    scale_reward: bool = True
    num_evals: int = 10
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    lr: float = hparam(1.0, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    lam: float = hparam(0.8, UNIT)
    kappa: float = hparam(2.0, POSITIVE)


class StreamTDState(struct.PyTreeNode):
    params: Any
    opt_state: Any
    norm: sx.StreamNorm
    step: jax.Array


def uniform_policy(env: Env) -> Policy:
    """Uniformly random actions from ``env.action_spec``."""
    spec = env.action_spec

    def policy(obs: jax.Array, key: jax.Array) -> jax.Array:
        batch = obs.shape[: obs.ndim - len(env.observation_spec.shape)]
        keys = jax.random.split(key, math.prod(batch))
        return jax.vmap(spec.sample)(keys).reshape((*batch, *spec.shape))

    return policy


def _net(config: Config) -> StreamMLP:
    return StreamMLP(1, config.hidden, config.sparsity, config.layer_norm)


def make_predict(config: Config, env: Env) -> Callable[[StreamTDState, jax.Array], jax.Array]:
    """``predict(state, obs [..., *obs_shape]) -> [...]``: the value in reward units."""
    net = _net(config)

    def predict(state: StreamTDState, obs: jax.Array) -> jax.Array:
        x = sx.normalize_obs(state.norm, obs) if config.normalize_obs else obs
        v = net.apply(state.params, x)[..., 0]
        return v * jnp.sqrt(state.norm.ret.var + 1e-8) if config.scale_reward else v

    return predict


def make_agent(
    config: Config,
    env: Env,
    hparams: HParams,
    schedule: loops.Schedule | None = None,
    policy: Policy | None = None,
) -> Agent:
    """Stream TD's (init, act, update); ``act`` runs ``policy`` whatever ``explore`` says."""
    obs_shape = env.observation_spec.shape
    net = _net(config)
    policy = policy or uniform_policy(env)
    tx = sx.obgd(hparams.lr, hparams.gamma, hparams.lam, hparams.kappa)

    def value(params: Any, x: jax.Array) -> jax.Array:
        return net.apply(params, x)[..., 0]

    def init(key: jax.Array) -> StreamTDState:
        params = net.init(key, jnp.zeros(obs_shape, jnp.float32))
        return StreamTDState(
            params, tx.init(params), sx.StreamNorm.create(obs_shape), jnp.zeros((), jnp.int32)
        )

    def act(state: StreamTDState, obs: jax.Array, key: jax.Array, explore=True, **_):
        return policy(obs, key), {}

    def update(state: StreamTDState, t: Transition, key: jax.Array):
        """One transition (unbatched leaves)."""
        del key
        norm, obs, next_obs, reward = sx.prepare_transition(state.norm, t, hparams.gamma, config)
        v, grads = jax.value_and_grad(value)(state.params, obs)
        not_terminal = 1.0 - t.terminated.astype(jnp.float32)
        delta = reward + hparams.gamma * not_terminal * value(state.params, next_obs) - v
        updates, opt_state = tx.update(grads, state.opt_state, delta=delta, reset=t.done)
        params = optax.apply_updates(state.params, updates)
        metrics = {"td_error": jnp.abs(delta), "value": v}
        return StreamTDState(params, opt_state, norm, state.step + 1), metrics

    return Agent(init=init, act=act, update=update)


SUMMARY = "Stream TD(lambda) prediction of a fixed behaviour policy (uniform by default)"
KINDS = ("discrete", "continuous")
SPEC = sx.spec("stream_td", SUMMARY, Config, HParams, make_agent, action_kinds=KINDS)
