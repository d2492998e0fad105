"""The terminal: the progress bar and the tables ``jaxrl train | sweep | pbt | list``
print."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxrl import agents
from jaxrl import compile_cache as xla_cache
from jaxrl.runner.hooks import hook_rows


class ProgressBar:
    """A tqdm bar fed from ``jax.debug.callback`` (host thread), throttled by tqdm."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "training (per seed)"):
        self._bar = None
        self._total = total
        self._enabled = enabled
        self._desc = desc
        self._lock = threading.Lock()

    def __call__(self, env_steps: Any) -> None:
        if not self._enabled:
            return
        n = int(np.max(np.asarray(env_steps)))
        with self._lock:
            if self._bar is None:  # created at the first call, so compile time is not counted
                from tqdm.auto import tqdm

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
