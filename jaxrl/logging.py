"""Host-side run outputs: metrics JSONL/CSV, summary JSON, TensorBoard, curves.

Metrics arrive from ``train`` as arrays with leading ``[S, E]`` (seeds, evaluation
points). Every file is written atomically (temp file + rename).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """``(Figure, axes)`` built outside pyplot: no backend switch and no global figure
    registry, so run files written from a notebook leave its inline plots alone.
    ``kwargs`` go to ``Figure`` (``figsize``, ``dpi``) except ``squeeze``."""
    from matplotlib.figure import Figure

    squeeze = kwargs.pop("squeeze", True)
    fig = Figure(**kwargs)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Writes ``fig`` to ``path`` as a PNG, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write(path, buf.getvalue())


def metric_rows(metrics: dict[str, Any], seeds: list[int] | None = None) -> list[dict]:
    """One row per (seed, evaluation point): ``{"seed", "env_steps", name: value, ...}``."""
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    num_seeds, num_evals = arrays["env_steps"].shape[:2]
    seeds = seeds if seeds is not None else list(range(num_seeds))
    rows = []
    for s in range(num_seeds):
        for e in range(num_evals):
            row = {"seed": int(seeds[s])}
            for k, v in arrays.items():
                x = v[s, e]
                if x.ndim == 0:
                    row[k] = x.item() if x.dtype != np.bool_ else bool(x)
            rows.append(row)
    return rows


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buf.getvalue())


def write_json(path: str | os.PathLike, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def write_tensorboard(logdir: str | os.PathLike, metrics: dict[str, Any]) -> None:
    """Scalars per evaluation point, x = env steps: one TensorBoard run per seed
    (``logdir/seed_<i>``) and their mean over seeds (``logdir/mean``), same tag names,
    so TensorBoard overlays the seeds and the aggregate in one chart per metric."""
    from tensorboardX import SummaryWriter

    arrays = {k: np.asarray(v, np.float64) for k, v in metrics.items() if k != "env_steps"}
    arrays = {k: v for k, v in arrays.items() if v.ndim == 2}
    steps = np.asarray(metrics["env_steps"])[0]
    num_seeds = np.asarray(metrics["env_steps"]).shape[0]
    runs = {f"seed_{s}": {k: v[s] for k, v in arrays.items()} for s in range(num_seeds)}
    runs["mean"] = {k: v.mean(axis=0) for k, v in arrays.items()}
    for run, scalars in runs.items():
        with SummaryWriter(str(Path(logdir) / run)) as writer:
            for k, values in scalars.items():
                for step, value in zip(steps, values, strict=True):
                    writer.add_scalar(k, float(value), int(step))


def plot_curve(
    path: str | os.PathLike,
    env_steps: np.ndarray,
    returns: np.ndarray,
    title: str = "",
    label: str | None = None,
) -> None:
    """Saves the mean evaluation return over seeds with two bands as a PNG.

    Shapes: ``env_steps [E]``, ``returns [S, E]``. The dark band is mean +- 1.96 SEM
    (a normal 95% confidence interval of the mean, clipped to the observed range);
    the faint band is the min-max range over seeds.
    """
    returns = np.asarray(returns, np.float64)
    mean = returns.mean(0)
    sem = returns.std(0, ddof=1) / np.sqrt(len(returns)) if len(returns) > 1 else 0 * mean
    fig, ax = new_figure(figsize=(6, 4), dpi=100)
    ax.fill_between(env_steps, returns.min(0), returns.max(0), alpha=0.12, color="C0", lw=0)
    low = np.maximum(mean - 1.96 * sem, returns.min(0))
    high = np.minimum(mean + 1.96 * sem, returns.max(0))
    ax.fill_between(env_steps, low, high, alpha=0.3, color="C0", lw=0)
    ax.plot(env_steps, mean, color="C0", label=label or f"mean of {len(returns)} seeds")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
