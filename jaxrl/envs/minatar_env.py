"""MinAtar tasks through gymnax: ``minatar/breakout``, ``minatar/asterix``,
``minatar/freeway``, ``minatar/space_invaders``.

Each name maps to gymnax's ``<Name>-MinAtar`` env under the generic gymnax adapter
(``jaxrl.envs.gymnax_env``): observations ``[10, 10, C]`` float32 in {0, 1}, discrete
actions (gymnax's minimal action sets), gymnax's episode limit as ``max_episode_steps``.
"""

from __future__ import annotations

from typing import Any

import jax

from jaxrl.envs.core import Box, Env, EnvState
from jaxrl.envs.gymnax_env import args as gymnax_args
from jaxrl.envs.gymnax_env import make as gymnax_make
from jaxrl.envs.wrappers import Wrapper

GYMNAX_IDS: dict[str, str] = {
    "breakout": "Breakout-MinAtar",
    "asterix": "Asterix-MinAtar",
    "freeway": "Freeway-MinAtar",
    "space_invaders": "SpaceInvaders-MinAtar",
}


def names() -> list[str]:
    return list(GYMNAX_IDS)


def args(name: str) -> dict[str, Any]:
    """``flatten`` and the gymnax constructor's plain-valued keyword arguments."""
    return {"flatten": bool, **gymnax_args(GYMNAX_IDS[name])}


def make(name: str, *, flatten: bool = False, **kwargs: Any) -> Env:
    """The gymnax MinAtar env ``name`` (a key of ``GYMNAX_IDS``).

    ``flatten=True`` gives ``[10 * 10 * C]`` vector observations (for MLP agents).
    """
    if name not in GYMNAX_IDS:
        raise ValueError(f"unknown MinAtar task {name!r}; known: {', '.join(GYMNAX_IDS)}")
    env = gymnax_make(GYMNAX_IDS[name], **kwargs)
    return FlattenObservation(env) if flatten else env


class FlattenObservation(Wrapper):
    """Observations ``[*shape]`` -> ``[prod(shape)]`` (row-major)."""

    def __init__(self, env: Env):
        super().__init__(env)
        self._spec = Box((env.observation_spec.size,), 0.0, 1.0)

    @property
    def observation_spec(self) -> Box:
        return self._spec

    def _flat(self, state: EnvState) -> EnvState:
        return state.replace(obs=state.obs.reshape(self._spec.shape))

    def reset(self, key: jax.Array) -> EnvState:
        return self._flat(self.env.reset(key))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        return self._flat(self.env.step(state, action))
