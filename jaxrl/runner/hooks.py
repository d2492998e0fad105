"""What an entry point composes around the engine: run transforms (PBT's population),
the absolute evaluation protocol, and the evaluation hooks a spec declares."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxrl import agents, loops
from jaxrl.loops import AlgoSpec
from jaxrl.runner.engine import to_host
from jaxrl.runner.options import Job
from jaxrl.transforms import best

ABSOLUTE_FACTOR = 10


@dataclasses.dataclass(frozen=True)
class Transform:
    """A wrapper of the run: ``wrap(trainer, hparams) -> trainer`` (e.g. ``run_pbt``'s
    population, ``runs_per_seed`` runs per seed); ``meta`` describes it in checkpoints
    and ``summary.json``."""

    wrap: Callable[[Any, Any], Any]
    meta: dict[str, Any]
    runs_per_seed: int = 1


def with_protocol(trainer: Any, eval_protocol: str, run_meta: dict[str, Any]) -> Any:
    """The trainer the protocol needs (``absolute``: best-evaluation tracking), noting
    the protocol in ``run_meta``."""
    if eval_protocol != "absolute":
        return trainer
    run_meta["eval_protocol"] = eval_protocol
    return best.with_best(trainer)


def absolute_fn(trainer: Any, num_eval_envs: int) -> Callable:
    """``fn(state, hp) -> (mean, std)`` of the best evaluation's agent, 10x the episodes."""

    def fn(state: Any, hp: Any) -> tuple[jax.Array, jax.Array]:
        return best.absolute_return(trainer, state, hp, ABSOLUTE_FACTOR * num_eval_envs)

    return fn


def absolute_fields(mean: np.ndarray, std: np.ndarray, num_eval_envs: int) -> dict[str, Any]:
    """``summary.json`` fields of the absolute protocol from per-seed ``mean``/``std``."""
    return {
        "eval_protocol": "absolute",
        "absolute_return": float(np.mean(mean)),
        "absolute_returns": [float(x) for x in np.ravel(mean)],
        "absolute_return_stds": [float(x) for x in np.ravel(std)],
        "absolute_episodes": ABSOLUTE_FACTOR * num_eval_envs,
    }


def time_evaluation(
    trainer: Any, batched: Callable[[Callable], Callable], state: Any, hp: Any, num_envs: int
) -> tuple[float, float] | None:
    """``(seconds of one evaluation, seconds spent measuring it)`` of the final agents in
    ``state`` (a run's ``RunState``, batched like the run), or ``None`` for a trainer
    without an evaluation routine (a wrapped one, e.g. PBT's).

    The loop's own evaluation (``trainer.evaluate``, ``num_envs`` episodes) is compiled on
    its own (``batched(fn)`` vmaps and jits ``fn(state, hp)`` as the run's program was)
    and timed once, so the training program is not compiled twice; the measuring
    seconds include that compile.
    """
    if trainer.evaluate is None:
        return None

    def evaluate(state: Any, hp: Any) -> tuple[jax.Array, jax.Array]:
        key = jax.random.fold_in(state.period_keys[-1], 2)
        return trainer.evaluate(state.carry, hp, key, num_envs)

    start = time.perf_counter()
    compiled = batched(evaluate).lower(state, hp).compile()
    timed = time.perf_counter()
    jax.block_until_ready(compiled(state, hp))
    end = time.perf_counter()
    return end - timed, end - start


def hook_fields(spec: AlgoSpec, given: loops.HookInput) -> dict[str, Any]:
    """The summary fields of every evaluation hook ``spec`` declares, in order."""
    fields: dict[str, Any] = {}
    for hook in spec.eval_hooks:
        fields.update(hook.run(given))
    return fields


def run_hooks(job: Job, schedule: Any, state: Any) -> dict[str, Any]:
    """``hook_fields`` of a compiled run's agents: the best evaluation's where ``state``
    keeps them (a ``best.BestState``, the absolute protocol), else the final ones."""
    agent = job.spec.make_agent(job.cfg, job.env, job.hp, schedule)
    kept = isinstance(state, best.BestState)
    agent_state, which = (state.best, "best") if kept else (state.agent_state, "final")
    given = loops.HookInput(
        agent, agent_state, job.env, job.env_name, job.cfg, job.opts.seed, to_host, which
    )
    return hook_fields(job.spec, given)


def hook_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The table lines of the evaluation hooks of the summary's algorithm."""
    name = summary.get("algo")
    if name not in agents.names():
        return []
    return [row for hook in agents.get(name).eval_hooks for row in hook.rows(summary)]
