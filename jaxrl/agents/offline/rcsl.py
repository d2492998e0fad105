"""RCSL: return-conditioned supervised learning (RvS-style MLP, as in MBRCSL's baseline).

An MLP policy ``pi(a | s, g)`` regresses the dataset's actions from the state and the
return-to-go ``g`` (MSE, deterministic; Emmons et al., 2021; Zhou et al., 2023, Sec. 3).
At test time it is conditioned on the highest return in the dataset, and ``g`` drops by
each reward received. Plain RCSL cannot stitch: it imitates the best trajectories it has
seen, which MBRCSL (``jaxrl.agents.offline.mbrcsl``) overcomes with model rollouts.

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
from jaxrl.core.domains import POSITIVE, hparam
from jaxrl.envs import Env
from jaxrl.nets import TanhPolicy


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings (``jaxrl.agents.offline.common.OfflineConfig``)."""


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = hparam(1e-3, POSITIVE)


class PolicyState(struct.PyTreeNode):
    params: Any
    opt: Any
    step: jax.Array


def policy_agent(
    env: Env,
    in_dim: int,
    hidden: tuple[int, ...],
    activation: str,
    lr: jax.Array,
    decay_steps: int | None = None,
    weight_decay: float = 0.0,
) -> Agent:
    """A deterministic MLP policy trained by action regression (MSE in ``[-1, 1]`` units).

    With ``decay_steps`` the learning rate follows a cosine decay to zero over that many
    updates, so the final policy is not a noisy late iterate (closed-loop returns of a
    regressed policy swing a lot between nearby iterates). ``weight_decay > 0``: AdamW.

    ``act(state, obs [B, in_dim], key)`` -> actions ``[B, act_dim]`` in the env's bounds;
    ``update(state, batch)`` regresses ``batch.action`` from ``batch.obs [N, in_dim]``.
    Shared by RCSL (``in_dim = obs + 1``, the scaled return-to-go appended) and BC.
    """
    center, half = common.action_bounds(env)
    act_dim = center.shape[0]
    net = TanhPolicy(act_dim, hidden, activation)
    schedule = lr if decay_steps is None else optax.cosine_decay_schedule(lr, decay_steps)
    tx = adam(schedule, weight_decay=weight_decay)

    def init(key: jax.Array) -> PolicyState:
        params = net.init(key, jnp.zeros((1, in_dim), jnp.float32))
        return PolicyState(params, tx.init(params), jnp.zeros((), jnp.int32))

    def act(state: PolicyState, obs: jax.Array, key: jax.Array, explore=False, **_):
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


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """RCSL's policy: input ``[obs, rtg / return_scale]``; ``hparams`` may be traced."""
    obs_dim = env.observation_spec.shape[0]
    return policy_agent(
        env, obs_dim + 1, config.hidden, config.activation, hparams.lr, schedule.num_iters
    )


def data(config: Config, env: Env) -> loops.Dataset:
    """The offline trajectories, every one kept, conditioned on the best return."""
    source = common.dataset_source(env, config.dataset, config.dataset_seed)
    return common.conditioned(config, lambda key, hparams: common.conditioned_data(source()))


SUMMARY = "RCSL: return-conditioned supervised learning (MLP policy on [obs, return-to-go])"
SPEC = common.spec("rcsl", SUMMARY, Config, HParams, make_agent, data)
