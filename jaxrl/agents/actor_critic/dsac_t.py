"""DSAC-T (Duan et al., 2023, "Distributional Soft Actor-Critic with Three Refinements").

Each of two critics outputs a Gaussian over the soft return, ``(Q, sigma)``. The
three refinements:

* expected value substitution: the mean is regressed (Huber, delta 50) on the
  expected target ``y = r + gamma (1 - term) (min_i Q'_i - alpha log pi')``; the
  sampled target ``y_s`` (from the target critic with the smaller mean) enters only
  the std term, clipped to ``y_b = Q + clip(y_s - Q, -3 b, 3 b)``;
* twin value distributions: ``min`` over the two target means, and the sample of
  the critic whose mean is smaller;
* variance-based critic gradient adjustment: ``b <- (1 - tau_b) b + tau_b mean(sigma)``
  per critic and ``omega = clip(b^2 / (sg(sigma)^2 + 0.1), 0.1, 10)``.

Critic loss per critic (the form of DSAC-v2's ``dsac_v2.py`` since its July 2025
commit c5105eb, lines 279-287)::

    L = mean(omega [Huber(Q, y) + sigma (sg(sigma)^2 - Huber(sg(Q), y_b)) / (sg(sigma) + 0.1)])

As in the official code (``dsac_v2.py``, ``networks/mlp.py``, the example configs):

* ``sigma = softplus(.)`` of the critic's second output;
* the next action of the targets comes from a Polyak-averaged *target policy*, updated
  with the target critics every ``policy_delay`` steps (rate ``tau``);
* the actor's loss ``alpha log pi - min(Q1, Q2)`` uses the critics as they were before
  this step's critic update (DSAC-v2 computes every gradient, then steps);
* log-probabilities are of the env-scaled action (``- sum(log half_range)``), which
  enters the soft targets and the temperature's loss;
* the policy's log-std is clipped (not tanh-squashed) into ``[-20, 0.5]``;
* ``log_alpha`` starts at 1 (``alpha = e``); lrs 1e-4 (actor, critics), 3e-4 (alpha).

The actor, temperature and target networks update every ``policy_delay`` critic
updates. Runs on ``loops.off_policy``. Kept from SAC here: ReLU (DSAC-v2 uses GELU),
flax's default initialisers.

DSAC-v1 (Duan et al. 2021) is this agent with two refinements off (``V1``:
``expected_value=False``, ``variance_adjust=False``), the critic loss then differing in
exactly two places (DSAC-v2's ``dsac_v1.py``):

* no expected value substitution: the mean regresses on the sampled target ``y_s``;
* no variance-based gradient adjustment: the weight is ``1 / (sg(sigma)^2 + 0.1)``
  (v1's Gaussian-likelihood gradient, no ``b^2`` scale, no clip) and ``y_b`` clips the
  TD error at the fixed ``td_bound`` (v1's example config: 10) instead of ``3 b``.

Everything else stays DSAC-T's (twin critics, Huber mean term, the std term's form), so
the comparison isolates those two refinements; the official v1 has one critic and
writes the std term as ``-((q - y_b)^2 - sigma^2) / (sigma^3 + 0.1)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.actor_critic import common as ac
from jaxrl.agents.actor_critic import sac
from jaxrl.core import Agent, Transition
from jaxrl.core.domains import POSITIVE, RATE, hparam
from jaxrl.envs import Env
from jaxrl.nets import MLP, TanhGaussian
from jaxrl.nets.dense import Dense
from jaxrl.nets.mlp import tanh_gaussian, tanh_gaussian_sample

#: Config overrides per env name, applied before the user's. Pendulum: SAC's
#: 2x128 nets instead of the paper's 3x256 (the task is small; 3x cheaper on a CPU).
PRESETS: dict[str, dict[str, Any]] = {"pendulum": {"hidden": (128, 128)}}

HUBER_DELTA = 50.0
OMEGA_EPS = 0.1  # the 0.1 in omega's and the std term's denominators
POLICY_LOG_STD = (-20.0, 0.5)  # DSAC-v2's policy_min_log_std, policy_max_log_std


@dataclasses.dataclass(frozen=True)
class Config(ac.Config):
    """SAC's static settings (``critic_layer_norm`` applies to the value-distribution
    critics) with DSAC-T's 3-layer default and policy delay."""

    hidden: tuple[int, ...] = (256, 256, 256)
    activation: str = "relu"  # DSAC-v2 uses GELU; ReLU matches SAC here
    policy_delay: int = 2
    expected_value: bool = True  # refinement 1 (False: the mean regresses on y_s, v1)
    variance_adjust: bool = True  # refinement 3 (False: v1's weight and fixed td_bound)


