"""BC: behaviour cloning, a deterministic MLP regressing the dataset's actions (MSE).

The unconditioned baseline of MBRCSL's Point Maze table: on data from two routes it
averages them. Offline: ``total_steps`` and the metrics' ``env_steps`` count gradient steps.
"""

from __future__ import annotations

import dataclasses

from flax import struct

from jaxrl import loops
from jaxrl.agents.offline import common
from jaxrl.agents.offline.rcsl import PolicyState, policy_agent
from jaxrl.core import Agent
from jaxrl.core.domains import POSITIVE, hparam
from jaxrl.envs import Env

__all__ = ["SPEC", "Config", "HParams", "PolicyState", "make_agent"]


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings (``jaxrl.agents.offline.common.OfflineConfig``)."""


@struct.dataclass
class HParams:
    lr: float = hparam(1e-3, POSITIVE)


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """BC's policy on raw observations ``[B, obs_dim]``; ``hparams`` may be traced."""
    obs_dim = env.observation_spec.shape[0]
    return policy_agent(
        env, obs_dim, config.hidden, config.activation, hparams.lr, schedule.num_iters
    )


SUMMARY = "BC: behaviour cloning by action regression (MSE), the offline baseline"
SPEC = common.spec("bc", SUMMARY, Config, HParams, make_agent, common.dataset_data)
