"""What an env offers agents beyond the protocol, declared as typed records.

An env lists its capabilities (``Env.capabilities()``); an agent asks for one by type
(``capability(env, Demonstrator)``), never for an env class. A missing capability is a
``ValueError`` naming the env, what is missing and which envs offer it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import jax

from jaxrl.envs.core import Env

#: ``policy(obs [B, ...], key) -> action [B, ...]``: a scripted policy over a batch.
Policy = Callable[[jax.Array, jax.Array], jax.Array]


class Capability:
    """Base of the capability records: ``label`` says what it is, ``offered_by`` which
    registered envs offer it (both for error messages)."""

    label: ClassVar[str] = "capability"
    offered_by: ClassVar[str] = "none"


@dataclasses.dataclass(frozen=True)
class Demonstrator(Capability):
    """A scripted controller for demonstrations: ``make(noise) -> Policy`` (Gaussian
    action noise of std ``noise``); ``make`` raises ``ValueError`` when the env's settings
    do not allow it."""

    label: ClassVar[str] = "scripted demonstrator"
    offered_by: ClassVar[str] = "grasp/<object>"
    make: Callable[[float], Policy]


@dataclasses.dataclass(frozen=True)
class ScriptedData(Capability):
    """A built-in offline dataset, as the behaviour ``jaxrl.data.datasets.scripted``
    records: ``behaviour(key, num_episodes) -> (policy, key)``, the scripted policy of
    ``num_episodes`` envs stepped together and the key to record them with."""

    label: ClassVar[str] = "built-in offline dataset"
    offered_by: ClassVar[str] = "pointmaze"
    behaviour: Callable[[jax.Array, int], tuple[Policy, jax.Array]]
    num_episodes: int = 1000


@dataclasses.dataclass(frozen=True)
class LinearFeatures(Capability):
    """Known features of a finite-horizon linear MDP: ``features [S, A, d]`` (each row on
    the simplex), ``horizon`` H (the steps per episode) and the ``start`` state."""

    label: ClassVar[str] = "linear MDP with known features"
    offered_by: ClassVar[str] = "linear/<name>"
    features: jax.Array
    horizon: int
    start: int


@dataclasses.dataclass(frozen=True)
class HumanModel(Capability):
    """An assistance game a planner can simulate with a model of its human: ``config``
    (the game's settings: ``num_cells``, ``horizon``, ``num_actions``) for the functions
    of ``jaxrl.envs.assist``, and ``goal(env_state) -> [B, cells]`` the hidden goal the
    human knows (for training the planner's goal head)."""

    label: ClassVar[str] = "assistance game with a human model"
    offered_by: ClassVar[str] = "assist/<name>"
    config: Any
    goal: Callable[[Any], jax.Array]


C = TypeVar("C", bound=Capability)


def capability(env: Env, kind: type[C], hint: str = "") -> C:
    """The ``kind`` capability ``env`` (or the env it wraps) offers.

    Raises:
      ValueError: naming the env, the missing capability and the envs offering it
        (then ``hint``, when given).
    """
    inner = env.unwrapped
    for offered in inner.capabilities():
        if isinstance(offered, kind):
            return offered
    message = (
        f"env {type(inner).__name__} offers no {kind.label} ({kind.__name__}); "
        f"envs that do: {kind.offered_by}"
    )
    raise ValueError(f"{message}; {hint}" if hint else message)