#: DSAC-v1: DSAC-T's ``Config`` overrides that turn refinements 1 and 3 off.
V1: dict[str, Any] = {"expected_value": False, "variance_adjust": False}


@struct.dataclass
class HParams(sac.HParams):
    """SAC's numeric hyperparameters with DSAC-T's learning rates, plus ``tau_b``."""

    actor_lr: float = hparam(1e-4, POSITIVE)
    critic_lr: float = hparam(1e-4, POSITIVE)
    init_alpha: float = hparam(math.e, POSITIVE)  # DSAC-v2 starts log_alpha at 1
    tau_b: float = hparam(0.005, RATE)  # step size of the running mean std ``b``
    td_bound: float = hparam(10.0, POSITIVE)  # v1's fixed clip of y_s - Q (variance_adjust off)


class DSACTState(ac.SoftActorCritic):
    target_actor_params: Any  # Polyak-averaged policy that picks the targets' next actions
    mean_std: jax.Array  # [2] running mean of each critic's sigma (b); -1 before the first update


class GaussianQ(nn.Module):
    """Value distribution ``(Q, sigma)``: ``[N, obs] x [N, act] -> ([N], [N])``.

    ``sigma = softplus(.)`` of the second output (DSAC-v2's ``ActionValueDistri``).
    """

    hidden: tuple[int, ...]
    act: str
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = MLP(self.hidden, self.act, self.layer_norm)(jnp.concatenate([obs, action], -1))
        out = Dense(2)(x)
        return out[..., 0], jax.nn.softplus(out[..., 1])


