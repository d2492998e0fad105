"""Offline datasets: a pytree of trajectories, loaders, a recorder and a sampler.

Layout (the project's time-major convention): every leaf is ``[T, N, ...]`` for ``N``
trajectories padded to ``T`` steps; ``valid [T, N]`` marks the real steps (a trajectory's
steps come first, padding after). Returns-to-go are computed once, when a ``Dataset`` is
built, so samplers read them instead of recomputing.

Files are data, never code: ``.npz`` files load with ``allow_pickle=False``, HDF5 files
(the D4RL key layout: ``observations``, ``actions``, ``rewards``, ``terminals``,
``timeouts``, optional ``next_observations``) load through ``h5py``; shapes and dtypes are
checked, and ``save_npz`` writes to a temporary file renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.core import Transition
from jaxrl.data.sampling import weighted_indices
from jaxrl.envs import Env, ScriptedData, VmapWrapper, capability

Policy = Callable[[jax.Array, jax.Array], jax.Array]  # (obs [B, ...], key) -> action [B, ...]

_FIELDS = ("obs", "action", "reward", "terminal", "timeout", "next_obs", "valid")
_D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


class Dataset(struct.PyTreeNode):
    """Trajectories, leaves ``[T, N, ...]``.

    Attributes:
      obs: observation at each step.
      action: action taken.
      reward: reward received, float32.
      terminal: the step reached a terminal state (bool).
      timeout: the trajectory was cut by a time limit after this step (bool).
      next_obs: observation the step reached.
      valid: the step exists (bool); padding after a trajectory's end is False.
      rtg: undiscounted return-to-go ``sum_{t' >= t} reward[t']`` over valid steps.
      length: ``[N]`` int32 number of valid steps of each trajectory (they come first).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminal: jax.Array
    timeout: jax.Array
    next_obs: jax.Array
    valid: jax.Array
    rtg: jax.Array
    length: jax.Array

    @property
    def num_trajectories(self) -> int:
        return self.reward.shape[1]

    @property
    def horizon(self) -> int:
        return self.reward.shape[0]

    @property
    def returns(self) -> jax.Array:
        """``[N]`` total reward of each trajectory."""
        return self.rtg[0]


def returns_to_go(reward: jax.Array, valid: jax.Array, discount: float = 1.0) -> jax.Array:
    """``rtg[t] = sum_{k >= t} discount^(k - t) reward[k] valid[k]``; ``[T, N] -> [T, N]``.

    Zero on padding steps. Works on NumPy and JAX arrays (one reverse scan).
    """
    r = jnp.asarray(reward, jnp.float32) * jnp.asarray(valid, jnp.float32)

    def back(acc, x):
        acc = x + discount * acc
        return acc, acc

    _, rtg = jax.lax.scan(back, jnp.zeros(r.shape[1:], jnp.float32), r, reverse=True)
    return rtg


def make_dataset(
    obs: Any,
    action: Any,
    reward: Any,
    terminal: Any,
    timeout: Any,
    next_obs: Any,
    valid: Any | None = None,
) -> Dataset:
    """A ``Dataset`` from time-major arrays ``[T, N, ...]``, with return-to-go computed.

    Raises:
      ValueError: when leading axes disagree or reward is not ``[T, N]``.
    """
    reward = jnp.asarray(reward, jnp.float32)
    if reward.ndim != 2:
        raise ValueError(f"reward must be [T, N], got shape {tuple(reward.shape)}")
    shape = reward.shape
    valid = jnp.ones(shape, jnp.bool_) if valid is None else jnp.asarray(valid, jnp.bool_)
    arrays = {
        "obs": jnp.asarray(obs, jnp.float32),
        "action": jnp.asarray(action),
        "terminal": jnp.asarray(terminal, jnp.bool_),
        "timeout": jnp.asarray(timeout, jnp.bool_),
        "next_obs": jnp.asarray(next_obs, jnp.float32),
        "valid": valid,
    }
    for name, x in arrays.items():
        if tuple(x.shape[:2]) != tuple(shape):
            raise ValueError(
                f"dataset field {name!r} has leading shape {tuple(x.shape[:2])}, "
                f"expected {tuple(shape)} (the [T, N] of reward)"
            )
    if arrays["obs"].shape != arrays["next_obs"].shape:
        raise ValueError(
            f"obs {tuple(arrays['obs'].shape)} and next_obs "
            f"{tuple(arrays['next_obs'].shape)} must have the same shape"
        )
    if jnp.issubdtype(arrays["action"].dtype, jnp.floating):
        arrays["action"] = arrays["action"].astype(jnp.float32)
    length = jnp.sum(valid, axis=0, dtype=jnp.int32)
    return Dataset(reward=reward, rtg=returns_to_go(reward, valid), length=length, **arrays)


