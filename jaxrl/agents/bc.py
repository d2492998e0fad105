"""BC: behaviour cloning, a deterministic MLP regressing the dataset's actions (MSE).

The unconditioned baseline of MBRCSL's Point Maze table: on data from two routes it
averages them. Offline: ``total_steps`` and the metrics' ``env_steps`` count gradient steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flax import struct

from jaxrl import loops
from jaxrl.agents.rcsl import PolicyState, policy_agent
from jaxrl.core import Agent, hparams_from
from jaxrl.envs import Env
from jaxrl.offline import common

DEFAULT_ENV = "pointmaze"
SUPPORTS_DISCRETE = False
SUPPORTS_CONTINUOUS = True
PRESETS: dict[str, dict[str, Any]] = {}

__all__ = ["Config", "HParams", "PolicyState", "make_agent", "make_train"]


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings (``jaxrl.offline.common.OfflineConfig``)."""


@struct.dataclass
class HParams:
    lr: float = 1e-3


def default_hparams(config: Config, **overrides: Any) -> HParams:
    return hparams_from(HParams, overrides)


def make_agent(config: Config, env: Env, hparams: HParams) -> Agent:
    """BC's policy on raw observations ``[B, obs_dim]``; ``hparams`` may be traced."""
    obs_dim = env.observation_spec.shape[0]
    return policy_agent(
        env, obs_dim, config.hidden, config.activation, hparams.lr, config.total_steps
    )


schedule = common.schedule


def validate(config: Config) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    common.validate("bc", config)


def make_train(config: Config, env: Env, progress: loops.Progress | None = None):
    """``train(key, hparams) -> (PolicyState, metrics)``: BC on the offline dataset."""
    validate(config)
    return common.dataset_train(config, env, lambda hp: make_agent(config, env, hp), progress)
