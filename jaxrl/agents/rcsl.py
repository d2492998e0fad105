"""RCSL: return-conditioned supervised learning (RvS-style MLP, as in MBRCSL's baseline).

An MLP policy ``pi(a | s, g)`` regresses the dataset's actions from the state and the
return-to-go ``g`` (MSE, deterministic; Emmons et al., 2021; Zhou et al., 2023, Sec. 3).
At test time it is conditioned on the highest return in the dataset, and ``g`` drops by
each reward received. Plain RCSL cannot stitch: it imitates the best trajectories it has
seen, which MBRCSL (``jaxrl.agents.mbrcsl``) overcomes with model rollouts.

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
from jaxrl.core import Agent, Transition, hparams_from
from jaxrl.envs import Env
from jaxrl.offline import common

DEFAULT_ENV = "pointmaze"
SUPPORTS_DISCRETE = False
SUPPORTS_CONTINUOUS = True
PRESETS: dict[str, dict[str, Any]] = {}


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings (``jaxrl.offline.common.OfflineConfig``)."""


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = 1e-3


class PolicyState(struct.PyTreeNode):
    params: Any
    opt: Any
    step: jax.Array


def default_hparams(config: Config, **overrides: Any) -> HParams:
    return hparams_from(HParams, overrides)


def policy_agent(
    env: Env,
    in_dim: int,
    hidden: tuple[int, ...],
    activation: str,
    lr: jax.Array,
    decay_steps: int | None = None,
) -> Agent:
    """A deterministic MLP policy trained by action regression (MSE in ``[-1, 1]`` units).

    With ``decay_steps`` the learning rate follows a cosine decay to zero over that many
    updates, so the final policy is not a noisy late iterate (closed-loop returns of a
    regressed policy swing a lot between nearby iterates).

    ``act(state, obs [B, in_dim], key)`` -> actions ``[B, act_dim]`` in the env's bounds;
    ``update(state, batch)`` regresses ``batch.action`` from ``batch.obs [N, in_dim]``.
    Shared by RCSL (``in_dim = obs + 1``, the scaled return-to-go appended) and BC.
    """
    center, half = common.action_bounds(env)
    act_dim = center.shape[0]
    net = common.TanhPolicy(act_dim, hidden, activation)
    schedule = lr if decay_steps is None else optax.cosine_decay_schedule(lr, decay_steps)
    tx = optax.adam(schedule)

    def init(key: jax.Array) -> PolicyState:
        params = net.init(key, jnp.zeros((1, in_dim), jnp.float32))
        return PolicyState(params, tx.init(params), jnp.zeros((), jnp.int32))

    def act(state: PolicyState, obs: jax.Array, key: jax.Array, explore: bool = False):
        chex.assert_shape(obs, (None, in_dim))
        return center + half * net.apply(state.params, obs), {}

    def update(state: PolicyState, batch: Transition, key: jax.Array):
        chex.assert_rank(batch.obs, 2)
        target = (batch.action - center) / half

        def loss_fn(params):
            return jnp.mean(jnp.sum(jnp.square(net.apply(params, batch.obs) - target), -1))

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt = tx.update(grads, state.opt, state.params)
        params = optax.apply_updates(state.params, updates)
        return PolicyState(params, opt, state.step + 1), {"policy_loss": loss}

    return Agent(init=init, act=act, update=update)


def make_agent(config: Config, env: Env, hparams: HParams) -> Agent:
    """RCSL's policy: input ``[obs, rtg / return_scale]``; ``hparams`` may be traced."""
    obs_dim = env.observation_spec.shape[0]
    return policy_agent(
        env, obs_dim + 1, config.hidden, config.activation, hparams.lr, config.total_steps
    )


schedule = common.schedule


def validate(config: Config) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    common.validate("rcsl", config)


def conditioned_train(
    config: Any,
    env: Env,
    agent_fn,
    prepare,
    progress: loops.Progress | None = None,
    sample=None,
) -> loops.Trainer:
    """The offline loop for a return-conditioned policy on ``ConditionedData``.

    ``sample(data, key) -> batch`` defaults to ``common.sample_conditioned``.
    """

    def evaluate(agent, agent_state, data, key):
        return common.evaluate_conditioned(
            agent,
            agent_state,
            env,
            key,
            config.num_eval_envs,
            data.target_return,
            data.return_scale,
        )

    return loops.offline(
        agent_fn,
        env,
        prepare=prepare,
        sample=sample
        or (lambda data, key: common.sample_conditioned(data, key, config.batch_size)),
        total_steps=config.total_steps,
        num_evals=config.num_evals,
        num_eval_envs=config.num_eval_envs,
        evaluate_fn=evaluate,
        data_return=common.mean_kept_return,
        data_metrics=lambda data: {"target_return": data.target_return, **data.stats},
        progress=progress,
    )


def make_train(config: Config, env: Env, progress: loops.Progress | None = None):
    """``train(key, hparams) -> (PolicyState, metrics)``: RCSL on the offline dataset."""
    validate(config)
    common.action_bounds(env)
    source = common.dataset_source(env, config.dataset, config.dataset_seed)

    def prepare(key, hparams):
        return common.conditioned_data(source())

    return conditioned_train(config, env, lambda hp: make_agent(config, env, hp), prepare, progress)
