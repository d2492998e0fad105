"""``run_pbt``: ``run`` of a PBT population per seed, PBT composed as a ``Transform``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxrl import agents
from jaxrl import logging as jlog
from jaxrl.loops import AlgoSpec
from jaxrl.runner.entry import train
from jaxrl.runner.hooks import Transform
from jaxrl.runner.options import RunOptions, RunResult
from jaxrl.runner.outputs import plot_population


def run_pbt(
    algo: str | AlgoSpec | RunOptions,
    env: str | None = None,
    *,
    population: int = 8,
    perturb: Sequence[str] = ("lr",),
    ready: int = 2,
    ranges: dict[str, tuple[float, float]] | None = None,
    resample_prob: float = 0.0,
    **fields: Any,
) -> RunResult:
    """``run`` of a PBT population (``jaxrl.transforms.pbt``) per seed.

    Takes ``run``'s ``fields`` besides the PBT settings. Writes ``run``'s files
    (``eval_return`` is the best member's), with ``summary.json`` also holding the PBT
    settings and each seed's best final member's hyperparameters, plus ``pbt.png``:
    each perturbed hyperparameter's trajectory per member (seed 0).

    Raises:
      ValueError: bad input, including bad PBT settings.
    """
    from jaxrl.transforms import pbt

    config = pbt.PBTConfig(
        population=population,
        perturb=tuple(perturb),
        ready=ready,
        ranges=dict(ranges or {}),
        resample_prob=resample_prob,
    )
    opts = RunOptions.of(algo, env, **fields)
    spec = agents.get(opts.algo) if isinstance(opts.algo, str) else opts.algo
    base = spec.default_hparams(**(opts.hparams or {}))
    pbt.resolve_ranges(config, base)  # fail before any compile

    def wrap(trainer: Any, hp: Any) -> Any:
        return pbt.with_pbt(trainer, hp, config)

    result = train(opts, Transform(wrap, {"pbt": config.describe()}, runs_per_seed=population))
    if result.stopped_early:
        return result
    m = result.metrics
    last = np.nan_to_num(m["member_eval_return"][:, -1], nan=-np.inf)  # [S, P]
    best = np.argmax(last, axis=1)
    result.summary["final_best_member_hparams"] = [
        {n: float(m[f"member_{n}"][s, -1, best[s]]) for n in perturb} for s in range(len(best))
    ]
    result.summary["member_final_returns"] = m["member_eval_return"][:, -1].tolist()
    result.summary["total_env_steps_per_seed"] = result.summary["steps"] * population
    if jax.process_index() == 0:
        jlog.write_json(result.out / "summary.json", result.summary)
        plot_population(result.out / "pbt.png", m, list(perturb))
    return result
