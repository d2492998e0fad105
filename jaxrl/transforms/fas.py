"""The Frequency-Averaged Score (Patel & Siegelmann, ICLR 2025) as an evaluation hook.

A spec declares ``eval_hooks=(fas.HOOK,)`` and mixes ``fas.Config`` into its ``Config``
(SRL does); the runner then evaluates the policies it hands the hook (the best
evaluation's agent where the run keeps it, ``--eval-protocol absolute``, as the paper
evaluates its best checkpoint; else the final one) at each decision interval in
``config.fas_intervals`` (``action_sequences.evaluate_intervals``) and adds ``fas``
(``report.frequency_averaged_score``), ``fas_per_seed``, ``fas_returns``
``[seeds][intervals]``, ``fas_intervals``, ``fas_norm`` (``[offset, max_reward]``, or
``None``: the raw area) and ``fas_agent`` (``"best"`` or ``"final"``) to
``summary.json``. The runner knows only ``EvalHook``, not FAS.
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
      fas_intervals: decision intervals of the Frequency-Averaged Score in summary.json,
        increasing (``()``: no FAS; default the paper's 1, 2, 4, ..., 30).
    """

    fas_intervals: tuple[int, ...] = report.FAS_INTERVALS


def check(config: Any) -> None:
    """Raises ``ValueError`` unless the intervals are none, or >= 2 increasing positive ints."""
    ks = config.fas_intervals
    bad = [k for k in ks if not isinstance(k, int) or isinstance(k, bool) or k < 1]
    if bad or len(ks) == 1 or any(b <= a for a, b in zip(ks, ks[1:], strict=False)):
        raise ValueError(f"fas_intervals must be () or >= 2 increasing positive ints, got {ks}")


def run(given: HookInput) -> dict[str, Any]:
    """The FAS of the policies in ``given`` (leading ``[seeds]``), normalised by
    ``report.fas_norm`` when the env has one; ``{}`` without intervals."""
    intervals = tuple(int(k) for k in given.config.fas_intervals)
    if not intervals:
        return {}
    seeds = jax.tree.leaves(given.agent_states)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(given.seed), 0xFA5), seeds)
    num_envs = given.config.num_eval_envs

    def one(state, key):
        return evaluate_intervals(given.agent, state, given.env, key, num_envs, intervals)

    returns = given.to_host(jax.jit(jax.vmap(one))(given.agent_states, keys))
    norm = report.fas_norm(given.env_name)
    per_seed = report.frequency_averaged_score(returns, intervals, *(norm or (0.0, 1.0)))
    return {
        "fas": float(per_seed.mean()),
        "fas_per_seed": [float(x) for x in per_seed],
        "fas_returns": [[float(x) for x in row] for row in returns],
        "fas_intervals": list(intervals),
        "fas_norm": list(norm) if norm else None,
        "fas_agent": given.which,
    }


def rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The FAS line of ``jaxrl train``'s table."""
    if "fas" not in summary:
        return []
    ks = summary["fas_intervals"]
    where = summary.get("fas_agent", "final")
    return [("FAS", f"{summary['fas']:.3f} ({where} agent; decision intervals {ks[0]}..{ks[-1]})")]


HOOK = EvalHook("fas", run, rows, check)
