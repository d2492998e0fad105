"""Recurrent PPO: a GRU policy whose state is the agent's carry, truncated BPTT in the update.

PPO (``jaxrl.agents.on_policy.ppo``: its objective, hyperparameters and metrics) on a
shared recurrent torso ``obs -> Dense -> relu -> GRU -> (actor head, critic head)``, as
in PureJaxRL's PPO-RNN. The GRU state ``h [B, gru_size]`` is the agent's carry:

- ``act`` reads ``h``, runs one GRU step on the observation and acts from the new state;
  it returns the state it read in its info (``"carry"``), so every rollout step keeps the
  state it acted from;
- ``observe`` runs the same GRU step (the one carry channel); the loop restarts the rows
  whose episode ended (termination or truncation) from ``initial_carry`` (zeros).

``update`` re-runs the GRU over the whole rollout ``[T, B]`` from the stored state of its
first step, restarting after every done flag (so with the acting params it reproduces the
rollout's states and log-probs exactly), computes GAE, and takes minibatches of whole
env sequences (``num_envs / num_minibatches`` envs each), never of single steps: the
gradient flows back through the GRU over the rollout (truncated BPTT). A truncated
episode bootstraps from ``V`` of its final observation seen through the continuing state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.on_policy.ppo import (
    STEP_METRICS,
    HParams,
    heads,
    optimizer,
    policy_entropy,
    ppo_objective,
)
from jaxrl.core import Agent, Transition
from jaxrl.core.optim import last_grad_norm
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.loops.carry import reset_where
from jaxrl.nets import ValueHead
from jaxrl.nets.dense import Dense
from jaxrl.nets.init import orthogonal
from jaxrl.normalize import RunningStats, normalize, update_stats
from jaxrl.returns import gae

#: Config overrides per env name, applied before the user's.
PRESETS: dict[str, dict[str, Any]] = {}


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings: anything that changes shapes or control flow."""

    total_steps: int = 500_000
    num_envs: int = 16
    rollout_len: int = 64  # also the BPTT length
    num_epochs: int = 4
    num_minibatches: int = 8  # of whole env sequences: must divide num_envs
    embed: int = 64  # the Dense layer before the GRU
    gru_size: int = 64
    hidden: tuple[int, ...] = (64,)  # each head's MLP on the GRU state
    activation: str = "tanh"
    anneal_lr: bool = True
    clip_value: bool = False
    normalize_obs: bool = False
    normalize_advantages: bool = True
    ortho_init: bool = True
    num_evals: int = 20
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS


class PPORNNState(struct.PyTreeNode):
    params: Any  # {"torso": ..., "actor": ..., "critic": ...}
    opt_state: Any
    obs_stats: RunningStats
    step: jax.Array  # number of gradient steps taken


class GRUTorso(nn.Module):
    """One recurrent step ``(h [..., gru_size], obs [..., D]) -> h' [..., gru_size]``:
    ``GRU(h, relu(Dense(obs)))``. The new state is also the heads' input."""

    embed: int
    gru_size: int
    ortho: bool = True

    @nn.compact
    def __call__(self, h: jax.Array, obs: jax.Array) -> jax.Array:
        kernel = orthogonal(np.sqrt(2)) if self.ortho else nn.initializers.lecun_normal()
        x = nn.relu(Dense(self.embed, kernel_init=kernel)(obs))
        # jaxrl's Gram-Schmidt orthogonal init (flax's QR one can hang vmapped on XLA:CPU).
        h, _ = nn.GRUCell(self.gru_size, recurrent_kernel_init=orthogonal())(h, x)
        return h


def networks(config: Config, env: Env) -> tuple[GRUTorso, nn.Module, ValueHead]:
    """``(torso, actor, critic)`` for ``env``'s specs; the heads read the GRU state."""
    actor, critic = heads(config, env)
    return GRUTorso(config.embed, config.gru_size, config.ortho_init), actor, critic


