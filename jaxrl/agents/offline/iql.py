"""IQL: implicit Q-learning (Kostrikov et al., 2021), the offline dynamic-programming baseline.

Losses on dataset transitions only (never querying actions outside the data):

- value: expectile regression ``L_V = E[|expectile - 1(u < 0)| u^2]``,
  ``u = min_i Q'_i(s, a) - V(s)`` (``jaxrl.losses.expectile_loss``);
- critics: ``L_Q = E[(r + gamma (1 - term) V(s') - Q_i(s, a))^2]`` for twin critics,
  Polyak-averaged targets ``Q'``;
- policy: advantage-weighted regression, weights ``min(exp(beta (Q'(s, a) - V(s))), 100)``.
  The policy here is a deterministic tanh MLP, so the weighted log-likelihood becomes a
  weighted squared error (a common simplification; the paper uses a Gaussian).

Defaults are the paper's locomotion ones (``expectile`` 0.7, ``beta`` 3, ``gamma`` 0.99, lr 3e-4).
Offline: ``total_steps`` and the metrics' ``env_steps`` count gradient steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.offline import common
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, OPEN_UNIT, POSITIVE, RATE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.losses import expectile_loss
from jaxrl.nets import QNetwork, TanhPolicy, ValueHead


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings (``jaxrl.agents.offline.common.OfflineConfig``)."""


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = hparam(3e-4, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    tau: float = hparam(0.005, RATE)  # Polyak rate of the target critics
    expectile: float = hparam(0.7, OPEN_UNIT)
    beta: float = hparam(3.0, NONNEGATIVE)  # inverse temperature of the advantage weights
    max_weight: float = hparam(100.0, POSITIVE)


class IQLState(struct.PyTreeNode):
    actor_params: Any
    critic_params: Any  # twin critics stacked on a leading [2] axis
    target_critic_params: Any
    value_params: Any
    actor_opt: Any
    critic_opt: Any
    value_opt: Any
    step: jax.Array


def awr_weights(adv: jax.Array, beta: jax.Array, max_weight: jax.Array) -> jax.Array:
    """``min(exp(beta * adv), max_weight)``, computed without overflow."""
    return jnp.exp(jnp.minimum(beta * adv, jnp.log(max_weight)))


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """IQL's (init, act, update); ``hparams`` may be traced."""
    center, half = common.action_bounds(env)
    act_dim = center.shape[0]
    obs_shape = env.observation_spec.shape
    actor = TanhPolicy(act_dim, config.hidden, config.activation)
    critic = QNetwork(config.hidden, config.activation)
    value = ValueHead(config.hidden, config.activation)
    critic_apply = jax.vmap(critic.apply, in_axes=(0, None, None))
    actor_tx, critic_tx, value_tx = (adam(hparams.lr) for _ in range(3))

    def init(key: jax.Array) -> IQLState:
        a_key, c_key, v_key = jax.random.split(key, 3)
        obs = jnp.zeros((1, *obs_shape), jnp.float32)
        act = jnp.zeros((1, act_dim), jnp.float32)
        actor_params = actor.init(a_key, obs)
        critic_params = jax.vmap(critic.init, in_axes=(0, None, None))(
            jax.random.split(c_key, 2), obs, act
        )
        value_params = value.init(v_key, obs)
        return IQLState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            value_params=value_params,
            actor_opt=actor_tx.init(actor_params),
            critic_opt=critic_tx.init(critic_params),
            value_opt=value_tx.init(value_params),
            step=jnp.zeros((), jnp.int32),
        )

    def act(state: IQLState, obs: jax.Array, key: jax.Array, explore=False, **_):
        return center + half * actor.apply(state.actor_params, obs), {}

    def update(state: IQLState, batch: Transition, key: jax.Array):
        """``batch``: flat ``[N, ...]`` dataset transitions."""
        chex.assert_rank(batch.reward, 1)
        action = (batch.action - center) / half
        target_q = jnp.min(critic_apply(state.target_critic_params, batch.obs, action), 0)

        def value_loss(params):
            return expectile_loss(target_q - value.apply(params, batch.obs), hparams.expectile)

        v_loss, v_grads = jax.value_and_grad(value_loss)(state.value_params)
        v_updates, value_opt = value_tx.update(v_grads, state.value_opt)
        value_params = optax.apply_updates(state.value_params, v_updates)

        next_v = value.apply(value_params, batch.next_obs)
        not_done = 1.0 - batch.terminated.astype(jnp.float32)
        y = jax.lax.stop_gradient(batch.reward + hparams.gamma * not_done * next_v)

        def critic_loss(params):
            q = critic_apply(params, batch.obs, action)
            return jnp.mean(jnp.sum(jnp.square(q - y[None]), 0))

        c_loss, c_grads = jax.value_and_grad(critic_loss)(state.critic_params)
        c_updates, critic_opt = critic_tx.update(c_grads, state.critic_opt)
        critic_params = optax.apply_updates(state.critic_params, c_updates)

        adv = target_q - value.apply(value_params, batch.obs)
        weights = jax.lax.stop_gradient(awr_weights(adv, hparams.beta, hparams.max_weight))

        def actor_loss(params):
            err = jnp.sum(jnp.square(actor.apply(params, batch.obs) - action), -1)
            return jnp.mean(weights * err)

        a_loss, a_grads = jax.value_and_grad(actor_loss)(state.actor_params)
        a_updates, actor_opt = actor_tx.update(a_grads, state.actor_opt)
        actor_params = optax.apply_updates(state.actor_params, a_updates)
        target = optax.incremental_update(critic_params, state.target_critic_params, hparams.tau)
        new_state = IQLState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=target,
            value_params=value_params,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            value_opt=value_opt,
            step=state.step + 1,
        )
        metrics = {
            "value_loss": v_loss,
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "v_mean": jnp.mean(next_v),
            "adv_mean": jnp.mean(adv),
        }
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


SUMMARY = "IQL: implicit Q-learning, expectile value, advantage-weighted actor (Kostrikov 2022)"
SPEC = common.spec("iql", SUMMARY, Config, HParams, make_agent, common.dataset_data)
