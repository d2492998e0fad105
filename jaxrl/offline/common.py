"""Pieces the offline agents share: where the data comes from, return conditioning,
a deterministic MLP policy and return-conditioned evaluation in the real env."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import loops
from jaxrl.core import Agent, Transition
from jaxrl.envs import Env, VmapWrapper
from jaxrl.nets import MLP
from jaxrl.offline.dataset import Dataset, load, sample


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
    dataset: str = ""
    dataset_seed: int = 0


def validate(name: str, config: OfflineConfig, positive: tuple[str, ...] = ()) -> None:
    """Raises ValueError, naming agent ``name``, for settings that cannot work.

    Checks the shared fields and the agent's own ``positive`` integer fields.
    """
    for field in ("total_steps", "batch_size", "num_evals", "num_eval_envs", *positive):
        if getattr(config, field) <= 0:
            raise ValueError(f"{name}: {field} must be positive, got {getattr(config, field)}")
    if not config.hidden or min(config.hidden) <= 0:
        raise ValueError(f"{name}: hidden must be positive widths, got {config.hidden}")


def schedule(config: OfflineConfig) -> loops.Schedule:
    """One gradient step per loop step; ``num_evals`` evaluation periods."""
    return loops.make_schedule(config.total_steps, 1, config.num_evals)


def dataset_train(
    config: OfflineConfig,
    env: Env,
    agent_fn: Callable[[Any], Agent],
    progress: loops.Progress | None = None,
) -> loops.Trainer:
    """The offline loop on uniformly sampled dataset transitions (BC, IQL).

    ``agent_fn(hparams) -> Agent``; evaluation runs the policy in ``env``.
    """
    action_bounds(env)
    source = dataset_source(env, config.dataset, config.dataset_seed)
    return loops.offline(
        agent_fn,
        env,
        prepare=lambda key, hparams: source(),
        sample=lambda data, key: sample(data, key, config.batch_size),
        total_steps=config.total_steps,
        num_evals=config.num_evals,
        num_eval_envs=config.num_eval_envs,
        data_return=lambda data: data.returns.mean(),
        progress=progress,
    )


def dataset_source(env: Env, path: str, seed: int) -> Callable[[], Dataset]:
    """A function building the offline dataset (called inside the jitted ``prepare``).

    ``path`` non-empty: the ``.npz`` / D4RL HDF5 file, read now on the host (checked before
    any compilation). Empty: the env's own scripted dataset (``scripted_dataset`` of its
    module, e.g. Point Maze's waypoint controllers), generated deterministically from
    ``seed``, so every training seed sees the same data.

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
    import importlib

    module = importlib.import_module(type(env.unwrapped).__module__)
    scripted = getattr(module, "scripted_dataset", None)
    if scripted is None:
        raise ValueError(
            f"env {type(env.unwrapped).__name__} has no built-in offline dataset; "
            "pass one with --set dataset=PATH (.npz or D4RL .hdf5)"
        )
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


class TanhPolicy(nn.Module):
    """Deterministic policy ``[..., in] -> [..., act_dim]`` in ``[-1, 1]`` (tanh head)."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    act: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(nn.Dense(self.action_dim)(MLP(self.hidden, self.act)(x)))


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


def evaluate_conditioned(
    agent: Agent,
    agent_state: Any,
    env: Env,
    key: jax.Array,
    num_envs: int,
    target_return: jax.Array,
    return_scale: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Return of one episode per env of a policy conditioned on ``target_return``.

    The policy sees ``[obs, rtg / return_scale]`` with ``rtg`` starting at
    ``target_return`` and lowered by each reward received (RCSL's test-time rule).
    Returns ``(mean, std)`` over the ``num_envs`` episodes.
    """
    horizon = env.max_episode_steps
    if horizon is None:
        raise ValueError("evaluation needs an env with an episode limit (max_episode_steps)")
    venv = VmapWrapper(env, num_envs)
    reset_key, act_key = jax.random.split(key)
    state = venv.reset(reset_key)

    def body(carry, k):
        state, rtg, total, alive = carry
        obs = jnp.concatenate([state.obs, (rtg / return_scale)[:, None]], -1)
        action, _ = agent.act(agent_state, obs, k, explore=False)
        state = venv.step(state, action)
        reward = jnp.where(alive, state.reward, 0.0)
        return (state, rtg - reward, total + reward, alive & ~state.done), None

    rtg0 = jnp.full((num_envs,), target_return, jnp.float32)
    init = (state, rtg0, jnp.zeros(num_envs), jnp.ones(num_envs, jnp.bool_))
    (_, _, returns, _), _ = jax.lax.scan(body, init, jax.random.split(act_key, horizon))
    return jnp.mean(returns), jnp.std(returns)
