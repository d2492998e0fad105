"""Seed and hyperparameter sweeps as vmaps of one ``train(key, hparams)`` function.

The batch axis is sharded over every available device with a ``Mesh`` and
``NamedSharding`` (JAX's SPMD partitioner); on one device it is a plain vmap.
Under ``jax.distributed.initialize()`` the same code spans hosts.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

Train = Callable[[jax.Array, Any], tuple[Any, Any]]


def init_distributed() -> None:
    """``jax.distributed.initialize()`` for a multi-host run; call before any JAX work.

    Reads ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES``
    and ``JAX_PROCESS_ID`` when set; otherwise JAX detects the cluster itself (SLURM,
    Open MPI, Cloud TPU). Afterwards ``jax.devices()`` lists every host's devices, so the
    batch mesh of ``over_seeds`` / ``over_hparams`` spans them all.
    """
    env = os.environ
    kwargs = {}
    if "JAX_COORDINATOR_ADDRESS" in env:
        kwargs["coordinator_address"] = env["JAX_COORDINATOR_ADDRESS"]
    if "JAX_NUM_PROCESSES" in env:
        kwargs["num_processes"] = int(env["JAX_NUM_PROCESSES"])
    if "JAX_PROCESS_ID" in env:
        kwargs["process_id"] = int(env["JAX_PROCESS_ID"])
    jax.distributed.initialize(**kwargs)


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """``[num_seeds, 2]`` independent keys derived from one integer seed."""
    if num_seeds <= 0:
        raise ValueError(f"num_seeds must be positive, got {num_seeds}")
    return jax.random.split(jax.random.PRNGKey(seed), num_seeds)


def stack(trees: list[Any]) -> Any:
    """Stacks a list of same-structured pytrees along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def grid(hparams: Any, **axes: list[float]) -> tuple[Any, list[dict[str, float]]]:
    """Cartesian product of hyperparameter values as one batched ``hparams``.

    ``grid(hp, lr=[1e-4, 3e-4], gamma=[0.99, 0.995])`` returns hparams whose leaves
    have a leading axis of 4, and the list of the 4 settings in that order.
    """
    for name in axes:
        if not hasattr(hparams, name):
            raise ValueError(f"unknown hyperparameter {name!r}")
    names = list(axes)
    combos = itertools.product(*axes.values())
    settings = [dict(zip(names, values, strict=True)) for values in combos]
    batch = [
        hparams.replace(**{k: jnp.asarray(v, jnp.float32) for k, v in s.items()}) for s in settings
    ]
    return stack(batch), settings


def batch_mesh(batch_size: int, devices: list | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"`` over the most devices that divide ``batch_size``."""
    devices = list(devices if devices is not None else jax.devices())
    n = max(d for d in range(1, len(devices) + 1) if batch_size % d == 0)
    return Mesh(np.asarray(devices[:n]), ("batch",))


def _sharded(fn: Callable, in_axes: tuple, batch_size: int) -> Callable:
    vf = jax.vmap(fn, in_axes=in_axes)
    mesh = batch_mesh(batch_size)
    if mesh.size == 1:
        return jax.jit(vf)
    batched = NamedSharding(mesh, PartitionSpec("batch"))
    replicated = NamedSharding(mesh, PartitionSpec())
    in_shardings = tuple(batched if a == 0 else replicated for a in in_axes)
    return jax.jit(vf, in_shardings=in_shardings, out_shardings=batched)


def over_seeds(train: Train, num_seeds: int) -> Callable[[jax.Array, Any], tuple[Any, Any]]:
    """Jitted ``f(keys [S, 2], hparams) -> (states, metrics)`` with a leading ``[S]`` axis."""
    return _sharded(train, (0, None), num_seeds)


def over_hparams(train: Train, batch_size: int) -> Callable[[jax.Array, Any], tuple[Any, Any]]:
    """Jitted ``f(key, hparams [H]) -> (states, metrics)`` with a leading ``[H]`` axis.

    Hyperparameters are traced arrays, so one compilation serves the whole grid.
    """
    return _sharded(train, (None, 0), batch_size)


def over_seeds_and_hparams(train: Train, num_seeds: int, batch_size: int) -> Callable:
    """Jitted ``f(keys [S, 2], hparams [H]) -> (states, metrics)`` with leading ``[H, S]``."""
    inner = jax.vmap(train, in_axes=(0, None))
    return _sharded(inner, (None, 0), batch_size)
