"""Timing utilities: compile apart from steady state, alternating runs, paired ratios."""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
from gymnax.wrappers.compat import LegacyStepAPIWrapper


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Calls ``fn()``, blocks on its result, returns ``(result, seconds)``."""
    t0 = time.perf_counter()
    out = fn()
    if isinstance(out, jax.Array | tuple | dict | list):
        out = jax.block_until_ready(out)
    return out, time.perf_counter() - t0


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
