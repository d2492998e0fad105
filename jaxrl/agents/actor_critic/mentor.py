"""MENTOR (Huang et al., 2024): DrM with a MoE actor and task-oriented perturbation.

* The actor's last hidden layer is a ``jaxrl.nets.MoE`` (top-k gating, renormalised
  weights); its load/entropy auxiliary loss joins the actor loss times ``aux_coef``.
* Task-oriented perturbation: ``with_dormant_perturbation(prior="snapshots")`` keeps
  the ``num_snapshots`` best-return snapshots of the networks (scored by the training
  episodes' return, offered every ``snapshot_every`` updates) and perturbs toward a
  draw from the elementwise Gaussian fitted to them, with DrM's coefficient.

Everything else (SAC base, expectile exploitation, dormant ratio) is
``jaxrl.agents.actor_critic.drm``.
Paper sizes: 16 experts of ``1024 -> 256 -> 1024``, top-4. CPU sizes here: experts of
``hidden / 4`` units (the paper's bottleneck ratio); pendulum preset 8 experts (the
paper found 8 best), hidden (128, 128).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flax import struct

from jaxrl import loops
from jaxrl.agents.actor_critic import common as ac
from jaxrl.agents.actor_critic import drm
from jaxrl.core import Agent
from jaxrl.core.domains import NONNEGATIVE, hparam
from jaxrl.envs import Env
from jaxrl.nets.moe import MoETanhGaussian

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
    # weight of the MoE's load/entropy loss (our choice)
    aux_coef: float = hparam(0.01, NONNEGATIVE)


def make_actor(config: Config, act_dim: int) -> MoETanhGaussian:
    return MoETanhGaussian(
        act_dim,
        config.hidden,
        num_experts=config.num_experts,
        top_k=config.top_k,
        expert_hidden=config.expert_hidden,
        act=config.activation,
    )


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """DrM's agent with the MoE actor, wrapped in the snapshot perturbation when
    ``config.perturb`` (snapshots are scored by ``batch.context.train_return``)."""
    act_dim, _, _ = ac.box_action_scale(env, "mentor")
    actor = make_actor(config, act_dim)
    base = drm.base_agent(config, env, hparams, actor, hparams.aux_coef)
    if not config.perturb:
        return base
    return drm.make_perturbed(
        config,
        base,
        hparams,
        prior="snapshots",
        num_snapshots=config.num_snapshots,
        snapshot_every=config.snapshot_every,
    )


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    ac.check(config, env)
    if config.top_k > config.num_experts:
        raise ValueError(
            f"top_k must be in [1, num_experts={config.num_experts}], got {config.top_k}"
        )
    if len(config.hidden) < 2:
        raise ValueError(f"hidden needs >= 2 layers (the last is the MoE), got {config.hidden}")


POSITIVE = (
    *ac.POSITIVE,
    "perturb_every",
    "num_experts",
    "top_k",
    "expert_hidden",
    "num_snapshots",
    "snapshot_every",
)
SUMMARY = "MENTOR: DrM with a MoE actor and task-oriented perturbation (Huang et al. 2024)"
SPEC = ac.spec(
    "mentor",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    presets=PRESETS,
    positive=POSITIVE,
    check=check,
    eval_hooks=(drm.HOOK,),
)
