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
from jaxrl.offline import common, sample

DEFAULT_ENV = "pointmaze"
SUPPORTS_DISCRETE = False
SUPPORTS_CONTINUOUS = True
PRESETS: dict[str, dict[str, Any]] = {}

__all__ = ["Config", "HParams", "PolicyState", "make_agent", "make_train"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings; ``dataset`` as in ``jaxrl.agents.rcsl.Config``."""

    total_steps: int = 5_000  # gradient steps
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    num_evals: int = 10
    num_eval_envs: int = 16
    dataset: str = ""
    dataset_seed: int = 0


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


def schedule(config: Config) -> loops.Schedule:
    return loops.make_schedule(config.total_steps, 1, config.num_evals)


def validate(config: Config) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    for name in ("total_steps", "batch_size", "num_evals", "num_eval_envs"):
        if getattr(config, name) <= 0:
            raise ValueError(f"bc: {name} must be positive, got {getattr(config, name)}")
    if not config.hidden or min(config.hidden) <= 0:
        raise ValueError(f"bc: hidden must be positive widths, got {config.hidden}")


def make_train(config: Config, env: Env, progress: loops.Progress | None = None):
    """``train(key, hparams) -> (PolicyState, metrics)``: BC on the offline dataset."""
    validate(config)
    common.action_bounds(env)
    source = common.dataset_source(env, config.dataset, config.dataset_seed)
    return loops.offline(
        lambda hp: make_agent(config, env, hp),
        env,
        prepare=lambda key, hparams: source(),
        sample=lambda data, key: sample(data, key, config.batch_size),
        total_steps=config.total_steps,
        num_evals=config.num_evals,
        num_eval_envs=config.num_eval_envs,
        data_return=lambda data: data.returns.mean(),
        progress=progress,
    )
