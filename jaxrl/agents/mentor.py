"""MENTOR (Huang et al., 2024): DrM with a MoE actor and task-oriented perturbation.

* The actor's last hidden layer is a ``jaxrl.nets.MoE`` (top-k gating, renormalised
  weights); its load/entropy auxiliary loss joins the actor loss times ``aux_coef``.
* Task-oriented perturbation: ``with_dormant_perturbation(prior="snapshots")`` keeps
  the ``num_snapshots`` best-return snapshots of the networks (scored by the training
  episodes' return, offered every ``snapshot_every`` updates) and perturbs toward a
  draw from the elementwise Gaussian fitted to them, with DrM's coefficient.

Everything else (SAC base, expectile exploitation, dormant ratio) is ``jaxrl.agents.drm``.
Paper sizes: 16 experts of ``1024 -> 256 -> 1024``, top-4. CPU sizes here: experts of
``hidden / 4`` units (the paper's bottleneck ratio); pendulum preset 8 experts (the
paper found 8 best), hidden (128, 128).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flax import struct

from jaxrl import loops
from jaxrl.agents import drm, sac
from jaxrl.core import Agent, hparams_from
from jaxrl.envs import Env
from jaxrl.nets.moe import MoETanhGaussian

DEFAULT_ENV = "pendulum"
SUPPORTS_DISCRETE = False
SUPPORTS_CONTINUOUS = True
PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": {
        "hidden": (128, 128),
        "perturb_every": 5_000,
        "num_experts": 8,
        "expert_hidden": 32,
        "snapshot_every": 200,
    }
}


@dataclasses.dataclass(frozen=True)
class Config(drm.Config):
    """DrM's static settings plus the MoE actor's and the snapshot buffer's."""

    num_experts: int = 16
    top_k: int = 4
    expert_hidden: int = 64
    num_snapshots: int = 10
    snapshot_every: int = 1_000  # updates between offers of a snapshot


@struct.dataclass
class HParams(drm.HParams):
    aux_coef: float = 0.01  # weight of the MoE's load/entropy loss (our choice)


def default_hparams(config: Config, **overrides: Any) -> HParams:
    return hparams_from(HParams, overrides)


def make_actor(config: Config, act_dim: int) -> MoETanhGaussian:
    return MoETanhGaussian(
        act_dim,
        config.hidden,
        num_experts=config.num_experts,
        top_k=config.top_k,
        expert_hidden=config.expert_hidden,
        act=config.activation,
    )


def make_agent(config: Config, env: Env, hparams: HParams) -> Agent:
    """MENTOR's base agent (DrM's with the MoE actor), before perturbation."""
    act_dim, _, _ = sac.box_action_scale(env, "mentor")
    return drm.make_agent(config, env, hparams, make_actor(config, act_dim), hparams.aux_coef)


def schedule(config: Config) -> loops.Schedule:
    return drm.schedule(config)


def validate(config: Config) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    drm.validate(config, "mentor")
    for name in ("num_experts", "top_k", "expert_hidden", "num_snapshots", "snapshot_every"):
        if getattr(config, name) <= 0:
            raise ValueError(f"mentor: {name} must be positive, got {getattr(config, name)}")
    if config.top_k > config.num_experts:
        raise ValueError(
            f"mentor: top_k must be in [1, num_experts={config.num_experts}], got {config.top_k}"
        )
    if len(config.hidden) < 2:
        raise ValueError(
            f"mentor: hidden needs >= 2 layers (the last is the MoE), got {config.hidden}"
        )


def make_train(config: Config, env: Env, progress: loops.Progress | None = None):
    """``train(key, hparams) -> (state, metrics)`` on ``loops.off_policy`` with train returns."""
    validate(config)
    sac.box_action_scale(env, "mentor")

    def make(hp: HParams) -> Agent:
        base = make_agent(config, env, hp)
        if not config.perturb:
            return base
        return drm.make_perturbed(
            config,
            base,
            hp,
            prior="snapshots",
            num_snapshots=config.num_snapshots,
            snapshot_every=config.snapshot_every,
        )

    return sac.off_policy_train(config, env, make, progress, pass_train_return=True)
