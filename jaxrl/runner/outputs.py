"""What a run writes: ``summary.json`` fields, the run folder (metrics JSONL/CSV, summary,
curve, TensorBoard), a sweep's top-level files, and PBT's population plot."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl import compile_cache as xla_cache
from jaxrl import logging as jlog
from jaxrl import loops, sweep
from jaxrl.runner.options import Job


@dataclasses.dataclass(frozen=True)
class Timing:
    """A run's speed for its summary: env steps per second, compile and run seconds, the
    period resumed from (``None`` when not resumed) and the up-front compiles.

    ``eval_seconds``: the part of ``run_seconds`` spent evaluating, estimated as the
    periods run times one timed evaluation of the final agents (``hooks.time_evaluation``);
    ``eval_timing_seconds``: what measuring it cost (its compile included); both ``None``
    when not measured.
    """

    steps_per_second: float
    compile_seconds: float
    run_seconds: float
    resumed_from: int | None = None
    compiles: xla_cache.CompileStats | None = None
    eval_seconds: float | None = None
    eval_timing_seconds: float | None = None

    def eval_fields(self) -> dict[str, Any]:
        """``eval_seconds``, ``eval_fraction`` (of ``run_seconds``), ``eval_timing_seconds``."""
        fraction = None
        if self.eval_seconds is not None:
            fraction = self.eval_seconds / max(self.run_seconds, 1e-9)
        return {
            "eval_seconds": self.eval_seconds,
            "eval_fraction": fraction,
            "eval_timing_seconds": self.eval_timing_seconds,
        }


def eval_bound(job: Job) -> dict[str, Any]:
    """How a run's evaluations were bounded, for its summary: ``eval_episodes`` per
    evaluation, ``eval_episode_limit`` (steps an episode may last: the env's limit capped
    at ``eval_max_steps``) and ``eval_episodes_capped`` (whether that cap cut the env's
    limit)."""
    cap = getattr(job.cfg, "eval_max_steps", None)
    env_limit = job.env.max_episode_steps
    limit = env_limit if env_limit is None else loops.episode_limit(job.env, cap)
    return {
        "eval_episodes": job.cfg.num_eval_envs,
        "eval_episode_limit": limit,
        "eval_episodes_capped": env_limit is not None and limit < env_limit,
    }


def make_summary(
    job: Job,
    total_steps: int,
    metrics: dict[str, np.ndarray],
    timing: Timing,
    hparams_dict: dict[str, float] | None = None,
) -> dict[str, Any]:
    """``summary.json`` of one run from its host ``metrics`` (leading ``[seeds, evals]``);
    ``hparams_dict`` replaces the job's (a sweep setting's)."""
    final = metrics["eval_return"][:, -1]
    finite = metrics["finite"]
    first_bad = None
    if not finite.all():
        first_bad = int(metrics["env_steps"][0][np.argmin(finite.all(axis=0))])
    compiles = timing.compiles
    return {
        **job.head(total_steps),
        "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()),
        "final_return_min": float(final.min()),
        "final_return_max": float(final.max()),
        "final_returns": [float(x) for x in final],
        "steps_per_second": timing.steps_per_second,
        "compile_seconds": timing.compile_seconds,
        **(compiles.fields() if compiles is not None else {}),
        "run_seconds": timing.run_seconds,
        **timing.eval_fields(),
        **eval_bound(job),
        "finite": first_bad is None,
        "first_nonfinite_step": first_bad,
        "resumed_from_period": timing.resumed_from,
        "config": job.config_dict,
        "hparams": job.hparams_dict if hparams_dict is None else hparams_dict,
        "jax_backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "num_processes": jax.process_count(),
    }


def write_run(
    out: Path, summary: dict, metrics: dict[str, np.ndarray], title: str, tensorboard: bool
) -> None:
    """The run folder's files: metrics.jsonl/.csv, summary.json, curve.png, tb/."""
    rows = jlog.metric_rows(metrics)
    jlog.write_jsonl(out / "metrics.jsonl", rows)
    jlog.write_csv(out / "metrics.csv", rows)
    jlog.write_json(out / "summary.json", summary)
    jlog.plot_curve(out / "curve.png", metrics["env_steps"][0], metrics["eval_return"], title=title)
    if tensorboard:
        jlog.write_tensorboard(out / "tb", metrics)


def write_sweep(out: Path, title: str, summary: dict[str, Any]) -> None:
    """A sweep folder's top-level files: sweep.json, sweep.md, sweep.png."""
    rows = summary["settings"]
    jlog.write_json(out / "sweep.json", summary)
    jlog.atomic_write(out / "sweep.md", sweep.sweep_markdown(title, rows))
    sweep.plot_sweep(out / "sweep.png", title, rows)


def plot_population(path: Path, metrics: dict[str, np.ndarray], names: list[str]) -> None:
    """One panel per perturbed hyperparameter (and the members' returns): a line per
    member of seed 0 over env steps, from ``member_*`` metrics ``[S, E, P]``."""
    panels = [*names, "eval_return"]
    fig, axes = jlog.new_figure(1, len(panels), figsize=(4.5 * len(panels), 3.6), dpi=100)
    steps = metrics["env_steps"][0]
    for ax, name in zip(np.atleast_1d(axes), panels, strict=True):
        values = np.asarray(metrics[f"member_{name}"][0], np.float64)  # [E, P]
        for j in range(values.shape[1]):
            ax.step(steps, values[:, j], where="post", lw=1.2, alpha=0.8, label=f"member {j}")
        if name != "eval_return" and (values > 0).all():
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("env steps (per member)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="best")
    fig.suptitle("PBT population (seed 0): hyperparameters in use and evaluation returns")
    fig.tight_layout()
    jlog.save_figure(fig, path)
