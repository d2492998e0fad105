"""PBT against a fixed grid over the same hyperparameter ranges, at equal env steps.

For each task, the grid is ``|lr values| x |second values|`` fixed settings (one
``runner.run_sweep``: one compile); PBT is a population of as many members over the same
ranges (``runner.run_pbt``), each member getting the same env steps as a grid setting,
so both procedures spend the same total env steps. Each procedure is repeated for
``--seeds`` independent seeds (vmapped). Per seed we report:

* PBT (best member): the final evaluation return of the member best at the end
  (PBT's usual report; it selects on the same evaluation, so it is optimistic);
* PBT (population mean): the final return averaged over all members;
* grid best / grid median: the setting whose mean final return over seeds ranks first /
  in the middle (the best one is also chosen on the reported runs: optimistic too).

Tasks: PPO on cartpole and on gymnax Acrobot (lr x ent_coef) by default; SAC on
pendulum (critic_lr x tau) with ``--tasks sac/pendulum`` or ``--full`` (SAC's updates
per env step make it several times costlier on the shared CPU machine).

    python experiments/pbt_vs_grid.py            # 41 min on the busy 2-core machine (load ~15-20)
    python experiments/pbt_vs_grid.py --full     # 4x the env steps, 8 seeds, all three tasks

Writes experiments/results/pbt_vs_grid.{json,png}; its tables are rendered from the JSON by
``python -m jaxrl.report build`` (docs/results.md, README) and printed at the end.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import time
from pathlib import Path

import numpy as np

from jaxrl import report, runner
from jaxrl.logging import atomic_write
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"

TASKS = {
    "ppo/cartpole": {
        "algo": "ppo",
        "env": "cartpole",
        "steps": 50_000,
        "config": {},
        "axes": {"lr": [1e-4, 3e-4, 1e-3, 3e-3], "ent_coef": [0.0, 0.01]},
        "ranges": {"lr": (1e-4, 3e-3), "ent_coef": (0.0, 0.01)},
        "ready": 2,
    },
    "ppo/acrobot": {
        "algo": "ppo",
        "env": "gymnax/Acrobot-v1",
        "steps": 60_000,
        "config": {},
        "axes": {"lr": [1e-4, 3e-4, 1e-3, 3e-3], "ent_coef": [0.0, 0.01]},
        "ranges": {"lr": (1e-4, 3e-3), "ent_coef": (0.0, 0.01)},
        "ready": 2,
    },
    "sac/pendulum": {
        "algo": "sac",
        "env": "pendulum",
        "steps": 8_000,
        "config": {"hidden": (64, 64), "batch_size": 128, "buffer_size": 8_000},
        "axes": {"critic_lr": [1e-4, 3e-4, 1e-3, 3e-3], "tau": [0.005, 0.02]},
        "ranges": {"critic_lr": (1e-4, 3e-3), "tau": (0.005, 0.02)},
        "ready": 2,
    },
}
METHODS = ("PBT (best member)", "PBT (population mean)", "grid best", "grid median")


def run_task(name: str, task: dict, seeds: int, scale: int, out: Path) -> dict:
    steps = task["steps"] * scale
    common = dict(seeds=seeds, steps=steps, config=task["config"], progress=False, log=None)
    t0 = time.perf_counter()
    grid = runner.run_sweep(
        task["algo"], task["env"], grid=task["axes"], out=out / name / "grid", **common
    )
    grid_s = time.perf_counter() - t0
    population = int(np.prod([len(v) for v in task["axes"].values()]))
    t0 = time.perf_counter()
    pbt = runner.run_pbt(
        task["algo"],
        task["env"],
        population=population,
        perturb=tuple(task["axes"]),
        ready=task["ready"],
        ranges=task["ranges"],
        out=out / name / "pbt",
        **common,
    )
    pbt_s = time.perf_counter() - t0
    finals = grid.metrics["eval_return"][:, :, -1]  # [H, S]
    order = np.argsort(-finals.mean(axis=1), kind="stable")
    best, median = order[0], order[len(order) // 2]
    members = pbt.metrics["member_eval_return"][:, -1]  # [S, P]
    settings = list(itertools.product(*task["axes"].values()))
    scores = {
        "PBT (best member)": pbt.metrics["eval_return"][:, -1],
        "PBT (population mean)": members.mean(axis=1),
        "grid best": finals[best],
        "grid median": finals[median],
    }
    return {
        "algo": task["algo"],
        "env": task["env"],
        "steps_per_run": grid.summary["steps"],
        "population": population,
        "total_env_steps_per_seed": grid.summary["steps"] * population,
        "grid_axes": task["axes"],
        "pbt_ranges": {k: list(v) for k, v in task["ranges"].items()},
        "grid_best_setting": dict(zip(task["axes"], settings[best], strict=True)),
        "grid_median_setting": dict(zip(task["axes"], settings[median], strict=True)),
        "pbt_final_best_member_hparams": pbt.summary["final_best_member_hparams"],
        "scores": {k: [float(x) for x in v] for k, v in scores.items()},
        "grid_final_returns": finals.tolist(),
        "pbt_member_final_returns": members.tolist(),
        "curves": {
            "env_steps": pbt.metrics["env_steps"][0].tolist(),
            "PBT (best member)": pbt.metrics["eval_return"].tolist(),
            "grid best": grid.metrics["eval_return"][best].tolist(),
            "grid median": grid.metrics["eval_return"][median].tolist(),
        },
        "seconds": {"grid": grid_s, "pbt": pbt_s},
    }


def collect_task(name: str, task: dict, out: Path) -> dict:
    """A task's result from the run folders a (possibly interrupted) run left behind."""
    grid = json.loads((out / name / "grid" / "sweep.json").read_text())
    pbt = json.loads((out / name / "pbt" / "summary.json").read_text())
    by_mean = sorted(grid["settings"], key=lambda r: -r["mean"])
    best, median = by_mean[0], by_mean[len(by_mean) // 2]
    scores = {"PBT (best member)": pbt["final_returns"]}
    if "member_final_returns" in pbt:
        scores["PBT (population mean)"] = [float(np.mean(x)) for x in pbt["member_final_returns"]]
    scores |= {"grid best": best["final_returns"], "grid median": median["final_returns"]}
    return {
        "algo": task["algo"],
        "env": task["env"],
        "steps_per_run": grid["steps"],
        "population": grid["num_settings"],
        "total_env_steps_per_seed": grid["steps"] * grid["num_settings"],
        "grid_axes": task["axes"],
        "pbt_ranges": {k: list(v) for k, v in task["ranges"].items()},
        "grid_best_setting": best["hparams"],
        "grid_median_setting": median["hparams"],
        "pbt_final_best_member_hparams": pbt["final_best_member_hparams"],
        "scores": scores,
        "seconds": {
            "grid": grid["compile_seconds"] + grid["run_seconds"],
            "pbt": pbt["compile_seconds"] + pbt["run_seconds"],
        },
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), dpi=100)
    for ax, (name, r) in zip(np.atleast_1d(axes), tasks.items(), strict=True):
        if "curves" not in r:  # collected from run folders: final returns only
            for i, x in enumerate(r["scores"].values()):
                ax.scatter(np.full(len(x), i), x, alpha=0.7)
            ax.set_xticks(range(len(r["scores"])), list(r["scores"]), rotation=15)
            ax.set_title(f"{name}: final returns per seed")
            ax.set_ylabel("evaluation return")
            ax.grid(alpha=0.3)
            continue
        steps = np.asarray(r["curves"]["env_steps"])
        for method in ("PBT (best member)", "grid best", "grid median"):
            mean, low, high = report.bootstrap_band(np.asarray(r["curves"][method]))
            ax.plot(steps, mean, label=method)
            ax.fill_between(steps, low, high, alpha=0.2)
        ax.set_title(f"{name}: {r['population']} runs x {r['steps_per_run']:,} steps per seed")
        ax.set_xlabel("env steps per run (member or grid setting)")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--full", action="store_true", help="4x the env steps and 8 seeds")
    parser.add_argument("--tasks", default="ppo/cartpole,ppo/acrobot")
    parser.add_argument("--out", default="runs/pbt_vs_grid")
    parser.add_argument(
        "--collect", action="store_true", help="only rebuild the table from the run folders"
    )
    args = parser.parse_args()
    seeds, scale = (8, 4) if args.full else (args.seeds, 1)
    if args.full:
        args.tasks = ",".join(TASKS)
    t0 = time.perf_counter()
    results = {"seeds": seeds, "scale": scale, "tasks": {}}
    for name in args.tasks.split(","):
        if args.collect:
            if (Path(args.out) / name / "pbt" / "summary.json").exists():
                results["tasks"][name] = collect_task(name, TASKS[name], Path(args.out))
            continue
        results["tasks"][name] = run_task(name, TASKS[name], seeds, scale, Path(args.out))
        print(f"{name}: done after {time.perf_counter() - t0:.0f} s", flush=True)
    results["wall_seconds"] = time.perf_counter() - t0
    if args.collect:
        results["wall_seconds"] = sum(sum(r["seconds"].values()) for r in results["tasks"].values())
    RESULTS.mkdir(exist_ok=True)
    atomic_write(RESULTS / "pbt_vs_grid.json", json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "pbt_vs_grid.png")
    print(RENDERERS["pbt_vs_grid"].render(results))


if __name__ == "__main__":
    main()
