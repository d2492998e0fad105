"""BC: behaviour cloning, a deterministic MLP regressing the dataset's actions (MSE).

The unconditioned baseline of MBRCSL's Point Maze table: on data from two routes it
averages them. ``top_fraction < 1`` is the paper's %BC: BC on only the trajectories whose
return is in the top ``top_fraction`` (0.1: the top 10%; ``common.top_trajectories``).
Offline: ``total_steps`` and the metrics' ``env_steps`` count gradient steps.
"""

from __future__ import annotations

import dataclasses

import jax
from flax import struct

from jaxrl import loops
from jaxrl.agents.offline import common
from jaxrl.agents.offline.rcsl import PolicyState, policy_agent
from jaxrl.core import Agent
from jaxrl.core.domains import POSITIVE, hparam
from jaxrl.data.datasets import sample
from jaxrl.envs import Env

__all__ = ["SPEC", "Config", "HParams", "PolicyState", "make_agent"]


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings (``jaxrl.agents.offline.common.OfflineConfig``) and the fraction of
    trajectories, best returns first, BC trains on (1: all; %BC: 0.1)."""

    top_fraction: float = 1.0


@struct.dataclass
class HParams:
    lr: float = hparam(1e-3, POSITIVE)


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """BC's policy on raw observations ``[B, obs_dim]``; ``hparams`` may be traced."""
    obs_dim = env.observation_spec.shape[0]
    return policy_agent(
        env, obs_dim, config.hidden, config.activation, hparams.lr, schedule.num_iters
    )


def data(config: Config, env: Env) -> loops.Dataset:
    """Uniform steps of the whole dataset, or (``top_fraction < 1``) of its best
    trajectories only; ``train_return`` is the mean return of what BC trains on."""
    if config.top_fraction >= 1.0:
        return common.dataset_data(config, env)
    source = common.dataset_source(env, config.dataset, config.dataset_seed)

    def prepare(key: jax.Array, hparams: HParams) -> common.ConditionedData:
        dataset = source()
        return common.conditioned_data(
            dataset, common.top_trajectories(dataset.returns, config.top_fraction)
        )

    return loops.Dataset(
        prepare=prepare,
        sample=lambda d, key: sample(d.dataset, key, config.batch_size, d.keep),
        data_return=common.mean_kept_return,
    )


def check(config: Config, env: Env) -> None:
    common.check(config, env)
    if not 0.0 < config.top_fraction <= 1.0:
        raise ValueError(f"bc: top_fraction must be in (0, 1], got {config.top_fraction}")


SUMMARY = "BC: behaviour cloning by action regression (MSE), the offline baseline (%BC option)"
SPEC = common.spec("bc", SUMMARY, Config, HParams, make_agent, data, check=check)