def from_flat(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    terminals: np.ndarray,
    timeouts: np.ndarray,
    next_observations: np.ndarray | None = None,
) -> Dataset:
    """Splits a flat D4RL-style table ``[M, ...]`` into trajectories (host side, NumPy).

    A trajectory ends after a step with ``terminals`` or ``timeouts`` set (and at the end of
    the table). Without ``next_observations`` the next observation is the following row of
    the same trajectory; a trajectory's last step then has none unless it is terminal, and
    is dropped (as D4RL's ``qlearning_dataset`` does).

    Raises:
      ValueError: for mismatched lengths or wrong ranks.
    """
    obs = np.asarray(observations, np.float32)
    act = np.asarray(actions)
    rew = np.asarray(rewards, np.float32).reshape(-1)
    term = np.asarray(terminals).astype(bool).reshape(-1)
    tout = np.asarray(timeouts).astype(bool).reshape(-1)
    m = len(rew)
    if obs.ndim < 2 or len(obs) != m or len(act) != m or len(term) != m or len(tout) != m:
        raise ValueError(
            "observations [M, obs], actions [M, ...], rewards, terminals and timeouts [M] "
            f"must share M; got {obs.shape}, {act.shape}, {rew.shape}, {term.shape}, {tout.shape}"
        )
    if m == 0:
        raise ValueError("the dataset is empty")
    nxt = None if next_observations is None else np.asarray(next_observations, np.float32)
    if nxt is not None and nxt.shape != obs.shape:
        raise ValueError(f"next_observations {nxt.shape} must match observations {obs.shape}")
    cut = np.flatnonzero(term | tout) + 1
    edges = np.unique(np.concatenate([[0], cut, [m]]))
    segments = list(zip(edges[:-1], edges[1:], strict=True))
    horizon = max(b - a for a, b in segments)
    n = len(segments)
    out = {
        "obs": np.zeros((horizon, n, *obs.shape[1:]), np.float32),
        "action": np.zeros((horizon, n, *act.shape[1:]), act.dtype),
        "reward": np.zeros((horizon, n), np.float32),
        "terminal": np.zeros((horizon, n), bool),
        "timeout": np.zeros((horizon, n), bool),
        "next_obs": np.zeros((horizon, n, *obs.shape[1:]), np.float32),
        "valid": np.zeros((horizon, n), bool),
    }
    for j, (a, b) in enumerate(segments):
        length = b - a
        out["obs"][:length, j] = obs[a:b]
        out["action"][:length, j] = act[a:b]
        out["reward"][:length, j] = rew[a:b]
        out["terminal"][:length, j] = term[a:b]
        out["timeout"][:length, j] = tout[a:b]
        out["valid"][:length, j] = True
        if nxt is not None:
            out["next_obs"][:length, j] = nxt[a:b]
        else:
            out["next_obs"][: length - 1, j] = obs[a + 1 : b]
            out["next_obs"][length - 1, j] = obs[b - 1]
            out["valid"][length - 1, j] = bool(term[b - 1])
    return make_dataset(**out)


def _check_keys(found: Any, path: Path) -> None:
    missing = [k for k in _D4RL_KEYS if k not in found]
    if missing:
        raise ValueError(
            f"{path}: missing key(s) {', '.join(missing)}; expected the D4RL layout "
            f"({', '.join(_D4RL_KEYS)}, optional next_observations) or jaxrl's "
            f"({', '.join(_FIELDS)})"
        )


def load_npz(path: str | Path) -> Dataset:
    """Loads a dataset from ``.npz``: jaxrl's time-major keys or D4RL's flat keys.

    Raises:
      ValueError: for a missing, unreadable or malformed file (never unpickles).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npz dataset ({err})") from None
    if "reward" in data:  # jaxrl layout, [T, N, ...]
        missing = [k for k in _FIELDS if k not in data and k != "valid"]
        if missing:
            raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
        return make_dataset(**{k: data[k] for k in _FIELDS if k in data})
    _check_keys(data, path)
    return from_flat(*(data[k] for k in _D4RL_KEYS), data.get("next_observations"))


def load_hdf5(path: str | Path) -> Dataset:
    """Loads a D4RL-layout HDF5 file from disk (no downloads). Needs ``h5py``.

    Raises:
      ValueError: for a missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset file {path} does not exist")
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is a dependency
        raise ValueError("reading HDF5 datasets needs h5py: pip install h5py") from err
    try:
        with h5py.File(path, "r") as f:
            _check_keys(f, path)
            arrays = [np.asarray(f[k][()]) for k in _D4RL_KEYS]
            nxt = np.asarray(f["next_observations"][()]) if "next_observations" in f else None
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    return from_flat(*arrays, nxt)


