"""G-PAYN (Ceola et al., 2023, "A Grasp Pose is All You Need: Learning Multi-fingered
Grasping with Deep Reinforcement Learning from Vision and Touch").

SAC on a ``grasp/<object>`` env whose episodes start at the pre-grasp pose given by a
grasp-pose generator (the env's ``start="pregrasp"``), trained from demonstrations that
are collected automatically: the env's scripted controller (its ``Demonstrator``)
moves to the grasp pose, closes the fingers and lifts, and ``jaxrl.data.datasets.record``
records ``demo_episodes`` of its episodes inside ``init``. As in the paper's code, every
SAC batch takes half of its rows from the demonstrations and half from the agent's own
replay, there is no behaviour-cloning term, and learning starts at once
(``warmup_steps = 0``). The wiring is ``jaxrl.transforms.with_demonstrations`` over SAC;
this file only adds the demonstrator and the settings.
"""

from __future__ import annotations

import dataclasses

from flax import struct

from jaxrl import loops
from jaxrl.agents.actor_critic import common as ac
from jaxrl.agents.actor_critic import sac
from jaxrl.core import Agent
from jaxrl.core.domains import POSITIVE, UNIT, hparam
from jaxrl.data.datasets import record
from jaxrl.envs import Demonstrator, Env, capability
from jaxrl.transforms.demonstrations import with_demonstrations

PRESETS = {f"grasp/{s}": {"hidden": (256, 256)} for s in ("box", "capsule", "cylinder", "sphere")}


@dataclasses.dataclass(frozen=True)
class Config(ac.Config):
    """SAC's settings plus the demonstrations'.

    Attributes:
      demo_episodes: scripted episodes recorded in ``init``.
      demo_noise: std of Gaussian noise on the demonstrator's actions (0: the scripted
        controller as it is; the object poses already differ between episodes).
    """

    warmup_steps: int = 0
    demo_episodes: int = 64
    demo_noise: float = 0.0


@struct.dataclass
class HParams(sac.HParams):
    """SAC's hyperparameters plus ``demo_fraction``: the share of each batch drawn from
    the demonstrations (0.5 in the paper's code; 0 gives SAC from the grasp pose).

    ``init_alpha`` 0.01, not SAC's 1. The paper's code (stable-baselines3 SAC,
    ``examples/icub_visuomanip_drl.py``) learns the temperature with ``--ent_coef`` default
    ``auto`` (initial value 1.0) and target entropy ``-dim(A)`` (here -10, kept:
    ``target_entropy_scale`` 1), over 5M env steps at one update per 10 steps; its CLI
    takes ``auto_0.01`` for an initial value of 0.01, which this uses. At a CPU budget of
    thousands of updates a temperature starting at 1 is still 0.31 after 5000 updates and
    its bonus (about alpha x 6 nats per step) outweighs the success reward of 1.
    """

    demo_fraction: float = hparam(0.5, UNIT)
    init_alpha: float = hparam(0.01, POSITIVE)


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """SAC with ``config.demo_episodes`` automatic demonstrations (see the module doc)."""
    policy = capability(env, Demonstrator).make(config.demo_noise)

    def demos(key):
        return record(env, policy, key, config.demo_episodes)

    inner = sac.make_agent(config, env, hparams, schedule)
    return with_demonstrations(inner, demos, hparams.demo_fraction)


def check(config: Config, env: Env) -> None:
    """SAC's checks; the env must offer a scripted ``Demonstrator`` usable with its
    settings (a ``grasp/<object>`` env starting at the pre-grasp pose); ``demo_noise``
    >= 0."""
    ac.check(config, env)
    capability(env, Demonstrator).make(config.demo_noise)  # raises for unusable settings
    if config.demo_noise < 0:
        raise ValueError(f"demo_noise must be >= 0, got {config.demo_noise}")


SUMMARY = "G-PAYN: SAC from a grasp pose with automatic scripted demonstrations (Ceola et al. 2023)"
SPEC = ac.spec(
    "gpayn",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    presets=PRESETS,
    positive=(*ac.POSITIVE, "demo_episodes"),
    check=check,
    default_env="grasp/box",
)
