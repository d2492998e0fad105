"""The terminal: the progress bar and the tables ``jaxrl train | sweep | pbt | list``
print."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxrl import agents
from jaxrl import compile_cache as xla_cache
from jaxrl.runner.hooks import hook_rows


class ProgressBar:
    """A tqdm bar fed from ``jax.debug.callback`` (host thread), throttled by tqdm.

    Called with the env steps done (``progress``); ``evaluation`` (the loops'
    ``eval_progress``) times each evaluation, and the bar shows the seconds spent
    evaluating so far and their share of the time since the bar appeared.
    """

    def __init__(self, total: int, enabled: bool = True, desc: str = "training (per seed)"):
        self._bar = None
        self._total = total
        self._enabled = enabled
        self._desc = desc
        self._lock = threading.Lock()
        self._t0 = 0.0
        #: env steps of a period -> [first start, last end] of its evaluation (a vmapped
        #: run calls once per seed).
        self._evals: dict[int, list[float]] = {}

    def __call__(self, env_steps: Any) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._advance(int(np.max(np.asarray(env_steps))))

    def _advance(self, n: int) -> None:
        if self._bar is None:  # created at the first call, so compile time is not counted
            from tqdm.auto import tqdm

            self._t0 = time.perf_counter()
            self._bar = tqdm(
                total=self._total,
                unit="step",
                unit_scale=True,
                mininterval=0.5,
                dynamic_ncols=True,
                desc=self._desc,
            )
        if n > self._bar.n:
            self._bar.update(n - self._bar.n)

    def hooks(self) -> tuple[Any, Any]:
        """``(progress, eval_progress)`` for a loop: the bar's callbacks, or ``(None, None)``
        when disabled (no host callback is compiled in: JAX never caches a program with
        one)."""
        return (self, self.evaluation) if self._enabled else (None, None)

    @property
    def eval_seconds(self) -> float:
        """Seconds between the first start and the last end of each evaluation so far."""
        with self._lock:
            return sum(max(0.0, end - start) for start, end in self._evals.values())

    def evaluation(self, env_steps: Any, *_: Any, finished: bool) -> None:
        """The evaluation after ``env_steps`` started (``finished=False``) or ended."""
        if not self._enabled:
            return
        now = time.perf_counter()
        n = int(np.max(np.asarray(env_steps)))
        with self._lock:
            self._advance(n)
            span = self._evals.setdefault(n, [now, now])
            text = "evaluating"
            if finished:
                span[1] = max(span[1], now)
                spent = sum(max(0.0, end - start) for start, end in self._evals.values())
                text = f"eval {spent:.1f} s ({spent / max(now - self._t0, 1e-9):.0%})"
            # throttled like the bar's own updates
            refresh = time.time() - self._bar.last_print_t >= self._bar.mininterval
            self._bar.set_postfix_str(text, refresh=refresh)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def compile_line(summary: dict[str, Any]) -> str:
    """``compile_seconds`` and, when recorded, its tracing and XLA parts."""
    line = f"{summary['compile_seconds']:.1f} s"
    if "trace_seconds" in summary:
        line += (
            f" (tracing and lowering {summary['trace_seconds']:.1f} s, "
            f"XLA {summary['backend_compile_seconds']:.1f} s)"
        )
    return line


def eval_line(summary: dict[str, Any]) -> str:
    """The evaluation's share of the run and how its episodes were bounded."""
    parts = []
    if summary.get("eval_seconds") is not None:
        parts.append(
            f"~{summary['eval_seconds']:.1f} s of the run ({summary['eval_fraction']:.0%})"
        )
    limit = summary.get("eval_episode_limit")
    episodes = f"{summary.get('eval_episodes', '?')} episodes"
    if limit is not None:
        episodes += f" of <= {limit:,} steps"
        if summary.get("eval_episodes_capped"):
            episodes += " (capped: eval_max_steps)"
    parts.append(episodes)
    return ", ".join(parts)


def summary_table(result: Any) -> str:
    """The few lines ``jaxrl train`` prints at the end of a run (a ``RunResult``)."""
    s = result.summary
    rows = [
        ("algo / env", f"{s['algo']} / {s['env']}"),
        ("seeds x steps", f"{s['seeds']} x {s['steps']:,}"),
        (
            "final return",
            f"{s['final_return_mean']:.1f} +- {s['final_return_std']:.1f} "
            f"(min {s['final_return_min']:.1f}, max {s['final_return_max']:.1f})",
        ),
        *(
            [("absolute return", f"{s['absolute_return']:.1f} ({s['absolute_episodes']} episodes)")]
            if "absolute_return" in s
            else []
        ),
        *hook_rows(s),
        ("compile", compile_line(s)),
        *(
            [("compile cache", xla_cache.describe(s["compile_cache"]))]
            if "compile_cache" in s
            else []
        ),
        (
            "run",
            f"{s['run_seconds']:.1f} s, {s['steps_per_second']:,.0f} env steps/s (all seeds)",
        ),
        ("evaluation", eval_line(s)),
        ("output", str(result.out)),
    ]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    return "\n".join([line, *(f"{k:<{width}} | {v}" for k, v in rows), line])


def sweep_table(result: Any, top: int = 10) -> str:
    """The ranked lines ``jaxrl sweep`` prints at the end."""
    s = result.summary
    lines = [
        f"{s['num_settings']} settings x {s['seeds']} seeds x {s['steps']:,} steps: "
        f"{s['compiles']} XLA compile(s), {s['compile_seconds']:.1f} s compiling, "
        f"{s['run_seconds']:.1f} s running",
        f"compile cache: {xla_cache.describe(s['compile_cache'])}",
        f"evaluation: {eval_line(s)}",
    ]
    for r in s["settings"][:top]:
        label = ", ".join(f"{k}={v:g}" for k, v in r["hparams"].items())
        lines.append(
            f"{r['rank']:>3}. {label:<40} IQM {r['iqm']:9.1f}  "
            f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        )
    lines.append(f"wrote {result.out / 'sweep.json'}, sweep.md, sweep.png")
    return "\n".join(lines)


def describe(names: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
    """``(name, action kinds, default env, summary)`` for each registered algorithm."""
    rows = []
    for name in names or agents.names():
        spec = agents.get(name)
        rows.append((name, ",".join(spec.action_kinds), spec.default_env, spec.summary))
    return rows
