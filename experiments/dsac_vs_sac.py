"""DSAC-T vs DSAC-v1 vs SAC: return at a fixed budget, and the reward-scale claim (Duan et
al. 2025, "Distributional Soft Actor-Critic with Three Refinements", arXiv 2310.05858).

The reward-scale claim is relative to DSAC-v1 ("unlike its standard version"), so the
method ``dsac_v1`` (DSAC-T's agent with ``dsac_t.V1``: no expected value substitution,
no variance-based critic gradient adjustment, a fixed TD clip of 10) runs beside it.

(a) Both algorithms train on each task for the same env steps with the same networks
(``--hidden``, ReLU), replay (batch 256, one update per env step, the same random
warm-up) and seeds (vmapped in one ``runner.run``); each keeps its own defaults
otherwise (DSAC-T: lrs 1e-4, policy delay 2, target policy, alpha starting at e).
(b) Pendulum and one more task with every reward multiplied by 0.1, 1 and 10
(``envs.make(name, reward_scale=c)``). The paper's claim: DSAC-T's variance-based
critic gradient adjustment keeps its return stable across reward scales where SAC's
moves. Evaluation runs on the scaled env and its returns are divided by the scale, so
every number here is in the task's own (unscaled) reward.

    python experiments/dsac_vs_sac.py                       # the recorded run
    python experiments/dsac_vs_sac.py --add --methods dsac_v1 \
        --tasks brax/inverted_pendulum,brax/inverted_double_pendulum \
        --scale-tasks brax/inverted_pendulum                # DSAC-v1 added to it
    python experiments/dsac_vs_sac.py --tasks pendulum --scale-tasks pendulum \
        --steps 30000 --name dsac_vs_sac_pendulum30k        # the issue's 30k budget
    python experiments/dsac_vs_sac.py --protocol official --tasks pendulum \
        --scale-tasks pendulum --name dsac_vs_sac_official   # DSAC-v2's own sampling
    python experiments/dsac_vs_sac.py --seeds 2 --steps 2000 --out runs/dsac_smoke

``--protocol matched`` (the default) is (a) above: one env, one update per env step, a
1,000-step warm-up, ``--hidden`` ReLU nets for every method. ``--protocol official`` is
the sampling and networks of DSAC-v2's own trainer (``off_serial_trainer`` with
``sample_batch_size`` 20, ``buffer_warm_size`` 10,000, 3x256 GELU; its pendulum run
``results/DSAC_V2_gym_pendulum`` is 12,000 iterations): one gradient update per 20 env
steps, a 10,000-step warm-up, 3x256 GELU nets, for every method. Departure: the 20 env
steps of an iteration come from 20 parallel envs here, from 20 consecutive steps of one
env there.

Statistic: the final evaluation return per seed (8 episodes); IQM with a 95% stratified
bootstrap CI over seeds (``jaxrl.report``). For (b), the spread of a method across
scales is ``max - min`` of its per-scale IQMs, with a bootstrap CI (seeds resampled
within each scale). Writes dsac_vs_sac.json (per-seed curves and finals) and .png; its
tables are rendered from the JSON by ``python -m jaxrl.report build`` (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxrl import report, runner
from jaxrl.agents.actor_critic import dsac_t, sac
from jaxrl.logging import atomic_write, new_figure, save_figure
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"
#: Method -> (algorithm, its Config overrides). ``dsac_v1``: the same agent as DSAC-T.
ALGOS = {"SAC": (sac, {}), "DSAC-T": (dsac_t, {}), "dsac_v1": (dsac_t, dsac_t.V1)}
LABELS = {"dsac_v1": "DSAC-v1"}
#: Env steps per task: sized so the whole run fits ~45 min on the shared 2-core CPU.
BUDGETS = {
    "pendulum": 6_000,
    "brax/inverted_pendulum": 3_000,
    "brax/inverted_double_pendulum": 3_000,
}
SCALE_TASKS = ("pendulum", "brax/inverted_pendulum")
SCALES = (0.1, 1.0, 10.0)
#: Config shared by every method, per protocol (see the module docstring); ``hidden``
#: (--hidden) and the budget per task come from the command line.
PROTOCOLS: dict[str, dict] = {
    "matched": {"batch_size": 256, "utd_ratio": 1.0, "warmup_steps": 1000},
    "official": {
        "batch_size": 256,
        "num_envs": 20,
        "utd_ratio": 0.05,
        "warmup_steps": 10_000,
        "activation": "gelu",
    },
}
#: --protocol official: 12,000 iterations of 20 env steps (DSAC-v2's pendulum run).
OFFICIAL_STEPS = 240_000
OFFICIAL_HIDDEN = "256,256,256"
#: DSAC-v2's committed pendulum run (one seed, 5 evaluation episodes every 100
#: iterations; ``results/DSAC_V2_gym_pendulum/240223-003213/data/Evaluation_1. TAR-RL
#: iter.csv`` in github.com/Jingliang-Duan/DSAC-v2 at c5105eb's parent tree, read 2026-12-08).
PAPER_OFFICIAL = (
    "DSAC-v2's own pendulum run (DSAC-T, 12,000 iterations = 240,000 env steps, one seed): "
    "final evaluation -171.0, mean of its last 10 evaluations -147.2 (the repository's "
    "results/DSAC_V2_gym_pendulum/240223-003213)"
)
#: The paper's numbers are MuJoCo / real-robot returns after 1.5M iterations (DSAC-v2's
#: example config ``max_iteration``): no number at this scale. Its claims, from the
#: abstract of arXiv 2310.05858 (v5, TPAMI 2025):
PAPER_A = (
    "no number at this scale; claim: DSAC-T matches or outperforms SAC in all tested "
    "environments (arXiv 2310.05858, abstract)"
)
PAPER_B = (
    "no number at this scale; claim: DSAC-T maintains robust performance across varying "
    "reward scales, DSAC-v1 is sensitive to them (arXiv 2310.05858, abstract)"
)


def run_one(
    method: str,
    task: str,
    steps: int,
    seeds: int,
    evals: int,
    hidden,
    scale: float,
    out: Path,
    protocol: str = "matched",
) -> dict:
    """One vmapped-seeds ``runner.run`` of ``method``; returns in the unscaled reward."""
    algo, overrides = ALGOS[method]
    config = {
        **overrides,
        **PROTOCOLS[protocol],
        "total_steps": steps,
        "num_evals": evals,
        "hidden": tuple(hidden),
    }
    env_kwargs = None if scale == 1.0 else {"reward_scale": scale}
    t0 = time.perf_counter()
    result = runner.run(
        algo.SPEC,
        task,
        seeds=seeds,
        config=config,
        env_kwargs=env_kwargs,
        out=out,
        progress=False,
        log=None,
    )
    m = result.metrics
    curve = np.asarray(m["eval_return"], np.float64) / scale  # [S, E]
    return {
        "env_steps": np.asarray(m["env_steps"][0]).tolist(),
        "curve": curve.tolist(),
        "final": curve[:, -1].tolist(),
        "finite": bool(np.all(m["finite"])),
        "compile_seconds": result.summary["compile_seconds"],
        "run_seconds": result.summary["run_seconds"],
        "wall_seconds": time.perf_counter() - t0,
    }


def ci(final) -> tuple[float, float, float]:
    return report.stratified_bootstrap_ci([np.asarray(final)], report.iqm)


def fmt(c) -> str:
    return f"{c[0]:.1f} [{c[1]:.1f}, {c[2]:.1f}]"


def key(task: str, scale: float) -> str:
    return f"{task}@{scale:g}"


def plot(results: dict, meta: dict, path: Path) -> None:
    tasks = [t for t in meta["budgets"] if key(t, 1.0) in results]
    ncols = max(len(tasks), len(meta["scale_tasks"]))
    fig, axes = new_figure(2, ncols, figsize=(4.6 * ncols, 7.2), dpi=100, squeeze=False)
    colors = {"SAC": "C0", "DSAC-T": "C1", "dsac_v1": "C2"}
    for ax, task in zip(axes[0], tasks, strict=False):
        for a, r in results[key(task, 1.0)].items():
            x, y = np.asarray(r["env_steps"]), np.asarray(r["curve"])
            ax.fill_between(x, y.min(0), y.max(0), color=colors[a], alpha=0.15, lw=0)
            ax.plot(x, report.iqm(y.T), color=colors[a], label=LABELS.get(a, a))
        ax.set_title(f"{task} (scale 1)")
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("eval return (IQM, min-max)")
    if axes[0][0].has_data():
        axes[0][0].legend(fontsize=8)
    for ax, task in zip(axes[1], meta["scale_tasks"], strict=False):
        for i, a in enumerate(ALGOS):
            ks = [key(task, s) for s in meta["scales"]]
            if not all(k in results and a in results[k] for k in ks):
                continue
            cs = np.array([ci(results[k][a]["final"]) for k in ks])
            xs = np.asarray(meta["scales"]) * (1.0 + 0.06 * (i - 1))
            err = np.abs(cs[:, 1:].T - cs[:, 0])
            label = LABELS.get(a, a)
            ax.errorbar(xs, cs[:, 0], yerr=err, marker="o", capsize=3, color=colors[a], label=label)
        ax.set_xscale("log")
        ax.set_title(f"{task}: reward scale")
        ax.set_xlabel("reward scale")
        ax.grid(alpha=0.3)
    axes[1][0].set_ylabel("final return, unscaled (IQM, 95% CI)")
    if axes[1][0].has_data():
        axes[1][0].legend(fontsize=8)
    for row in axes:
        for ax in row:
            if not ax.has_data():
                ax.set_visible(False)
    fig.tight_layout()
    save_figure(fig, path)


def added_to(path: Path, meta: dict) -> tuple[dict, dict]:
    """The results and meta of the record at ``path``, to which a run of ``meta``'s
    settings adds methods on some of its tasks; raises where the settings differ."""
    record = json.loads(path.read_text())
    old = record["meta"]
    same = {
        "seeds": old["seeds"] == meta["seeds"],
        "hidden": old["hidden"] == meta["hidden"],
        "protocol": old.get("protocol", "matched") == meta["protocol"],
        "scales": old["scales"] == meta["scales"],
        "budgets": all(old["budgets"].get(t) == b for t, b in meta["budgets"].items()),
        "scale_tasks": set(meta["scale_tasks"]) <= set(old["scale_tasks"]),
    }
    for field, ok in same.items():
        if not ok:
            raise SystemExit(f"--add: {field} {meta[field]} differs from {path}'s {old[field]}")
    commands = old["command"] if isinstance(old["command"], list) else [old["command"]]
    return record["results"], {**old, "command": [*commands, meta["command"]]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(BUDGETS))
    parser.add_argument("--scale-tasks", default=",".join(SCALE_TASKS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="one budget for every task")
    parser.add_argument("--evals", type=int, default=4)
    parser.add_argument("--hidden", default=None, help="default 64,64 (matched), 256x3 (official)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="matched")
    parser.add_argument(
        "--scales", default=",".join(f"{c:g}" for c in SCALES), help="reward scales of (b)"
    )
    parser.add_argument("--methods", default=",".join(ALGOS), help=f"of {', '.join(ALGOS)}")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--name", default="dsac_vs_sac", help="the record's file stem in --out (.json, .png)"
    )
    parser.add_argument(
        "--replot", action="store_true", help="rewrite the .png from the .json only"
    )
    parser.add_argument(
        "--add",
        action="store_true",
        help="add --methods to the existing dsac_vs_sac.json in --out (same seeds, "
        "budgets and widths, checked) instead of starting a new one",
    )
    args = parser.parse_args(argv)
    if args.replot:
        record = json.loads((Path(args.out) / f"{args.name}.json").read_text())
        plot(record["results"], record["meta"], Path(args.out) / f"{args.name}.png")
        return record
    methods = args.methods.split(",")
    if set(methods) - set(ALGOS):
        raise SystemExit(
            f"unknown methods {sorted(set(methods) - set(ALGOS))}; known: {list(ALGOS)}"
        )
    tasks = args.tasks.split(",")
    scale_tasks = [t for t in args.scale_tasks.split(",") if t]
    official = args.protocol == "official"
    budgets = {
        t: args.steps or (OFFICIAL_STEPS if official else BUDGETS.get(t, 10_000))
        for t in dict.fromkeys(tasks + scale_tasks)
    }
    hidden_arg = args.hidden or (OFFICIAL_HIDDEN if official else "64,64")
    hidden = tuple(int(x) for x in hidden_arg.split(","))
    out = Path(args.out)
    meta = {
        "command": "python experiments/dsac_vs_sac.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "seeds": args.seeds,
        "budgets": budgets,
        "hidden": list(hidden),
        "protocol": args.protocol,
        "shared_config": PROTOCOLS[args.protocol],
        "scale_tasks": scale_tasks,
        "scales": [float(c) for c in args.scales.split(",")],
        "evaluation": "scaled env, returns divided by the scale",
    }
    # Scale 1 of the scale tasks, their other scales, then the remaining tasks at scale 1.
    jobs = [(t, 1.0) for t in scale_tasks]
    jobs += [(t, s) for t in scale_tasks for s in meta["scales"] if s != 1.0]
    jobs += [(t, 1.0) for t in tasks if t not in scale_tasks]
    t0 = time.perf_counter()
    results: dict = {}
    if args.add:
        results, meta = added_to(out / f"{args.name}.json", meta)
    wall0 = meta.get("wall_min", 0.0)  # minutes of the runs an --add adds to
    with tempfile.TemporaryDirectory() as tmp:
        for task, scale in jobs:
            for name in methods:
                run_dir = Path(tmp) / f"{name}-{task.replace('/', '_')}-{scale:g}"
                r = run_one(
                    name,
                    task,
                    budgets[task],
                    args.seeds,
                    args.evals,
                    hidden,
                    scale,
                    run_dir,
                    args.protocol,
                )
                results.setdefault(key(task, scale), {})[name] = r
                print(
                    f"{task} x{scale:g} {name}: final IQM {fmt(ci(r['final']))} "
                    f"(compile {r['compile_seconds']:.0f} s, run {r['run_seconds']:.0f} s)",
                    flush=True,
                )
                meta["wall_min"] = wall0 + (time.perf_counter() - t0) / 60
                # Written after every run, so a partial run still leaves its numbers.
                paper = {"a": PAPER_A, "b": PAPER_B}
                if official and "pendulum" in budgets:
                    paper["official pendulum"] = PAPER_OFFICIAL
                record = {"meta": meta, "paper": paper, "results": results}
                atomic_write(out / f"{args.name}.json", json.dumps(record, indent=1) + "\n")
            plot(results, meta, out / f"{args.name}.png")
    print(RENDERERS["dsac_vs_sac"].render(record))
    return record


if __name__ == "__main__":
    main()
