"""The Frequency-Averaged Score (Patel & Siegelmann 2024) as an evaluation hook.

A spec declares ``eval_hooks=(fas.HOOK,)`` and mixes ``fas.Config`` into its ``Config``
(SRL does); the runner then evaluates the final policies at each decision interval in
``config.fas_intervals`` (``action_sequences.evaluate_intervals``) and adds ``fas``,
``fas_per_seed``, ``fas_returns`` ``[seeds][intervals]``, ``fas_intervals`` and
``fas_range`` to ``summary.json``. The runner knows only ``EvalHook``, not FAS.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from jaxrl import report
from jaxrl.loops import EvalHook, HookInput
from jaxrl.transforms.action_sequences import evaluate_intervals


@dataclasses.dataclass(frozen=True)
class Config:
    """The FAS settings a ``Config`` mixes in.

    Attributes:
      fas_intervals: decision intervals of the Frequency-Averaged Score in summary.json
        (``()``: no FAS).
    """

    fas_intervals: tuple[int, ...] = report.FAS_INTERVALS


def check(config: Any) -> None:
    """Raises ``ValueError`` unless every interval is a positive int."""
    bad = [k for k in config.fas_intervals if not isinstance(k, int) or k < 1]
    if bad:
        raise ValueError(f"fas_intervals must be positive ints, got {config.fas_intervals}")


def run(given: HookInput) -> dict[str, Any]:
    """The FAS of the final policies (leading ``[seeds]``), normalised by
    ``report.fas_range`` when the env has one; ``{}`` without intervals."""
    intervals = tuple(int(k) for k in given.config.fas_intervals)
    if not intervals:
        return {}
    seeds = jax.tree.leaves(given.agent_states)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(given.seed), 0xFA5), seeds)
    num_envs = given.config.num_eval_envs

    def one(state, key):
        return evaluate_intervals(given.agent, state, given.env, key, num_envs, intervals)

    returns = given.to_host(jax.jit(jax.vmap(one))(given.agent_states, keys))
    bounds = report.fas_range(given.env_name)
    per_seed = report.frequency_averaged_score(returns, *(bounds or (None, None)))
    return {
        "fas": float(per_seed.mean()),
        "fas_per_seed": [float(x) for x in per_seed],
        "fas_returns": [[float(x) for x in row] for row in returns],
        "fas_intervals": list(intervals),
        "fas_range": list(bounds) if bounds else None,
    }


def rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The FAS line of ``jaxrl train``'s table."""
    if "fas" not in summary:
        return []
    return [("FAS", f"{summary['fas']:.3f} (decision intervals {summary['fas_intervals']})")]


HOOK = EvalHook("fas", run, rows, check)
