"""Environments: one functional protocol, a registry and wrappers.

``make(name)`` returns a single (unbatched) env with its episode limit applied.
Names: ``cartpole``, ``pendulum``, ``pointmaze`` (built in, pure JAX) and families
``family/<id>`` served by adapter modules: ``gymnax/<id>``, ``minatar/<name>``,
``brax/<name>`` (Brax envs on the MJX backend), ``playground/<Name>`` (MuJoCo
Playground's DM Control suite), ``grasp/<object>`` (the project's MJX multi-fingered
grasping task, ``jaxrl.envs.grasp``), ``assist/<name>`` (a pure-JAX assistance game
with a simulated human, ``jaxrl.envs.assist``), ``linear/<name>`` (finite linear MDPs
with known features and a test-time ``shift``, ``jaxrl.envs.linear``), and the
optional extra ``suites``: ``craftax/<id>`` (Craftax), ``jumanji/<id>`` (any Jumanji
env) and ``navix/<id>`` (any NAVIX MiniGrid env). ``known_names()`` lists every id.

``ale/<game>`` (extra ``atari``: any ALE game on ale-py's XLA vector env,
``jaxrl.envs.ale_env``) runs Atari inside the compiled program; its emulator state
lives outside JAX (``Env.external_state``): it resets itself, truncates itself at
``max_frames`` (``episode_length`` sets it in agent steps) and cannot be checkpointed.

``atari/<game>`` (extra ``atari``: any ALE game under the Atari100k protocol,
``jaxrl.envs.atari``) is a *host* env: C++ stepped from Python, not the functional
protocol. ``is_host(name)`` tells; ``make`` returns it without the ``EpisodeLimit``
wrapper (it truncates itself at 108k frames), and only ``jaxrl.runner.run`` with a
sequence-replay agent (Drama) trains on it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from jaxrl.envs.capabilities import (
    Capability,
    Demonstrator,
    HumanModel,
    LinearFeatures,
    ScriptedData,
    capability,
)
from jaxrl.envs.core import Box, Discrete, Env, EnvState, Spec, first_state
from jaxrl.envs.wrappers import (
    ActionRepeat,
    AutoReset,
    EpisodeLimit,
    NormalizeObservation,
    RewardScale,
    VmapWrapper,
    Wrapper,
)

__all__ = [
    "ActionRepeat",
    "AutoReset",
    "Box",
    "Capability",
    "Demonstrator",
    "HumanModel",
    "LinearFeatures",
    "ScriptedData",
    "capability",
    "Discrete",
    "Env",
    "EnvState",
    "EpisodeLimit",
    "NormalizeObservation",
    "RewardScale",
    "Spec",
    "VmapWrapper",
    "Wrapper",
    "families",
    "first_state",
    "is_host",
    "known_names",
    "make",
    "register",
]


def _classic(cls_name: str) -> Callable[..., Env]:
    def build(**kwargs: Any) -> Env:
        from jaxrl.envs import classic

        return getattr(classic, cls_name)(**kwargs)

    return build


def _pointmaze(**kwargs: Any) -> Env:
    from jaxrl.envs.pointmaze import PointMaze

    return PointMaze(**kwargs)


_REGISTRY: dict[str, Callable[..., Env]] = {
    "cartpole": _classic("CartPole"),
    "pendulum": _classic("Pendulum"),
    "pointmaze": _pointmaze,
}

# Families of names handled by an adapter module exposing `make(id, **kw)` and `names()`.
_FAMILIES: dict[str, str] = {
    "gymnax": "jaxrl.envs.gymnax_env",
    "brax": "jaxrl.envs.brax_env",
    "playground": "jaxrl.envs.playground_env",
    "minatar": "jaxrl.envs.minatar_env",
    "grasp": "jaxrl.envs.grasp",
    "assist": "jaxrl.envs.assist",
    "craftax": "jaxrl.envs.craftax_env",
    "jumanji": "jaxrl.envs.jumanji_env",
    "navix": "jaxrl.envs.navix_env",
    "linear": "jaxrl.envs.linear",
    "atari": "jaxrl.envs.atari",
    "ale": "jaxrl.envs.ale_env",
}
#: Families whose envs are stepped from Python (``reset() -> obs``, ``step(a) -> (obs,
#: reward, terminated, truncated)``) rather than by the jitted loops.
HOST_FAMILIES = ("atari",)


def register(name: str, builder: Callable[..., Env]) -> None:
    """Adds ``name`` to the registry; ``builder(**kwargs)`` returns an unwrapped Env."""
    if name in _REGISTRY:
        raise ValueError(f"environment {name!r} is already registered")
    _REGISTRY[name] = builder


def known_names() -> list[str]:
    """Every name ``make`` accepts (adapter families whose package is missing are skipped)."""
    names = sorted(_REGISTRY)
    for family, module in _FAMILIES.items():
        try:
            names += [f"{family}/{n}" for n in importlib.import_module(module).names()]
        except ImportError:
            continue
    return names


def families() -> dict[str, list[str]]:
    """``{"built-in": [names], family: [ids], ...}``; a family whose package is missing
    maps to an empty list."""
    out = {"built-in": sorted(_REGISTRY)}
    for family, module in _FAMILIES.items():
        try:
            out[family] = list(importlib.import_module(module).names())
        except ImportError:
            out[family] = []
    return out


def _unknown(name: str) -> ValueError:
    families = ", ".join(f"{f}/<id>" for f in _FAMILIES)
    return ValueError(
        f"unknown environment {name!r}; known: {', '.join(sorted(_REGISTRY))}, {families} "
        "(jaxrl.envs.known_names() lists every id)"
    )


def is_host(name: str) -> bool:
    """Whether ``name`` is a host env (``HOST_FAMILIES``), stepped from Python."""
    return isinstance(name, str) and name.partition("/")[0] in HOST_FAMILIES


def make(
    name: str,
    *,
    episode_length: int | None = -1,
    reward_scale: float | None = None,
    **kwargs: Any,
) -> Env:
    """Builds environment ``name`` wrapped in its episode limit.

    Args:
      name: a registered name or ``family/id``.
      episode_length: steps before truncation; ``-1`` uses the env's default,
        ``None`` applies no limit.
      reward_scale: multiply every reward by it (``RewardScale``); ``None`` leaves the
        env unwrapped.
      **kwargs: passed to the env's constructor.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"environment name must be a string, got {type(name).__name__}")
    if name in _REGISTRY:
        env = _REGISTRY[name](**kwargs)
    else:
        family, _, env_id = name.partition("/")
        if family not in _FAMILIES or not env_id:
            raise _unknown(name)
        adapter = importlib.import_module(_FAMILIES[family])
        if env_id not in adapter.names():
            raise _unknown(name)
        if family == "ale" and episode_length not in (-1, None):
            # The emulators truncate themselves: the limit becomes their frame budget.
            kwargs = {**kwargs, "max_frames": episode_length * kwargs.get("frame_skip", 4)}
        env = adapter.make(env_id, **kwargs)
        if family in HOST_FAMILIES:
            if episode_length != -1 or reward_scale is not None:
                raise ValueError(
                    f"{name} is a host env: it takes neither episode_length nor reward_scale"
                )
            return env
    if reward_scale is not None:
        env = RewardScale(env, reward_scale)
    if getattr(env, "external_state", False):
        if episode_length is None:
            raise ValueError(f"{name}: episode_length=None is not allowed (set max_frames)")
        return env
    limit = env.max_episode_steps if episode_length == -1 else episode_length
    if limit is not None:
        env = EpisodeLimit(env, limit)
    return env