def load(path: str | Path) -> Dataset:
    """``load_npz`` or ``load_hdf5`` by file suffix (``.npz``; ``.hdf5`` / ``.h5``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix in (".hdf5", ".h5"):
        return load_hdf5(path)
    raise ValueError(f"dataset {path}: unknown format {suffix!r}; use .npz, .hdf5 or .h5")


def save_npz(path: str | Path, dataset: Dataset) -> None:
    """Writes ``dataset`` (time-major keys) atomically: a temp file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(getattr(dataset, k)) for k in _FIELDS}
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(
    env: Env, policy: Policy, key: jax.Array, num_episodes: int, horizon: int | None = None
) -> Dataset:
    """Runs ``policy`` for one episode in each of ``num_episodes`` envs; a ``Dataset``.

    ``policy(obs [B, ...], key) -> action [B, ...]`` may be scripted or a trained agent's
    ``lambda o, k: agent.act(state, o, k, explore=False)[0]``. ``horizon`` defaults to
    the env's episode limit. Steps after an episode ends are padding (``valid`` False).
    Pure and jittable.
    """
    horizon = horizon or env.max_episode_steps
    if horizon is None:
        raise ValueError("record needs a horizon or an env with an episode limit")
    venv = VmapWrapper(env, num_episodes)
    reset_key, act_key = jax.random.split(key)
    state = venv.reset(reset_key)

    def body(carry, k):
        state, alive = carry
        action = policy(state.obs, k)
        nxt = venv.step(state, action)
        step = Transition(
            obs=state.obs,
            action=action,
            reward=nxt.reward,
            terminated=nxt.terminated,
            truncated=nxt.truncated,
            next_obs=nxt.obs,
            extras={"valid": alive},
        )
        return (nxt, alive & ~nxt.done), step

    init = (state, jnp.ones(num_episodes, jnp.bool_))
    _, tr = jax.lax.scan(body, init, jax.random.split(act_key, horizon))
    last = jnp.arange(horizon)[:, None] == horizon - 1
    return make_dataset(
        tr.obs,
        tr.action,
        tr.reward,
        tr.terminated,
        tr.truncated | (last & ~tr.terminated),
        tr.next_obs,
        tr.extras["valid"],
    )


def scripted(env: Env, key: jax.Array, num_episodes: int | None = None, hint: str = "") -> Dataset:
    """The env's built-in offline dataset (its ``ScriptedData`` capability, e.g. Point
    Maze's waypoint controllers): ``num_episodes`` (default the env's) recorded episodes,
    deterministic for a fixed ``key``. Pure and jittable.

    Raises:
      ValueError: for an env without a built-in dataset (then ``hint``, when given).
    """
    data = capability(env, ScriptedData, hint)
    num_episodes = num_episodes or data.num_episodes
    policy, key = data.behaviour(key, num_episodes)
    return record(env, policy, key, num_episodes)


def sample(
    dataset: Dataset, key: jax.Array, batch_size: int, keep: jax.Array | None = None
) -> Transition:
    """``batch_size`` valid steps drawn uniformly with replacement: a flat ``Transition``.

    Leaves ``[batch_size, ...]``; ``extras`` holds ``rtg`` (return-to-go) and ``timestep``.
    ``keep [N]`` (bool) restricts the draw to some trajectories. A trajectory is picked
    with probability proportional to its length, then a step uniformly in it: O(N) work per
    call, not O(T N).
    """
    weight = dataset.length if keep is None else jnp.where(keep, dataset.length, 0)
    traj_key, step_key = jax.random.split(key)
    n = weighted_indices(traj_key, weight, (batch_size,))
    t = jnp.floor(jax.random.uniform(step_key, (batch_size,)) * dataset.length[n])
    t = jnp.minimum(t.astype(jnp.int32), dataset.length[n] - 1)
    take = lambda x: x[t, n]
    return Transition(
        obs=take(dataset.obs),
        action=take(dataset.action),
        reward=take(dataset.reward),
        terminated=take(dataset.terminal),
        truncated=take(dataset.timeout),
        next_obs=take(dataset.next_obs),
        extras={"rtg": take(dataset.rtg), "timestep": t},
    )
