"""Pieces the offline agents share: where the data comes from, return conditioning,
a deterministic MLP policy and return-conditioned evaluation in the real env."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import loops
from jaxrl.core import Transition
from jaxrl.data.datasets import Dataset, load, sample, scripted
from jaxrl.envs import Env, ScriptedData, capability
from jaxrl.loops import AlgoSpec


@dataclasses.dataclass(frozen=True)
class OfflineConfig:
    """Static settings every offline agent has (each agent's ``Config`` extends it).

    ``dataset``: a ``.npz`` / D4RL ``.hdf5`` path, or empty for the env's built-in
    scripted dataset (Point Maze), generated from ``dataset_seed``.
    """

    total_steps: int = 5_000  # gradient steps
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    num_evals: int = 10
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length
    dataset: str = ""
    dataset_seed: int = 0


#: ``OfflineConfig`` fields that must be positive (besides the run's own).
POSITIVE = ("batch_size",)


def check(config: OfflineConfig, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    if not config.hidden or min(config.hidden) <= 0:
        raise ValueError(f"hidden must be positive widths, got {config.hidden}")
    action_bounds(env)


def dataset_data(config: OfflineConfig, env: Env) -> loops.Dataset:
    """Uniformly sampled dataset transitions (BC, IQL); ``train_return`` is the mean
    return of the dataset's trajectories."""
    source = dataset_source(env, config.dataset, config.dataset_seed)
    return loops.Dataset(
        prepare=lambda key, hparams: source(),
        sample=lambda data, key: sample(data, key, config.batch_size),
        data_return=lambda data: data.returns.mean(),
    )


def dataset_source(env: Env, path: str, seed: int) -> Callable[[], Dataset]:
    """A function building the offline dataset (called inside the jitted ``prepare``).

    ``path`` non-empty: the ``.npz`` / D4RL HDF5 file, read now on the host (checked before
    any compilation). Empty: the env's built-in dataset (its ``ScriptedData`` capability,
    e.g. Point Maze's waypoint controllers, ``datasets.scripted``), generated
    deterministically from ``seed``, so every training seed sees the same data.

    Raises:
      ValueError: for a bad file, a dataset whose shapes do not match ``env``, or an env
        without a scripted dataset and no ``path``.
    """
    obs_shape = tuple(env.observation_spec.shape)
    act_shape = tuple(env.action_spec.shape)
    if path:
        data = load(path)
        if tuple(data.obs.shape[2:]) != obs_shape or tuple(data.action.shape[2:]) != act_shape:
            raise ValueError(
                f"dataset {path}: obs {tuple(data.obs.shape[2:])} / action "
                f"{tuple(data.action.shape[2:])} do not match the env's {obs_shape} / {act_shape}"
            )
        return lambda: data
    hint = "pass one with --set dataset=PATH (.npz or D4RL .hdf5)"
    capability(env, ScriptedData, hint)  # a clear error now, before any compilation
    return lambda: scripted(env, jax.random.PRNGKey(seed))


def action_bounds(env: Env) -> tuple[np.ndarray, np.ndarray]:
    """``(center, half_width)`` of a bounded Box action spec.

    Raises:
      ValueError: for a discrete or unbounded action spec.
    """
    spec = env.action_spec
    if spec.discrete:
        raise ValueError("offline agents here need a continuous (Box) action spec")
    low = np.broadcast_to(np.asarray(spec.low, np.float32), spec.shape)
    high = np.broadcast_to(np.asarray(spec.high, np.float32), spec.shape)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("offline agents need a bounded action spec (finite low and high)")
    return (high + low) / 2, (high - low) / 2


def top_trajectories(returns: jax.Array, fraction: float) -> jax.Array:
    """``[N]`` bool: the ``ceil(fraction * N)`` trajectories (at least one) with the highest
    ``returns [N]``, ties going to the lower index (%BC's filter; ``fraction`` static)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = returns.shape[0]
    k = max(1, math.ceil(fraction * n))
    order = jnp.argsort(-returns, stable=True)
    return jnp.zeros((n,), jnp.bool_).at[order[:k]].set(True)


class ConditionedData(struct.PyTreeNode):
    """Training data of a return-conditioned policy.

    Attributes:
      dataset: the trajectories (leaves ``[T, N, ...]``).
      keep: ``[N]`` bool, the trajectories to train on (MBRCSL's filter; all for RCSL).
      target_return: the return the policy is conditioned on at evaluation.
      return_scale: returns-to-go are divided by it before entering the network.
      stats: constant float32 scalars reported with the metrics.
    """

    dataset: Dataset
    keep: jax.Array
    target_return: jax.Array
    return_scale: jax.Array
    stats: dict = struct.field(default_factory=dict)


def conditioned_data(dataset: Dataset, keep: jax.Array | None = None, **stats) -> ConditionedData:
    """RCSL data: condition on the best kept return; scale returns by its magnitude."""
    keep = jnp.ones(dataset.num_trajectories, jnp.bool_) if keep is None else keep
    returns = jnp.where(keep, dataset.returns, -jnp.inf)
    target = jnp.max(returns)
    scale = jnp.maximum(jnp.max(jnp.where(keep, jnp.abs(dataset.returns), 0.0)), 1e-6)
    stats = {k: jnp.asarray(v, jnp.float32) for k, v in stats.items()}
    return ConditionedData(dataset, keep, target, scale, stats)


def sample_conditioned(data: ConditionedData, key: jax.Array, batch_size: int) -> Transition:
    """Steps of kept trajectories; ``obs`` gains the scaled return-to-go: ``[B, obs + 1]``."""
    batch = sample(data.dataset, key, batch_size, data.keep)
    rtg = batch.extras["rtg"] / data.return_scale
    return batch.replace(obs=jnp.concatenate([batch.obs, rtg[:, None]], -1))


def mean_kept_return(data: ConditionedData) -> jax.Array:
    """Mean return of the trajectories the policy trains on."""
    keep = data.keep.astype(jnp.float32)
    return jnp.sum(data.dataset.returns * keep) / jnp.maximum(jnp.sum(keep), 1.0)


def return_conditioning(data: ConditionedData) -> loops.Conditioning:
    """RCSL's test-time rule: the policy sees ``[obs, rtg / return_scale]``, ``rtg``
    starting at ``target_return`` and lowered by each reward received."""
    return loops.Conditioning(
        init=lambda n: jnp.full((n,), data.target_return, jnp.float32),
        obs=lambda obs, rtg: jnp.concatenate([obs, (rtg / data.return_scale)[:, None]], -1),
        step=lambda rtg, reward: rtg - reward,
    )


def conditioned(
    config: OfflineConfig,
    prepare: Callable[[jax.Array, Any], ConditionedData],
    sample: Callable[[ConditionedData, jax.Array], Transition] | None = None,
) -> loops.Dataset:
    """The data of a return-conditioned policy (RCSL, MBRCSL): ``prepare(key, hparams) ->
    ConditionedData``; ``sample(data, key)`` defaults to ``sample_conditioned``."""
    return loops.Dataset(
        prepare=prepare,
        sample=sample or (lambda data, key: sample_conditioned(data, key, config.batch_size)),
        conditioning=return_conditioning,
        data_return=mean_kept_return,
        data_metrics=lambda data: {"target_return": data.target_return, **data.stats},
    )


#: ``spec(name, summary, Config, HParams, make_agent, data, ...)``: an offline
#: ``AlgoSpec`` (continuous actions, Point Maze by default).
spec = functools.partial(
    AlgoSpec, action_kinds=("continuous",), default_env="pointmaze", positive=POSITIVE, check=check
)
