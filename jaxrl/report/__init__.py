"""Reporting across seeds: learning curves with bootstrap bands and aggregate metrics.

Aggregate metrics follow Agarwal et al. (2021), "Deep RL at the Edge of the
Statistical Precipice": interquartile mean (IQM), mean, median and optimality gap of
normalised final scores, each with a stratified bootstrap confidence interval (seeds
resampled with replacement within each task), and performance profiles (the fraction
of runs whose score exceeds ``tau``). Every statistic takes scores on its last axis,
so a whole ``[reps, N]`` batch of bootstrap resamples is one NumPy call.

``jaxrl plot RUN_DIR ...`` reads folders written by ``jaxrl train`` (``summary.json``
for algo and env, ``metrics.jsonl`` for one row per seed and evaluation point).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jaxrl.logging import atomic_write, new_figure, save_figure

#: Known (random, best) return ranges for normalising scores; other envs use the
#: range of every evaluation return observed for them in the runs being reported.
REFERENCE_RANGES: dict[str, tuple[float, float]] = {
    "cartpole": (0.0, 500.0),
    "gymnax/CartPole-v1": (0.0, 500.0),
}


#: The Frequency-Averaged Score's decision intervals (env steps between decisions) as
#: SRL's official evaluation runs them (``scripts/eval_sac.py``): 1, then 2 to 30 by 2
#: (16 points), each over 10 episodes.
FAS_INTERVALS: tuple[int, ...] = (1, *range(2, 32, 2))
#: The span the area under ``R_k`` is divided by (``notebooks/table2.ipynb``: the
#: largest area is ``max_reward * 30``, so a perfect policy scores ``29 / 30 = 0.967``).
FAS_SPAN = 30.0
#: ``(offset, max_reward)`` per env: the area of ``R_k + offset`` is divided by
#: ``max_reward * FAS_SPAN``. Pendulum and the Brax inverted pendulums take
#: ``table2.ipynb``'s values for Pendulum-v1 (shifted by 1550), InvertedPendulum-v2 and
#: InvertedDoublePendulum-v2 (``MAX_REWARDS``); the DM Control swing-ups (Playground)
#: are not in the paper: their episode return is at most 1000.
FAS_NORMS: dict[str, tuple[float, float]] = {
    "pendulum": (1550.0, 1350.0),
    "brax/inverted_pendulum": (0.0, 1000.0),
    "brax/inverted_double_pendulum": (0.0, 9400.0),
    "playground/PendulumSwingup": (0.0, 1000.0),
    "playground/CartpoleSwingup": (0.0, 1000.0),
}


def fas_norm(env: str) -> tuple[float, float] | None:
    """The ``(offset, max_reward)`` of ``env``'s FAS, or ``None`` when none is known."""
    return FAS_NORMS.get(env)


def frequency_averaged_score(
    returns: np.ndarray,
    intervals: Sequence[int] = FAS_INTERVALS,
    offset: float = 0.0,
    max_reward: float = 1.0,
    span: float = FAS_SPAN,
) -> np.ndarray:
    """The Frequency-Averaged Score of SRL's paper (Patel & Siegelmann, ICLR 2025):
    ``trapz(R_k + offset, k) / (max_reward * span)``, the trapezoid area under the
    return against the decision interval ``k`` (``notebooks/table2.ipynb``).

    ``returns [..., K]``: the mean return at each interval of ``intervals [K]``
    (increasing). Without a norm (``offset`` 0, ``max_reward`` 1) it is the raw area
    over ``span``. Returns ``[...]``.

    Raises:
      ValueError: for fewer than 2 intervals, ``K`` unlike ``len(intervals)``, intervals
        not increasing, or a non-positive ``max_reward`` or ``span``.
    """
    r = np.asarray(returns, np.float64)
    k = np.asarray(intervals, np.float64)
    if k.ndim != 1 or len(k) < 2 or np.any(np.diff(k) <= 0):
        raise ValueError(f"FAS needs >= 2 increasing intervals, got {list(intervals)}")
    if r.ndim == 0 or r.shape[-1] != len(k):
        raise ValueError(f"FAS needs returns [..., {len(k)}] (one per interval), got {r.shape}")
    if not (max_reward > 0 and span > 0):
        raise ValueError(f"FAS needs max_reward > 0 and span > 0, got {max_reward}, {span}")
    return np.trapezoid(r + offset, k, axis=-1) / (max_reward * span)


