"""What an algorithm consumes, declared as data; ``jaxrl.loops.make_train`` assembles the
loop from it. Each declaration fixes how many env steps one loop iteration takes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from jaxrl.core import Metrics
from jaxrl.loops.evaluate import Conditioning


@dataclasses.dataclass(frozen=True)
class Rollout:
    """On-policy rollouts: each iteration collects ``[rollout_len, num_envs]`` steps
    (with ``act``'s info as ``extras``) and calls ``update`` once on them."""

    num_envs: int
    rollout_len: int

    @property
    def steps_per_iter(self) -> int:
        return self.num_envs * self.rollout_len


@dataclasses.dataclass(frozen=True)
class Replay:
    """A replay buffer in the loop carry: each iteration steps ``num_envs`` envs once,
    stores the transitions (with the ``act`` info keys named in ``extras``) and, after
    ``warmup_steps`` uniformly random steps, runs ``updates_per_iter`` updates on flat
    batches ``[batch_size, ...]``. With ``sequence_len > 1`` each batch item is a run of
    that many consecutive steps of one env instead, time-major: leaves
    ``[sequence_len, batch_size, ...]`` (n-step returns; the run may cross episode ends,
    which ``terminated`` / ``truncated`` mark)."""

    num_envs: int
    batch_size: int
    buffer_size: int
    warmup_steps: int
    updates_per_iter: int
    extras: tuple[str, ...] = ()
    sequence_len: int = 1

    @property
    def steps_per_iter(self) -> int:
        return self.num_envs

    @classmethod
    def from_config(
        cls, config: Any, extras: tuple[str, ...] = (), sequence_len: int = 1
    ) -> Replay:
        """The replay of a ``Config`` with ``num_envs, batch_size, buffer_size,
        warmup_steps`` and ``updates_per_iter`` (a field or a property)."""
        return cls(
            num_envs=config.num_envs,
            batch_size=config.batch_size,
            buffer_size=config.buffer_size,
            warmup_steps=config.warmup_steps,
            updates_per_iter=config.updates_per_iter,
            extras=extras,
            sequence_len=sequence_len,
        )


#: The ``Replay.from_config`` settings that must be positive (``AlgoSpec.positive``).
REPLAY_POSITIVE = ("num_envs", "batch_size", "buffer_size")


def check_warmup(config: Any) -> None:
    """Raises ValueError unless ``config.warmup_steps >= 0`` (replay and sequence data)."""
    if config.warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {config.warmup_steps}")


@dataclasses.dataclass(frozen=True)
class Stream:
    """Streaming: ``num_envs`` independent learners, one transition, one update, no
    buffer (state leaves gain ``[num_envs]``)."""

    num_envs: int = 1

    @property
    def steps_per_iter(self) -> int:
        return self.num_envs


@dataclasses.dataclass(frozen=True)
class Sequences:
    """Per-env sequence replay sized for the whole run: each iteration steps ``num_envs``
    envs ``train_every`` times (uniformly random actions for the first ``warmup_steps``)
    and, once ``first_update`` steps per env are stored, runs ``updates_per_iter``
    updates on batches drawn by ``sampler`` (``jaxrl.data.sequences``)."""

    num_envs: int
    train_every: int
    warmup_steps: int
    updates_per_iter: int
    sampler: Any
    first_update: int

    @property
    def steps_per_iter(self) -> int:
        return self.num_envs * self.train_every


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A fixed dataset, no env interaction while training: one gradient step per
    iteration (so ``total_steps`` counts gradient steps).

    Attributes:
      prepare: ``(key, hparams) -> data``, run once inside ``init`` (load or generate a
        dataset; MBRCSL also trains its model and rolls it out here).
      sample: ``(data, key) -> batch``.
      conditioning: ``data -> Conditioning`` for the evaluation (return-conditioned
        policies), or ``None``.
      data_return: ``data -> float32``, reported as ``train_return``.
      data_metrics: ``data -> metrics`` added to every iteration's metrics.
    """

    prepare: Callable[[jax.Array, Any], Any]
    sample: Callable[[Any, jax.Array], Any]
    conditioning: Callable[[Any], Conditioning] | None = None
    data_return: Callable[[Any], jax.Array] | None = None
    data_metrics: Callable[[Any], Metrics] | None = None

    @property
    def steps_per_iter(self) -> int:
        return 1


Data = Rollout | Replay | Stream | Sequences | Dataset
