"""Environments: one functional protocol, a registry and wrappers.

``make(name)`` returns a single (unbatched) env with its episode limit applied.
Names: ``cartpole``, ``cartpole_masked`` (CartPole without its velocities: a memory
task), ``pendulum``, ``pointmaze`` (built in, pure JAX) and families
``family/<id>`` served by adapter modules: ``gymnax/<id>``, ``minatar/<name>``,
``brax/<name>`` (Brax envs on the MJX backend), ``playground/<Name>`` (MuJoCo
Playground's DM Control suite), ``grasp/<object>`` (the project's MJX multi-fingered
grasping task, ``jaxrl.envs.grasp``), ``assist/<name>`` (a pure-JAX assistance game
with a simulated human, ``jaxrl.envs.assist``), ``linear/<name>`` (finite linear MDPs
with known features and a test-time ``shift``, ``jaxrl.envs.linear``), and the
optional extra ``suites``: ``craftax/<id>`` (Craftax), ``jumanji/<id>`` (any Jumanji
env) and ``navix/<id>`` (any NAVIX MiniGrid env). ``known_names()`` lists every id;
``env_args(name)`` the options ``make(name, ...)`` takes as plain values
(``episode_length``, ``reward_scale`` and the env's own constructor arguments).

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
import math
import numbers
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
from jaxrl.envs.core import Box, Discrete, Env, EnvState, Spec, call_args, first_state
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
    "COMMON_ARGS",
    "Discrete",
    "Env",
    "EnvState",
    "EpisodeLimit",
    "NormalizeObservation",
    "RewardScale",
    "Spec",
    "VmapWrapper",
    "Wrapper",
    "env_args",
    "families",
    "first_state",
    "is_host",
    "known_names",
    "make",
    "register",
]


def _lazy(module: str, cls_name: str) -> Callable[..., Env]:
    """``module.cls_name(**kwargs)``, imported on first use; ``build.target()`` gives the
    class (whose constructor ``env_args`` reads)."""

    def target() -> Callable[..., Env]:
        return getattr(importlib.import_module(module), cls_name)

    def build(**kwargs: Any) -> Env:
        return target()(**kwargs)

    build.target = target
    return build


_REGISTRY: dict[str, Callable[..., Env]] = {
    "cartpole": _lazy("jaxrl.envs.classic", "CartPole"),
    "cartpole_masked": _lazy("jaxrl.envs.classic", "MaskedCartPole"),
    "pendulum": _lazy("jaxrl.envs.classic", "Pendulum"),
    "pointmaze": _lazy("jaxrl.envs.pointmaze", "PointMaze"),
}

# Families of names handled by an adapter module exposing `make(id, **kw)`, `names()` and
# `args(id)` (the plain-valued keyword arguments `make` takes, ``{name: type}``).
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


#: The options ``make`` itself takes for every env that is not a host env.
COMMON_ARGS: dict[str, Any] = {"episode_length": int, "reward_scale": float}


def env_args(name: str) -> dict[str, Any]:
    """``{keyword: type}`` of the options ``make(name, **kwargs)`` takes as plain values
    (what ``jaxrl train --env-arg KEY=VALUE`` can set): ``COMMON_ARGS`` (``episode_length``,
    ``reward_scale``; not for a host env) and the env's own constructor arguments.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"environment name must be a string, got {type(name).__name__}")
    if name in _REGISTRY:
        builder = _REGISTRY[name]
        own = call_args(getattr(builder, "target", lambda: builder)())
    else:
        family, _, env_id = name.partition("/")
        if family not in _FAMILIES or not env_id:
            raise _unknown(name)
        adapter = importlib.import_module(_FAMILIES[family])
        if env_id not in adapter.names():
            raise _unknown(name)
        own = adapter.args(env_id)
        if is_host(name):
            return own
    return {**{k: v for k, v in own.items() if k not in COMMON_ARGS}, **COMMON_ARGS}


def _check_common(episode_length: Any, reward_scale: Any) -> None:
    """ValueError for an ``episode_length`` that is not -1, None or a positive int, or a
    ``reward_scale`` that is not None or a finite number."""
    if episode_length is not None and episode_length != -1:
        if not isinstance(episode_length, numbers.Integral) or isinstance(episode_length, bool):
            raise ValueError(f"episode_length must be a positive int, got {episode_length!r}")
        if episode_length <= 0:
            raise ValueError(f"episode_length must be positive, got {episode_length}")
    if reward_scale is not None and not (
        isinstance(reward_scale, numbers.Real) and math.isfinite(reward_scale)
    ):
        raise ValueError(f"reward_scale must be a finite number, got {reward_scale!r}")


def is_host(name: str) -> bool:
    """Whether ``name`` is a host env (``HOST_FAMILIES``), stepped from Python."""
    return isinstance(name, str) and name.partition("/")[0] in HOST_FAMILIES


def _build(name: str, kwargs: dict[str, Any]) -> Env:
    """The unwrapped env ``name`` built with ``kwargs``; ValueError for an unknown name."""
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    family, _, env_id = name.partition("/")
    if family not in _FAMILIES or not env_id:
        raise _unknown(name)
    adapter = importlib.import_module(_FAMILIES[family])
    if env_id not in adapter.names():
        raise _unknown(name)
    return adapter.make(env_id, **kwargs)


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
      ValueError: for an unknown name, listing the known ones; a bad ``episode_length``
        or ``reward_scale``; a keyword the env does not take (listing ``env_args``).
    """
    if not isinstance(name, str):
        raise ValueError(f"environment name must be a string, got {type(name).__name__}")
    _check_common(episode_length, reward_scale)
    if name.partition("/")[0] == "ale" and episode_length not in (-1, None):
        # The emulators truncate themselves: the limit becomes their frame budget.
        kwargs = {**kwargs, "max_frames": episode_length * kwargs.get("frame_skip", 4)}
    try:
        env = _build(name, kwargs)
    except TypeError as err:
        if not kwargs:
            raise
        takes = ", ".join(sorted(env_args(name))) or "none"
        raise ValueError(f"{name}: {err}; its options: {takes}") from None
    if is_host(name):
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