def twin_targets(
    reward: jax.Array,
    terminated: jax.Array,
    next_mean: jax.Array,
    next_std: jax.Array,
    z: jax.Array,
    next_log_prob: jax.Array,
    alpha: jax.Array,
    gamma: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Expected and sampled soft targets ``(y, y_s)``, each ``[N]``.

    ``next_mean, next_std [2, N]`` from the target critics at ``(s', a')``; ``z [2, N]``
    standard normal noise (clipped to [-3, 3] here). ``y`` bootstraps from the smaller
    mean; ``y_s`` from the sample ``mean_i + z_i std_i`` of the critic with the smaller mean.
    """
    chex.assert_rank([next_mean, next_std, z], 2)
    sample = next_mean + jnp.clip(z, -3.0, 3.0) * next_std
    smaller = next_mean[0] < next_mean[1]
    q_next = jnp.min(next_mean, axis=0)
    q_sample = jnp.where(smaller, sample[0], sample[1])
    cont = gamma * (1.0 - terminated.astype(jnp.float32))
    soft = alpha * next_log_prob
    return reward + cont * (q_next - soft), reward + cont * (q_sample - soft)


def update_mean_std(b: jax.Array, std: jax.Array, tau_b: jax.Array) -> jax.Array:
    """``b <- (1 - tau_b) b + tau_b mean(std)`` per critic; ``b [2]``, ``std [2, N]``.

    ``b < 0`` marks "no estimate yet" and takes the batch mean (DSAC-v2 starts from it).
    """
    batch = jnp.mean(jax.lax.stop_gradient(std), axis=-1)
    return jnp.where(b < 0, batch, (1.0 - tau_b) * b + tau_b * batch)


def omega(b: jax.Array, std: jax.Array) -> jax.Array:
    """``clip(b^2 / (sg(std)^2 + 0.1), 0.1, 10)``; ``b`` broadcasts against ``std``."""
    s = jax.lax.stop_gradient(std)
    return jnp.clip(jnp.square(b) / (jnp.square(s) + OMEGA_EPS), 0.1, 10.0)


def critic_loss(
    q: jax.Array,
    std: jax.Array,
    y: jax.Array,
    y_sample: jax.Array,
    b: jax.Array,
    td_bound: jax.Array | float = 10.0,
    *,
    expected_value: bool = True,
    variance_adjust: bool = True,
) -> jax.Array:
    """The loss of one critic: ``q, std, y, y_sample [N]``, ``b`` scalar; returns a scalar.

    DSAC-T (both flags on)::

        mean(omega [Huber(q, y) + std (sg(std)^2 - Huber(sg(q), y_b)) / (sg(std) + 0.1)])

    with ``y_b = sg(q) + clip(y_sample - sg(q), -3 b, 3 b)`` and Huber delta 50.
    ``expected_value=False``: ``Huber(q, y_sample)`` in place of ``Huber(q, y)``;
    ``variance_adjust=False``: ``1 / (sg(std)^2 + 0.1)`` in place of ``omega`` and
    ``td_bound`` in place of ``3 b`` (DSAC-v1, ``V1``).
    """
    chex.assert_equal_shape([q, std, y, y_sample])
    q_sg, s_sg = jax.lax.stop_gradient(q), jax.lax.stop_gradient(std)
    bound = 3.0 * b if variance_adjust else td_bound
    y_b = q_sg + jnp.clip(y_sample - q_sg, -bound, bound)
    mean_term = optax.huber_loss(q, y if expected_value else y_sample, delta=HUBER_DELTA)
    std_term = (
        std
        * (jnp.square(s_sg) - optax.huber_loss(q_sg, y_b, delta=HUBER_DELTA))
        / (s_sg + OMEGA_EPS)
    )
    weight = omega(b, std) if variance_adjust else 1.0 / (jnp.square(s_sg) + OMEGA_EPS)
    return jnp.mean(weight * (mean_term + std_term))


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """DSAC-T's (init, act, update) for ``env``'s specs; ``hparams`` may be traced."""
    act_dim, center, half = ac.box_action_scale(env, "dsac_t")
    obs_shape = env.observation_spec.shape
    lo, hi = POLICY_LOG_STD
    actor = TanhGaussian(
        act_dim, config.hidden, config.activation, log_std_min=lo, log_std_max=hi, clip_log_std=True
    )
    # log pi of the env action = log pi of the [-1, 1] action - sum(log half).
    log_jac = float(np.sum(np.log(half)))
    critic = ac.twin(GaussianQ(config.hidden, config.activation, config.critic_layer_norm))
    critic_apply = critic.apply
    txs = ac.soft_txs(hparams)
    actor_tx, critic_tx, alpha_tx = txs
    target_entropy = -hparams.target_entropy_scale * act_dim
    # The temperature's loss on env-action log-probs, written on [-1, 1]-action ones.
    alpha_target = target_entropy - log_jac

    def init(key: jax.Array) -> DSACTState:
        shapes = (obs_shape, act_dim)
        parts = ac.init_soft(key, actor, critic, txs, shapes, hparams.init_alpha)
        return DSACTState(
            **parts,
            target_actor_params=parts["actor_params"],
            mean_std=-jnp.ones((2,), jnp.float32),
        )

    def act(state: DSACTState, obs: jax.Array, key: jax.Array, explore=True, **_):
        mean, std = actor.apply(state.actor_params, obs)
        a = tanh_gaussian_sample(mean, std, key)[0] if explore else jnp.tanh(mean)
        return center + half * a, {}

    def update(state: DSACTState, batch: Transition, key: jax.Array):
        """``batch`` leaves are flat ``[N, ...]`` samples from replay."""
        chex.assert_rank(batch.reward, 1)
        n = batch.reward.shape[0]
        eps_key, z_key = jax.random.split(key)
        next_eps, actor_eps = jax.random.normal(eps_key, (2, *batch.action.shape))
        z = jax.random.normal(z_key, (2, n))
        alpha = jnp.exp(state.log_alpha)
        action = (batch.action - center) / half

        mean, std = actor.apply(state.target_actor_params, batch.next_obs)
        next_action, next_log_prob = tanh_gaussian(mean, std, next_eps)
        next_log_prob = next_log_prob - log_jac
        next_mean, next_std = critic_apply(state.target_critic_params, batch.next_obs, next_action)
        y, y_sample = twin_targets(
            batch.reward,
            batch.terminated,
            next_mean,
            next_std,
            z,
            next_log_prob,
            alpha,
            hparams.gamma,
        )
        y, y_sample = jax.lax.stop_gradient((y, y_sample))

        def loss_fn(params):
            q, s = critic_apply(params, batch.obs, action)  # [2, N] each
            b = update_mean_std(state.mean_std, s, hparams.tau_b)
            loss = functools.partial(
                critic_loss,
                expected_value=config.expected_value,
                variance_adjust=config.variance_adjust,
            )
            losses = jax.vmap(loss, in_axes=(0, 0, None, None, 0, None))(
                q, s, y, y_sample, b, hparams.td_bound
            )
            return jnp.sum(losses), (b, jnp.mean(q), jnp.mean(s))

        (c_loss, (mean_std, q_mean, std_mean)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.critic_params
        )
        c_updates, critic_opt = critic_tx.update(grads, state.critic_opt)
        critic_params = optax.apply_updates(state.critic_params, c_updates)

        def policy_update():
            policy, metrics = ac.soft_policy_step(
                lambda p, o: (*actor.apply(p, o), 0.0),
                (actor_tx, alpha_tx),
                state,
                batch.obs,
                actor_eps,
                lambda a: jnp.min(critic_apply(state.critic_params, batch.obs, a)[0], axis=0),
                alpha_target,
            )
            targets = optax.incremental_update(
                (critic_params, policy["actor_params"]),
                (state.target_critic_params, state.target_actor_params),
                hparams.tau,
            )
            return policy, targets, metrics

        def skip():
            policy = {
                "actor_params": state.actor_params,
                "actor_opt": state.actor_opt,
                "log_alpha": state.log_alpha,
                "alpha_opt": state.alpha_opt,
            }
            zero = jnp.zeros((), jnp.float32)
            metrics = {"actor_loss": zero, "alpha_loss": zero, "entropy": zero}
            return policy, (state.target_critic_params, state.target_actor_params), metrics

        is_policy_step = state.step % config.policy_delay == 0
        policy, targets, policy_metrics = jax.lax.cond(is_policy_step, policy_update, skip)
        new_state = state.replace(
            critic_params=critic_params,
            target_critic_params=targets[0],
            target_actor_params=targets[1],
            mean_std=mean_std,
            critic_opt=critic_opt,
            step=state.step + 1,
            **policy,
        )
        # Losses of the delayed policy are reported at full weight on its own steps.
        w = jnp.asarray(config.policy_delay, jnp.float32)
        metrics = {
            "critic_loss": c_loss,
            "alpha": alpha,
            "q_mean": q_mean,
            "q_std": std_mean,
            "mean_std_b": jnp.mean(mean_std),
            **{k: v * w for k, v in policy_metrics.items()},
        }
        if config.log_dormant:
            metrics.update(
                ac.dormant_metrics(actor, state.actor_params, batch.obs, "dormant_ratio")
            )
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    ac.check(config, env)
    if not config.hidden:
        raise ValueError("hidden must name at least one layer width")


SUMMARY = "DSAC-T: distributional SAC with refined value learning (Duan et al. 2025)"
DELAY = (*ac.POSITIVE, "policy_delay")
SPEC = ac.spec(
    "dsac_t", SUMMARY, Config, HParams, make_agent, presets=PRESETS, positive=DELAY, check=check
)