#: The intervals of ``interval_mean_score`` (jaxrl's earlier stand-in for FAS): 1 to 16,
#: the longest action sequence SRL's paper trains (SRL-16).
INTERVAL_MEAN_INTERVALS: tuple[int, ...] = (1, 2, 4, 8, 16)
#: ``(low, high)`` returns ``interval_mean_score`` maps to 0 and 1: a uniformly random
#: policy's mean return (``jaxrl.loops.evaluate``, 32 episodes) and the best return
#: reachable (the per-step reward bound times the episode length, or for pendulum the
#: usual solved return of about -140).
INTERVAL_MEAN_RANGES: dict[str, tuple[float, float]] = {
    "pendulum": (-1277.0, -140.0),
    "brax/inverted_pendulum": (6.6, 1000.0),
    "playground/PendulumSwingup": (0.9, 1000.0),
    "playground/CartpoleSwingup": (24.9, 1000.0),
}


def interval_mean_range(env: str) -> tuple[float, float] | None:
    """The ``(low, high)`` of ``interval_mean_score`` on ``env``, or ``None``."""
    return INTERVAL_MEAN_RANGES.get(env) or REFERENCE_RANGES.get(env)


def interval_mean_score(
    returns: np.ndarray, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """jaxrl's earlier stand-in for FAS (not the paper's): the mean over decision
    intervals of the normalised return ``(R_k - low) / (high - low)``.

    ``returns [..., K]``: the return at each of ``K`` decision intervals; without a
    range (``low``, ``high`` both ``None``) the raw returns are averaged. Returns ``[...]``.

    Raises:
      ValueError: for no intervals, only one bound, or ``high <= low``.
    """
    r = np.asarray(returns, np.float64)
    if r.ndim == 0 or r.shape[-1] == 0:
        raise ValueError("interval_mean_score needs returns [..., K] with K >= 1")
    if (low is None) != (high is None):
        raise ValueError("interval_mean_score needs both low and high, or neither")
    if low is not None:
        if not high > low:
            raise ValueError(f"interval_mean_score range needs high > low, got ({low}, {high})")
        r = (r - low) / (high - low)
    return r.mean(axis=-1)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis: the mean of the middle 50% of scores.

    With ``n`` scores, ``floor(n / 4)`` are dropped from each end after sorting (as
    ``scipy.stats.trim_mean(x, 0.25)``).
    """
    x = np.sort(np.asarray(scores, np.float64), axis=-1)
    n = x.shape[-1]
    cut = int(0.25 * n)
    return x[..., cut : n - cut].mean(axis=-1)


def mean(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores, np.float64).mean(axis=-1)


def median(scores: np.ndarray) -> np.ndarray:
    return np.median(np.asarray(scores, np.float64), axis=-1)


def optimality_gap(scores: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """``mean(threshold - min(score, threshold))`` over the last axis: how far scores fall
    short of ``threshold`` (lower is better; scores above it count as reaching it)."""
    x = np.asarray(scores, np.float64)
    return np.mean(threshold - np.minimum(x, threshold), axis=-1)


def aggregate_fns(threshold: float = 1.0) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The reported aggregate metrics by name."""
    return {
        "IQM": iqm,
        "mean": mean,
        "median": median,
        "optimality gap": lambda x: optimality_gap(x, threshold),
    }


def _resample(tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> np.ndarray:
    """``[reps, N]`` stratified resamples: each task's scores drawn with replacement."""
    parts = []
    for t in tasks:
        t = np.asarray(t, np.float64)
        parts.append(t[rng.integers(0, len(t), size=(reps, len(t)))])
    return np.concatenate(parts, axis=1)


def stratified_bootstrap_ci(
    tasks: Sequence[np.ndarray],
    stat: Callable[[np.ndarray], np.ndarray],
    reps: int = 2000,
    conf: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)``: ``stat`` of all scores and its percentile bootstrap CI.

    ``tasks`` holds one 1-D array of per-seed scores per task; resamples keep each
    task's number of scores (stratified bootstrap).
    """
    point = float(stat(np.concatenate([np.ravel(t) for t in tasks])))
    values = stat(_resample(tasks, reps, np.random.default_rng(seed)))
    alpha = (1 - conf) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return point, float(low), float(high)


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of scores (last axis) strictly above each ``tau``: ``[..., len(taus)]``."""
    x = np.asarray(scores, np.float64)
    return (x[..., :, None] > np.asarray(taus)).mean(axis=-2)


def bootstrap_band(
    returns: np.ndarray, reps: int = 1000, conf: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds of ``returns [S, E]`` and a percentile bootstrap CI, each ``[E]``."""
    returns = np.asarray(returns, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(returns), size=(reps, len(returns)))
    means = returns[idx].mean(axis=1)
    alpha = (1 - conf) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=0)
    return returns.mean(axis=0), low, high


@dataclasses.dataclass(frozen=True)
class Run:
    """One ``jaxrl train`` output folder: ``returns [S, E]`` at ``env_steps [E]``."""

    path: Path
    algo: str
    env: str
    env_steps: np.ndarray
    returns: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.algo}/{self.env}"


def load_run(path: str | os.PathLike) -> Run:
    """Reads a run folder; ValueError naming the folder when it is not one."""
    path = Path(path)
    try:
        summary = json.loads((path / "summary.json").read_text())
        rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a jaxrl run folder (summary.json and metrics.jsonl): {err}"
        ) from None
    seeds = sorted({r["seed"] for r in rows})
    steps = sorted({r["env_steps"] for r in rows})
    returns = np.full((len(seeds), len(steps)), np.nan)
    for r in rows:
        returns[seeds.index(r["seed"]), steps.index(r["env_steps"])] = r["eval_return"]
    if np.isnan(returns).any():
        raise ValueError(f"{path}/metrics.jsonl: not every seed has every evaluation point")
    return Run(path, summary["algo"], summary["env"], np.asarray(steps), returns)


def method_names(runs: Sequence[Run]) -> list[str]:
    """The method each run belongs to: its algo, or ``algo (folder)`` when several runs
    share an algo and env (e.g. two settings of one algorithm)."""
    pairs = [(r.algo, r.env) for r in runs]
    return [
        r.algo if pairs.count((r.algo, r.env)) == 1 else f"{r.algo} ({r.path.name})" for r in runs
    ]


def score_ranges(runs: Sequence[Run]) -> dict[str, tuple[float, float]]:
    """Per env, the ``(low, high)`` returns that normalise to 0 and 1."""
    ranges = {}
    for env in dict.fromkeys(r.env for r in runs):
        if env in REFERENCE_RANGES:
            ranges[env] = REFERENCE_RANGES[env]
            continue
        seen = np.concatenate([r.returns.ravel() for r in runs if r.env == env])
        low, high = float(seen.min()), float(seen.max())
        ranges[env] = (low, high if high > low else low + 1.0)
    return ranges


def normalized_final_scores(runs: Sequence[Run]) -> dict[str, list[np.ndarray]]:
    """Per method, one array of normalised final scores (one per seed) per task."""
    ranges = score_ranges(runs)
    out: dict[str, list[np.ndarray]] = {}
    for name, run in zip(method_names(runs), runs, strict=True):
        low, high = ranges[run.env]
        out.setdefault(name, []).append((run.returns[:, -1] - low) / (high - low))
    return out


def aggregate_table(
    scores: dict[str, list[np.ndarray]], threshold: float = 1.0, reps: int = 2000
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per method and metric, ``(point, low, high)`` with a 95% stratified bootstrap CI."""
    fns = aggregate_fns(threshold)
    return {
        method: {name: stratified_bootstrap_ci(tasks, fn, reps) for name, fn in fns.items()}
        for method, tasks in scores.items()
    }


def plot_curves(runs: Sequence[Run], path: Path) -> None:
    """Mean evaluation return vs env steps with 95% bootstrap bands, one panel per env."""
    env_names = list(dict.fromkeys(r.env for r in runs))
    fig, axes = new_figure(
        1, len(env_names), figsize=(5 * len(env_names), 3.6), dpi=100, squeeze=False
    )
    names = method_names(runs)
    colors = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(names))}  # as in the others
    for name, run in zip(names, runs, strict=True):
        ax = axes[0, env_names.index(run.env)]
        mid, low, high = bootstrap_band(run.returns)
        ax.fill_between(run.env_steps, low, high, alpha=0.25, color=colors[name], lw=0)
        ax.plot(run.env_steps, mid, color=colors[name], label=f"{name} ({len(run.returns)} seeds)")
    for ax, env in zip(axes[0], env_names, strict=True):
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_aggregates(table: dict[str, dict[str, tuple[float, float, float]]], path: Path) -> None:
    """One panel per metric: a 95% CI bar and the point estimate for each method."""
    methods = list(table)
    metrics = list(next(iter(table.values())))
    fig, axes = new_figure(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.6 * len(methods) + 1.4), dpi=100
    )
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for i, method in enumerate(methods):
            point, low, high = table[method][metric]
            ax.barh(i, high - low, left=low, height=0.6, color=f"C{i}", alpha=0.5)
            ax.plot([point, point], [i - 0.3, i + 0.3], color="k", lw=1.5)
        ax.set_yticks(range(len(methods)), methods if ax is np.atleast_1d(axes)[0] else [])
        ax.set_title(metric)
        ax.set_xlabel("normalised score")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_profiles(scores: dict[str, list[np.ndarray]], path: Path, reps: int = 1000) -> None:
    """Performance profiles: fraction of runs with normalised score > tau, 95% bands."""
    everything = np.concatenate([np.concatenate(t) for t in scores.values()])
    taus = np.linspace(min(0.0, everything.min()), max(1.0, everything.max()), 101)
    fig, ax = new_figure(figsize=(5, 3.6), dpi=100)
    rng = np.random.default_rng(0)
    for i, (method, tasks) in enumerate(scores.items()):
        curve = performance_profile(np.concatenate(tasks), taus)
        low, high = np.quantile(
            performance_profile(_resample(tasks, reps, rng), taus), [0.025, 0.975], axis=0
        )
        ax.fill_between(taus, low, high, alpha=0.25, color=f"C{i}", lw=0)
        ax.plot(taus, curve, color=f"C{i}", label=method)
    ax.set_xlabel(r"normalised score $\tau$")
    ax.set_ylabel(r"fraction of runs with score $> \tau$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def markdown(
    runs: Sequence[Run],
    table: dict[str, dict[str, tuple[float, float, float]]],
    threshold: float,
) -> str:
    """``results.md``: per-run final returns, then aggregate metrics with their CIs."""
    ranges = score_ranges(runs)
    lines = [
        "# Results",
        "",
        "| run | method | env | seeds | env steps | final return (mean ± std) |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in zip(method_names(runs), runs, strict=True):
        final = run.returns[:, -1]
        lines.append(
            f"| `{run.path}` | {name} | {run.env} | {len(final)} | {int(run.env_steps[-1]):,} "
            f"| {final.mean():.1f} ± {final.std():.1f} |"
        )
    metrics = list(next(iter(table.values())))
    lines += [
        "",
        "## Aggregate metrics",
        "",
        "| method | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for method, row in table.items():
        cells = [f"{p:.3f} [{lo:.3f}, {hi:.3f}]" for p, lo, hi in row.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    described = ", ".join(f"{env}: [{lo:g}, {hi:g}]" for env, (lo, hi) in ranges.items())
    lines += [
        "",
        "Scores are final evaluation returns (one per seed) normalised per env to "
        f"(return - low) / (high - low) with [low, high] = {described} (a reference range "
        "where known, otherwise the range of every evaluation return observed for the env). "
        "Brackets: 95% stratified bootstrap confidence intervals (2000 resamples, seeds "
        "resampled within each env). IQM: mean of the middle 50% of scores. Optimality gap: "
        f"mean shortfall below the threshold {threshold:g} (lower is better).",
        "",
    ]
    return "\n".join(lines)


def write_report(runs: Sequence[Run], out: Path, threshold: float = 1.0) -> list[Path]:
    """Writes ``curves.png``, ``aggregates.png``, ``profiles.png`` and ``results.md``."""
    out = Path(out)
    scores = normalized_final_scores(runs)
    table = aggregate_table(scores, threshold)
    paths = [out / n for n in ("curves.png", "aggregates.png", "profiles.png", "results.md")]
    plot_curves(runs, paths[0])
    plot_aggregates(table, paths[1])
    plot_profiles(scores, paths[2])
    atomic_write(paths[3], markdown(runs, table, threshold))
    return paths
