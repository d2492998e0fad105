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

from jaxrl.core.domains import check_hparam

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


def cpu_cores() -> int:
    """The number of CPU cores this process may run on (its affinity mask where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_cpu_cores(num_devices: int | None = None) -> int | None:
    """Exposes the CPU cores as JAX CPU devices, so that ``over_seeds`` runs seeds on all of them.

    One XLA:CPU device runs a vmapped program on one core (its small matmuls already run
    near one core's peak), so on a CPU-only machine extra seeds cost almost their full
    price. With one device per core, the batch mesh splits the seeds over the cores.
    A single-device computation is unchanged. Sets ``jax_num_cpu_devices`` to
    ``num_devices`` (default: ``cpu_cores()``) and returns it; returns ``None`` and
    changes nothing when the user already chose (``JAX_NUM_CPU_DEVICES``,
    ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``, or the config) or when
    JAX's backends are already initialised. Call it before any JAX computation.
    """
    n = cpu_cores() if num_devices is None else num_devices
    if n < 1:
        raise ValueError(f"num_devices must be positive, got {n}")
    chosen = jax.config.jax_num_cpu_devices != -1
    if chosen or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backends already initialised: too late to add devices
        return None
    return n


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
    """A 1-D mesh named ``"batch"`` over ``batch_devices(batch_size, devices)``."""
    devices = list(devices if devices is not None else jax.devices())
    return Mesh(np.asarray(batch_devices(batch_size, devices)), ("batch",))


def batch_devices(batch_size: int, devices: list) -> list:
    """The most of ``devices`` (in order) whose number divides ``batch_size``.

    Devices of several processes (``--distributed``): the same number from each process,
    so that every process holds part of the batch; on 2 processes x 2 devices a batch of
    4 takes all four devices, as one process with 4 devices would.

    Raises:
      ValueError: the batch is not a multiple of the number of processes.
    """
    hosts: dict[int, list] = {}
    for d in devices:
        hosts.setdefault(d.process_index, []).append(d)
    if len(hosts) == 1:
        n = max(d for d in range(1, len(devices) + 1) if batch_size % d == 0)
        return devices[:n]
    per_host = min(len(h) for h in hosts.values())
    fits = [d for d in range(1, per_host + 1) if batch_size % (d * len(hosts)) == 0]
    if not fits:
        raise ValueError(
            f"a batch of {batch_size} (seeds, or settings of a sweep) cannot be split over "
            f"{len(hosts)} processes: make it a multiple of {len(hosts)}"
        )
    return [d for h in hosts.values() for d in h[: max(fits)]]


def _sharded(fn: Callable, in_axes: tuple, batch_size: int, devices: list | None) -> Callable:
    vf = jax.vmap(fn, in_axes=in_axes)
    mesh = batch_mesh(batch_size, devices)
    if mesh.size == 1:
        return jax.jit(vf)
    batched = NamedSharding(mesh, PartitionSpec("batch"))
    replicated = NamedSharding(mesh, PartitionSpec())
    in_shardings = tuple(batched if a == 0 else replicated for a in in_axes)
    return jax.jit(vf, in_shardings=in_shardings, out_shardings=batched)


def over_seeds(
    train: Train, num_seeds: int, devices: list | None = None
) -> Callable[[jax.Array, Any], tuple[Any, Any]]:
    """Jitted ``f(keys [S, 2], hparams) -> (states, metrics)`` with a leading ``[S]`` axis,
    sharded over ``devices`` (default: all; one device for an env with ``external_state``,
    whose emulator pool a sharded program would step once per device)."""
    return _sharded(train, (0, None), num_seeds, devices)


def over_hparams(
    train: Train, batch_size: int, devices: list | None = None
) -> Callable[[jax.Array, Any], tuple[Any, Any]]:
    """Jitted ``f(key, hparams [H]) -> (states, metrics)`` with a leading ``[H]`` axis.

    Hyperparameters are traced arrays, so one compilation serves the whole grid.
    """
    return _sharded(train, (None, 0), batch_size, devices)


def over_seeds_and_hparams(
    train: Train, num_seeds: int, batch_size: int, devices: list | None = None
) -> Callable:
    """Jitted ``f(keys [S, 2], hparams [H]) -> (states, metrics)`` with leading ``[H, S]``."""
    inner = jax.vmap(train, in_axes=(0, None))
    return _sharded(inner, (None, 0), batch_size, devices)


def over_grid(
    fn: Callable, num_seeds: int, batch_size: int, first_batched: bool, devices: list | None = None
) -> Callable:
    """Jitted ``f(x, hparams [H]) -> out`` with leading ``[H, S]``, one compilation.

    ``x`` is ``[S, ...]`` shared by every setting (``first_batched=False``: keys for
    ``init``) or ``[H, S, ...]`` (``first_batched=True``: run states for ``run_periods``).
    """
    del num_seeds  # the seed axis is a plain vmap; settings are sharded over devices
    inner = jax.vmap(fn, in_axes=(0, None))
    return _sharded(inner, (0 if first_batched else None, 0), batch_size, devices)


def parse_grid(items: list[str], config_cls: type, hparams_cls: type) -> dict[str, list[float]]:
    """``["lr=1e-4,1e-3", "ent_coef=0,0.01"]`` -> ``{"lr": [1e-4, 1e-3], ...}``, checked.

    Raises:
      ValueError: one line for a malformed item, an unknown or repeated key, an empty list,
        a value that is not a number, or a ``Config`` field (static: it changes shapes or
        control flow, so each value needs its own compile).
    """
    import dataclasses

    hparam_fields = [f.name for f in dataclasses.fields(hparams_cls)]
    config_fields = {f.name for f in dataclasses.fields(config_cls)}
    axes: dict[str, list[float]] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        if name in config_fields:
            raise ValueError(_config_axis_message(name, hparam_fields))
        if name not in hparam_fields:
            raise ValueError(
                f"unknown key {name!r} in --grid; hyperparameters: {', '.join(hparam_fields)}"
            )
        if name in axes:
            raise ValueError(f"--grid {name} given twice")
        texts = [t.strip() for t in text.split(",") if t.strip()]
        if not texts:
            raise ValueError(f"--grid {name}: empty list of values")
        values = []
        for t in texts:
            try:
                values.append(float(t))
            except ValueError:
                raise ValueError(f"--grid {name}={text}: {t!r} is not a number") from None
        axes[name] = values
    return check_grid(axes, config_cls, hparams_cls)


def check_grid(axes: dict[str, Any], config_cls: type, hparams_cls: type) -> dict[str, list[float]]:
    """Checks a grid ``{name: values}`` over ``hparams_cls`` fields; returns float lists.

    Raises:
      ValueError: no axes, a ``Config`` field or unknown name, an empty list, or a value
        that is not a finite number or lies outside its field's declared domain.
    """
    import dataclasses

    hparam_fields = [f.name for f in dataclasses.fields(hparams_cls)]
    config_fields = {f.name for f in dataclasses.fields(config_cls)}
    if not axes:
        raise ValueError("a sweep needs at least one --grid KEY=V1,V2,...")
    checked = {}
    for name, values in axes.items():
        if name in config_fields:
            raise ValueError(_config_axis_message(name, hparam_fields))
        if name not in hparam_fields:
            raise ValueError(
                f"unknown key {name!r} in --grid; hyperparameters: {', '.join(hparam_fields)}"
            )
        values = list(values)
        if not values:
            raise ValueError(f"--grid {name}: empty list of values")
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if not ok:
            raise ValueError(f"--grid {name}: values must be finite numbers, got {values}")
        try:  # the declared domain (finite, unless it allows inf)
            for v in values:
                check_hparam(hparams_cls, name, v)
        except ValueError as err:
            raise ValueError(f"--grid {name}: {err}") from None
        checked[name] = [float(v) for v in values]
    return checked


def _config_axis_message(name: str, hparam_fields: list[str]) -> str:
    return (
        f"--grid {name}: {name!r} is a Config field (static: shapes or control flow), "
        "so each value needs a separate compile; run one sweep per value with "
        f"--set {name}=VALUE, or grid over hyperparameters: {', '.join(hparam_fields)}"
    )


def setting_name(index: int, setting: dict[str, float]) -> str:
    """Folder name of a setting: ``03_lr=0.001_ent_coef=0.01``."""
    parts = "_".join(f"{k}={v:g}" for k, v in setting.items())
    return f"{index:02d}_{parts}"


def rank_settings(
    settings: list[dict[str, float]], final_returns: np.ndarray, reps: int = 2000
) -> list[dict[str, Any]]:
    """Per setting the final-return IQM over seeds with a 95% bootstrap CI, best first.

    ``final_returns``: ``[H, S]``. Each row has ``rank`` (1 = best IQM, ties broken by the
    mean), ``index`` (the
    setting's position in the grid), ``hparams``, ``iqm``, ``ci_low``, ``ci_high``,
    ``mean`` and ``final_returns``.
    """
    from jaxrl import report

    final_returns = np.asarray(final_returns, np.float64)
    rows = []
    for i, (setting, scores) in enumerate(zip(settings, final_returns, strict=True)):
        point, low, high = report.stratified_bootstrap_ci([scores], report.iqm, reps=reps)
        rows.append(
            {
                "index": i,
                "hparams": dict(setting),
                "iqm": point,
                "ci_low": low,
                "ci_high": high,
                "mean": float(scores.mean()),
                "final_returns": [float(x) for x in scores],
            }
        )
    rows.sort(key=lambda r: (-r["iqm"], -r["mean"], r["index"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def sweep_markdown(title: str, rows: list[dict[str, Any]]) -> str:
    """A ranked markdown table of ``rank_settings`` rows."""
    names = list(rows[0]["hparams"]) if rows else []
    head = ["rank", *names, "final return IQM", "95% CI", "mean", "seeds"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            str(r["rank"]),
            *(f"{r['hparams'][k]:g}" for k in names),
            f"{r['iqm']:.1f}",
            f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
            f"{r['mean']:.1f}",
            str(len(r["final_returns"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_sweep(path: Any, title: str, rows: list[dict[str, Any]]) -> None:
    """Horizontal bars: each setting's IQM with its 95% CI, best at the top."""
    from jaxrl import logging as jlog

    labels = [", ".join(f"{k}={v:g}" for k, v in r["hparams"].items()) for r in rows]
    iqm = np.array([r["iqm"] for r in rows])
    low = [r["iqm"] - r["ci_low"] for r in rows]
    err = np.array([low, [r["ci_high"] - r["iqm"] for r in rows]])
    fig, ax = jlog.new_figure(figsize=(7, 0.45 * len(rows) + 1.5), dpi=100)
    y = np.arange(len(rows))[::-1]
    ax.barh(y, iqm, xerr=err, color="C0", alpha=0.8, capsize=3)
    ax.set_yticks(y, labels)
    ax.set_xlabel("final evaluation return (IQM over seeds, 95% bootstrap CI)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    jlog.save_figure(fig, path)