def episode_starts(done: jax.Array) -> jax.Array:
    """``starts [T, B]``: step ``t`` begins a new episode because step ``t - 1`` ended
    (``done [T, B]``, termination or truncation); step 0 keeps its stored carry."""
    return jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]], axis=0)


def unroll(
    torso: GRUTorso, params: Any, h0: jax.Array, obs: jax.Array, starts: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Re-runs the GRU over a rollout: ``h0 [B, H]``, ``obs [T, B, D]``, ``starts [T, B]``.

    Before step ``t`` the rows where ``starts[t]`` restart from zeros (``initial_carry``).
    Returns ``(carries, states)``, both ``[T, B, H]``: the state each step acted from (what
    ``act`` stored as ``info["carry"]``) and the state after it (the heads' input).
    """
    chex.assert_rank([h0, starts], [2, 2])
    chex.assert_equal_shape_prefix([obs, starts], 2)

    def step(h, inputs):
        x, start = inputs
        h = reset_where(start, jnp.zeros_like(h), h)
        new = torso.apply(params, h, x)
        return new, (h, new)

    _, (carries, states) = jax.lax.scan(step, h0, (obs, starts))
    return carries, states


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """Recurrent PPO's (init, act, update, initial_carry, observe); ``hparams`` may be traced."""
    obs_shape = env.observation_spec.shape
    torso, actor, critic = networks(config, env)
    tx = optimizer(config, hparams, schedule)

    def obs_in(state: PPORNNState, obs: jax.Array) -> jax.Array:
        return normalize(state.obs_stats, obs) if config.normalize_obs else obs

    def initial_carry(batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, config.gru_size), jnp.float32)

    def init(key: jax.Array) -> PPORNNState:
        torso_key, actor_key, critic_key = jax.random.split(key, 3)
        h = initial_carry(1)
        params = {"torso": torso.init(torso_key, h, jnp.zeros((1, *obs_shape), jnp.float32))}
        params["actor"] = actor.init(actor_key, h)
        params["critic"] = critic.init(critic_key, h)
        return PPORNNState(
            params=params,
            opt_state=tx.init(params),
            obs_stats=RunningStats.create(obs_shape),
            step=jnp.zeros((), jnp.int32),
        )

    def act(
        state: PPORNNState,
        obs: jax.Array,
        key: jax.Array,
        explore=True,
        *,
        env_state=None,
        carry=None,
    ):
        """``obs [B, D]``, ``carry [B, H]`` (``None``: an episode start) -> ``action [B]``
        and ``{"log_prob" [B], "carry" [B, H]}`` (the state it acted from)."""
        h = initial_carry(obs.shape[0]) if carry is None else carry
        dist = actor.apply(
            state.params["actor"], torso.apply(state.params["torso"], h, obs_in(state, obs))
        )
        action = dist.sample(seed=key) if explore else dist.mode()
        return action, {"log_prob": dist.log_prob(action), "carry": h}

    def observe(state: PPORNNState, carry, obs, action, info):
        """The GRU state after the step that observed ``obs [B, D]`` from ``carry``."""
        return torso.apply(state.params["torso"], carry, obs_in(state, obs))

    def loss_fn(params, mb):
        obs, h0, starts, action, old_log_prob, old_values, advantages, targets = mb
        _, states = unroll(torso, params["torso"], h0, obs, starts)
        dist = actor.apply(params["actor"], states)
        return ppo_objective(
            dist.log_prob(action),
            old_log_prob,
            policy_entropy(dist),
            critic.apply(params["critic"], states),
            old_values,
            advantages,
            targets,
            hparams,
            normalize_advantages=config.normalize_advantages,
            clip_value=config.clip_value,
        )

    def grad_step(state: PPORNNState, mb):
        grads, info = jax.grad(loss_fn, has_aux=True)(state.params, mb)
        updates, opt_state = tx.update(grads, state.opt_state)
        info["grad_norm"] = last_grad_norm(opt_state)
        params = optax.apply_updates(state.params, updates)
        info = jnp.stack([info[name] for name in STEP_METRICS])
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), info

    def update(state: PPORNNState, batch: Transition, key: jax.Array):
        """``batch`` leaves are ``[T, B, ...]`` with ``extras["log_prob"]`` and
        ``extras["carry"]`` (``[T, B, H]``) from ``act``."""
        chex.assert_rank(batch.reward, 2)
        num_envs = batch.reward.shape[1]
        params = state.params
        obs = obs_in(state, batch.obs)
        next_obs = obs_in(state, batch.next_obs)
        h0 = batch.extras["carry"][0]
        starts = episode_starts(jnp.logical_or(batch.terminated, batch.truncated))
        _, states = unroll(torso, params["torso"], h0, obs, starts)
        # V(next_obs) through the state that continues each step (no restart: a truncated
        # episode's final observation is seen by the belief that reached it).
        next_states = torso.apply(params["torso"], states, next_obs)
        values = critic.apply(params["critic"], states)
        next_values = critic.apply(params["critic"], next_states)
        advantages, targets = gae(
            batch.reward * hparams.reward_scale,
            values,
            next_values,
            batch.terminated,
            batch.truncated,
            hparams.gamma,
            hparams.gae_lambda,
        )
        # Env-major sequences: leaves [B, T, ...] except h0 [B, H].
        seqs = (
            obs,
            h0,
            starts,
            batch.action,
            batch.extras["log_prob"],
            values,
            advantages,
            targets,
        )
        seqs = [x if i == 1 else jnp.swapaxes(x, 0, 1) for i, x in enumerate(seqs)]
        per_mb = num_envs // config.num_minibatches

        def epoch(state, perm):
            # [B, ...] -> [M, b, ...]; sequences back to time-major [M, T, b, ...].
            split = [x[perm].reshape((config.num_minibatches, per_mb, *x.shape[1:])) for x in seqs]
            split = [x if i == 1 else jnp.swapaxes(x, 1, 2) for i, x in enumerate(split)]
            return jax.lax.scan(grad_step, state, tuple(split))

        # Every epoch's env shuffle from one PRNG call: [E, B] permutations.
        perms = jnp.argsort(jax.random.bits(key, (config.num_epochs, num_envs)), axis=-1)
        state, info = jax.lax.scan(epoch, state, perms)
        if config.normalize_obs:
            state = state.replace(obs_stats=update_stats(state.obs_stats, batch.obs, batch_ndim=2))
        means = jnp.mean(info, axis=(0, 1))  # [E, M, len(STEP_METRICS)] -> per metric
        metrics = {name: means[i] for i, name in enumerate(STEP_METRICS)}
        metrics["value_mean"] = jnp.mean(values)
        return state, metrics

    return Agent(init=init, act=act, update=update, initial_carry=initial_carry, observe=observe)


def data(config: Config, env: Env) -> loops.Rollout:
    return loops.Rollout(num_envs=config.num_envs, rollout_len=config.rollout_len)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    if config.num_envs % config.num_minibatches:
        raise ValueError(
            f"num_minibatches = {config.num_minibatches} must divide num_envs = "
            f"{config.num_envs} (minibatches are whole env sequences)"
        )
    if len(env.observation_spec.shape) != 1:
        raise ValueError(
            f"observations must be vectors [D], got shape {env.observation_spec.shape}"
        )


SUMMARY = "Recurrent PPO: GRU policy carried through rollouts, truncated BPTT (PureJaxRL PPO-RNN)"
KINDS = ("discrete", "continuous")
POSITIVE = ("num_envs", "rollout_len", "num_epochs", "num_minibatches", "embed", "gru_size")
SPEC = AlgoSpec(
    "ppo_rnn",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    data,
    KINDS,
    "cartpole",
    PRESETS,
    POSITIVE,
    check,
)
