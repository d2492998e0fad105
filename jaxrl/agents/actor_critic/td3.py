"""TD3 (Fujimoto et al., 2018, "Addressing Function Approximation Error in Actor-Critic
Methods"): a deterministic tanh actor, twin critics with a clipped double-Q target,
target policy smoothing and delayed actor and target updates.

Exploration adds ``N(0, explore_noise)`` to the squashed action; the target action is
``clip(mu'(s') + clip(N(0, policy_noise), -noise_clip, noise_clip), -1, 1)``. The actor
maximises ``Q_1(s, mu(s))`` and, with the target networks, moves every ``policy_delay``
critic updates. Noise scales are in units of the half action range, as in the paper's
code. Box action specs only; targets bootstrap through truncation.
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
from jaxrl.agents.actor_critic import common as ac
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, POSITIVE, RATE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.nets import QNetwork, TanhPolicy

#: Pendulum: SAC's 2x128 nets (as fast to learn as 256 on this task, cheaper on a CPU).
PRESETS: dict[str, dict[str, Any]] = {"pendulum": {"hidden": (128, 128)}}


@dataclasses.dataclass(frozen=True)
class Config(ac.Config):
    """The SAC family's replay and network settings plus the actor's update delay."""

    policy_delay: int = 2


@struct.dataclass
class HParams:
    """Numeric hyperparameters (the paper's; float32 arrays, vmappable)."""

    actor_lr: float = hparam(3e-4, POSITIVE)
    critic_lr: float = hparam(3e-4, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    tau: float = hparam(0.005, RATE)
    explore_noise: float = hparam(0.1, NONNEGATIVE)
    policy_noise: float = hparam(0.2, NONNEGATIVE)
    noise_clip: float = hparam(0.5, NONNEGATIVE)


class TD3State(ac.ActorCritic):
    target_actor_params: Any


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """TD3's (init, act, update) for ``env``'s Box action spec; ``hparams`` may be traced."""
    act_dim, center, half = ac.box_action_scale(env, "td3")
    obs_shape = env.observation_spec.shape
    actor = TanhPolicy(act_dim, config.hidden, config.activation)
    critic = ac.twin(QNetwork(config.hidden, config.activation, config.critic_layer_norm))
    actor_tx, critic_tx = adam(hparams.actor_lr), adam(hparams.critic_lr)

    def init(key: jax.Array) -> TD3State:
        actor_key, critic_key = jax.random.split(key)
        obs = jnp.zeros((1, *obs_shape), jnp.float32)
        actor_params = actor.init(actor_key, obs)
        critic_params = critic.init(critic_key, obs, jnp.zeros((1, act_dim), jnp.float32))
        parts = ac.initial_parts(actor_params, critic_params, actor_tx, critic_tx)
        return TD3State(**parts, target_actor_params=actor_params)

    def act(state: TD3State, obs: jax.Array, key: jax.Array, explore=True, **_):
        a = actor.apply(state.actor_params, obs)
        if explore:
            noise = hparams.explore_noise * jax.random.normal(key, a.shape, a.dtype)
            a = jnp.clip(a + noise, -1.0, 1.0)
        return center + half * a, {}

    def update(state: TD3State, batch: Transition, key: jax.Array):
        """``batch`` leaves are flat ``[N, ...]`` samples from replay."""
        chex.assert_rank(batch.reward, 1)
        action = (batch.action - center) / half  # back to the actor's [-1, 1]
        noise = hparams.policy_noise * jax.random.normal(key, action.shape, action.dtype)
        noise = jnp.clip(noise, -hparams.noise_clip, hparams.noise_clip)
        next_action = jnp.clip(
            actor.apply(state.target_actor_params, batch.next_obs) + noise, -1, 1
        )
        next_q = jnp.min(critic.apply(state.target_critic_params, batch.next_obs, next_action), 0)
        done = batch.terminated.astype(jnp.float32)
        target = jax.lax.stop_gradient(batch.reward + hparams.gamma * (1.0 - done) * next_q)
        critic_params, critic_opt, c_loss, q_mean = ac.critic_step(
            critic.apply, critic_tx, state, batch.obs, action, target
        )

        def policy_update():
            def loss_fn(p):
                q = critic.apply(critic_params, batch.obs, actor.apply(p, batch.obs))
                return -jnp.mean(q[0])

            a_loss, grads = jax.value_and_grad(loss_fn)(state.actor_params)
            updates, actor_opt = actor_tx.update(grads, state.actor_opt)
            actor_params = optax.apply_updates(state.actor_params, updates)
            targets = optax.incremental_update(
                (actor_params, critic_params),
                (state.target_actor_params, state.target_critic_params),
                hparams.tau,
            )
            return actor_params, actor_opt, targets, a_loss

        def skip():
            targets = (state.target_actor_params, state.target_critic_params)
            return state.actor_params, state.actor_opt, targets, jnp.zeros((), jnp.float32)

        actor_params, actor_opt, (target_actor, target_critic), a_loss = jax.lax.cond(
            state.step % config.policy_delay == 0, policy_update, skip
        )
        new_state = TD3State(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=target_critic,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            step=state.step + 1,
            target_actor_params=target_actor,
        )
        # The delayed actor's loss is reported at full weight on its own steps.
        w = jnp.asarray(config.policy_delay, jnp.float32)
        return new_state, {"critic_loss": c_loss, "actor_loss": a_loss * w, "q_mean": q_mean}

    return Agent(init=init, act=act, update=update)


SUMMARY = "TD3: twin critics, target policy smoothing, delayed actor (Fujimoto et al. 2018)"
DELAY = (*ac.POSITIVE, "policy_delay")
SPEC = ac.spec("td3", SUMMARY, Config, HParams, make_agent, presets=PRESETS, positive=DELAY)
