"""Timing utilities: compile apart from steady state, alternating runs, paired ratios."""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from gymnax.wrappers.compat import LegacyStepAPIWrapper

from jaxrl import compile_cache


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Calls ``fn()``, blocks on its result, returns ``(result, seconds)``."""
    t0 = time.perf_counter()
    out = fn()
    if isinstance(out, jax.Array | tuple | dict | list):
        out = jax.block_until_ready(out)
    return out, time.perf_counter() - t0


#: Distributions whose versions every bench.json records: jax and each contender's library.
CONTENDER_DISTS = ("gymnax", "rejax", "sbx-rl", "stable-baselines3", "torch", "brax", "mujoco-mjx")


def versions(*extra: str) -> dict[str, str]:
    """Installed versions of jax, jaxlib, every contender and ``extra`` distributions
    (``missing`` when absent)."""
    from importlib import metadata

    out = {}
    for dist in ("jax", "jaxlib", *CONTENDER_DISTS, *extra):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def alternate(
    runners: dict[str, Callable[[], Any]], repeats: int, warmup: int = 0
) -> dict[str, list[tuple]]:
    """Runs every runner in turn (A B A B ...): ``{name: [(out, s)]}`` for ``repeats`` rounds.

    ``warmup`` rounds run first, in the same order, and are not returned.
    """
    results: dict[str, list[tuple]] = {name: [] for name in runners}
    for i in range(warmup + repeats):
        for name, fn in runners.items():
            out = timed(fn)
            if i >= warmup:
                results[name].append(out)
    return results


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over rounds of ``ours[i] / theirs[i]`` (pairs from the same round)."""
    return median([a / b for a, b in zip(ours, theirs, strict=False)])


def missing(err: BaseException) -> dict[str, str]:
    """The record of a contender that could not be imported or run."""
    return {"status": "missing", "error": f"{type(err).__name__}: {err}"}


def try_import(name: str) -> tuple[Any, dict | None]:
    """``(module, None)``, or ``(None, missing record)`` when ``name`` cannot be imported."""
    try:
        return importlib.import_module(name), None
    except Exception as err:  # noqa: BLE001 - any import failure means "missing"
        return None, missing(err)


class GuardedLegacyStep(LegacyStepAPIWrapper):
    """gymnax's ``LegacyStepAPIWrapper`` (old 5-value ``step``, as rejax 0.1.3 calls it).

    The original forwards every attribute through ``__getattr__``; ``copy.deepcopy``
    (which rejax calls) builds an instance with no ``_env`` and recurses forever.
    This subclass refuses dunder names and a missing ``_env`` instead.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)


def rejax_brax_env(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """``(env, params)``: rejax's own Brax env ``name`` (``rejax.compat.create("brax/<name>")``).

    rejax 0.1.3 wraps ``brax.envs.create`` (Brax's episode limit and auto-reset) in its
    ``Brax2GymnaxEnv``. gymnax 1.0's ``step`` adds a time limit of its own that reads
    ``state.time``, which Brax states lack; this subclass reports no gymnax truncation,
    which is the pre-1.0 behaviour rejax was written for (Brax's ``done`` already holds
    the episode limit). The result is wrapped in ``GuardedLegacyStep`` (5-value ``step``).
    ``kwargs`` go to ``brax.envs.create`` (e.g. ``backend="mjx"``).
    """
    import jax.numpy as jnp
    from rejax.compat import create
    from rejax.compat.brax2gymnax import Brax2GymnaxEnv

    class BraxNoGymnaxLimit(Brax2GymnaxEnv):
        def is_truncated(self, state: Any, params: Any) -> jax.Array:
            return jnp.zeros((), jnp.bool_)

    env, params = create(f"brax/{name}", **kwargs)
    return GuardedLegacyStep(BraxNoGymnaxLimit(env.env)), params


def restore_device_put_replicated() -> str:
    """Gives jax back ``jax.device_put_replicated`` for Brax's trainers; says what it did.

    Brax 0.14.2's ``ppo.train`` / ``sac.train`` call it; jax 0.10 dropped it from the
    public API but keeps the implementation in ``jax._src.api``. Where even that is
    gone, a small equivalent replicates onto the given devices. jaxrl never uses it.
    """
    if hasattr(jax, "device_put_replicated"):
        return "bench: jax.device_put_replicated present; nothing restored"
    try:
        from jax._src.api import device_put_replicated

        source = "jax._src.api.device_put_replicated"
    except ImportError:
        device_put_replicated, source = _replicate, "a harness shim (benchmarks.harness)"
    jax.device_put_replicated = device_put_replicated
    return f"bench: restored jax.device_put_replicated from {source} for Brax's trainers"


def _replicate(x: Any, devices: list) -> Any:
    """``x`` stacked along a new leading axis, one slice on each of ``devices``."""
    mesh = jax.sharding.Mesh(np.array(devices), ("devices",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices"))
    return jax.tree.map(
        lambda v: jax.device_put(np.stack([np.asarray(v)] * len(devices)), sharding), x
    )


#: Counts XLA compiles, and their seconds (tracing apart), while open.
CompileLog = compile_cache.CompileStats


def single_torch_thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` run with ``torch.set_num_threads(1)``, restoring the count afterwards.

    torch's default (one thread per core) thrashes on a small shared CPU; one thread
    is the fastest setting there, so SB3/SBX timings do not flatter jaxrl.
    """

    def run() -> Any:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(threads)

    return run
