"""PQN (Gallici et al., 2024, "Simplifying Deep Temporal Difference Learning",
arXiv 2407.04811): Q(lambda) over the rollouts of many parallel envs, with a LayerNorm
network, and neither a replay buffer nor a target network.

Each iteration collects ``[rollout_len, num_envs]`` epsilon-greedy steps (epsilon moving
linearly from ``eps_start`` to ``eps_end`` over the first ``exploration_fraction`` of the
loop's iterations), computes Q(lambda) targets with the network as it was for the
rollout, ``G_t = r_t + gamma (1 - term_t) [(1 - lam) max_a Q(s'_t, a) + lam G_{t+1}]``
(``jaxrl.returns.lambda_returns``: cut at episode ends, a truncation bootstraps), and
regresses ``Q(s_t, a_t)`` on them for ``num_epochs`` epochs of ``num_minibatches``
shuffled minibatches. Rewards are multiplied by ``reward_scale``. The optimiser is RAdam
with global-norm clipping and a linearly annealed learning rate, as in the authors'
purejaxql code; the defaults are its CartPole settings (``pqn_cartpole.yaml``).
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
from jaxrl.agents.value import common as vc
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import POSITIVE, POSITIVE_OR_INF, RATE, UNIT, hparam
from jaxrl.core.optim import last_grad_norm
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.nets import DiscreteQ
from jaxrl.returns import lambda_returns

#: Config overrides per env name, applied before the user's. MinAtar: purejaxql's
#: ``pqn_minatar.yaml`` loop settings (its hparams there: lr 5e-4, lam 0.65, eps_end
#: 0.05, exploration_fraction 0.1, reward_scale 1; its network is a small CNN).
PRESETS: dict[str, dict[str, Any]] = {
    "minatar": {
        "total_steps": 10_000_000,
        "num_envs": 128,
        "rollout_len": 32,
        "num_epochs": 2,
        "num_minibatches": 32,
    },
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings (shapes, control flow); purejaxql's CartPole settings."""

    total_steps: int = 500_000
    num_envs: int = 32
    rollout_len: int = 64
    num_epochs: int = 4
    num_minibatches: int = 16
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = True
    anneal_lr: bool = True  # linearly to 0 over the run's gradient steps
    rectified: bool = True  # RAdam (purejaxql); False: Adam
    num_evals: int = 20
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = hparam(1e-4, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    lam: float = hparam(0.95, UNIT)
    eps_start: float = hparam(1.0, UNIT)
    eps_end: float = hparam(0.2, UNIT)
    exploration_fraction: float = hparam(0.2, RATE)  # of the run's iterations
    max_grad_norm: float = hparam(10.0, POSITIVE_OR_INF)  # inf: no clipping
    reward_scale: float = hparam(0.1, POSITIVE)


class PQNState(struct.PyTreeNode):
    params: Any
    opt_state: Any
    updates: jax.Array  # int32, iterations (rollout updates) done; drives epsilon
    step: jax.Array  # int32, gradient steps done


def q_lambda_targets(
    batch: Transition, next_q: jax.Array, gamma: jax.Array, lam: jax.Array, scale: jax.Array
) -> jax.Array:
    """Q(lambda) targets ``[T, B]`` of a rollout ``[T, B]``; ``next_q [T, B, A]`` are the
    Q-values at ``next_obs``; rewards are multiplied by ``scale``."""
    chex.assert_rank(batch.reward, 2)
    next_v = jnp.max(next_q, axis=-1)
    return lambda_returns(
        batch.reward * scale, next_v, batch.terminated, batch.truncated, gamma, lam
    )


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """PQN's (init, act, update) for ``env``'s discrete actions; ``hparams`` may be traced."""
    spec = env.action_spec
    if not spec.discrete:
        raise ValueError("pqn needs a discrete action space")
    obs_shape = env.observation_spec.shape
    net = DiscreteQ(spec.num_actions, config.hidden, config.activation, config.layer_norm)
    total_grad_steps = schedule.num_iters * config.num_epochs * config.num_minibatches

    def annealed(count: jax.Array) -> jax.Array:
        return hparams.lr * (1.0 - count / total_grad_steps)

    tx = adam(
        annealed if config.anneal_lr else hparams.lr,
        max_grad_norm=hparams.max_grad_norm,
        rectified=config.rectified,
    )

    def init(key: jax.Array) -> PQNState:
        params = net.init(key, jnp.zeros((1, *obs_shape), jnp.float32))
        zero = jnp.zeros((), jnp.int32)
        return PQNState(params, tx.init(params), zero, zero)

    def eps_at(updates: jax.Array) -> jax.Array:
        return vc.epsilon(hparams, updates, schedule.num_iters)

    act = vc.epsilon_greedy_act(net.apply, lambda state: eps_at(state.updates))

    def loss_fn(params, obs, action, target):
        q = vc.chosen(net.apply(params, obs), action)
        return vc.td_loss(q, target), q

    def grad_step(state: PQNState, minibatch):
        obs, action, target = minibatch
        (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, obs, action, target
        )
        updates, opt_state = tx.update(grads, state.opt_state)
        params = optax.apply_updates(state.params, updates)
        info = {"td_loss": loss, "q_mean": jnp.mean(q), "grad_norm": last_grad_norm(opt_state)}
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), info

    def update(state: PQNState, batch: Transition, key: jax.Array):
        """``batch`` leaves are ``[T, B, ...]`` (a rollout)."""
        chex.assert_rank(batch.reward, 2)
        next_q = net.apply(state.params, batch.next_obs)
        targets = jax.lax.stop_gradient(
            q_lambda_targets(batch, next_q, hparams.gamma, hparams.lam, hparams.reward_scale)
        )
        flat = jax.tree.map(
            lambda x: x.reshape((-1, *x.shape[2:])), (batch.obs, batch.action, targets)
        )
        n = targets.size
        mb_size = n // config.num_minibatches

        def epoch(state, perm):
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape((config.num_minibatches, mb_size, *x.shape[1:])), flat
            )
            return jax.lax.scan(grad_step, state, shuffled)

        # Every epoch's shuffle from one PRNG call: argsort of random bits, [E, n].
        perms = jnp.argsort(jax.random.bits(key, (config.num_epochs, n)), axis=-1)
        state, info = jax.lax.scan(epoch, state, perms[:, : mb_size * config.num_minibatches])
        metrics = jax.tree.map(jnp.mean, info)
        metrics["epsilon"] = eps_at(state.updates)
        metrics["target_mean"] = jnp.mean(targets)
        return state.replace(updates=state.updates + 1), metrics

    return Agent(init=init, act=act, update=update)


def data(config: Config, env: Env) -> loops.Rollout:
    return loops.Rollout(num_envs=config.num_envs, rollout_len=config.rollout_len)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    if (config.num_envs * config.rollout_len) % config.num_minibatches:
        raise ValueError(
            f"num_envs * rollout_len = {config.num_envs * config.rollout_len} must be "
            f"divisible by num_minibatches = {config.num_minibatches}"
        )


SUMMARY = "PQN: parallel Q(lambda), LayerNorm, no buffer or target net (Gallici et al. 2024)"
POSITIVE = ("num_envs", "rollout_len", "num_epochs", "num_minibatches")
SPEC = AlgoSpec(
    "pqn",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    data,
    ("discrete",),
    "cartpole",
    PRESETS,
    POSITIVE,
    check,
)
