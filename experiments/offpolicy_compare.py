"""SAC, DSAC-T, DrM and MENTOR on the same tasks, budget, network width and seeds.

Every algorithm gets the same env steps, replay settings (batch 256, one update per
env step, 1000 random warm-up steps), hidden widths, evaluation schedule and seeds;
each keeps its own paper defaults otherwise (DSAC-T: lr 1e-4 and policy delay 2;
DrM/MENTOR: perturbation every ``steps / 4`` updates so that a short run perturbs
3 times, MENTOR 8 experts of ``hidden / 4`` units, top-4).

    python experiments/offpolicy_compare.py --envs brax/inverted_pendulum,pendulum \\
        --steps 10000 --seeds 3 --out runs/offpolicy_compare

Writes ``offpolicy_compare.json`` (per env and algorithm: evaluation returns per seed
and evaluation point, final mean/std/min/max, wall seconds, parameter counts) and
``offpolicy_compare.png`` (mean and min-max band over seeds), and prints a markdown
table.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl import envs, runner
from jaxrl.agents.actor_critic import drm, dsac_t, mentor, sac
from jaxrl.logging import atomic_write

ALGOS = {"SAC": sac, "DSAC-T": dsac_t, "DrM": drm, "MENTOR": mentor}


def make_config(algo, steps: int, evals: int, hidden: tuple[int, ...]):
    kwargs = {"total_steps": steps, "num_evals": evals, "hidden": hidden}
    if algo in (drm, mentor):
        kwargs["perturb_every"] = max(1, steps // 4)
    if algo is mentor:
        kwargs.update(num_experts=8, top_k=4, expert_hidden=max(1, hidden[-1] // 4))
        kwargs["snapshot_every"] = 200
    return algo.Config(**kwargs)


def param_counts(algo, config, env) -> dict:
    """Parameters of the actor and of the (twin) critics, from shapes only."""
    agent = algo.make_agent(config, env, algo.SPEC.default_hparams())
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    state = getattr(state, "inner", state)

    def count(tree):
        return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))

    return {"actor": count(state.actor_params), "critics": count(state.critic_params)}


def run(algo, env_name: str, steps: int, seeds: int, evals: int, hidden, out: Path) -> dict:
    env = envs.make(env_name)
    config = make_config(algo, steps, evals, hidden)
    overrides = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    result = runner.run(
        algo.SPEC, env_name, seeds=seeds, config=overrides, out=out, progress=False, log=None
    )
    metrics = result.metrics
    compile_s, run_s = result.summary["compile_seconds"], result.summary["run_seconds"]
    returns = np.asarray(metrics["eval_return"])  # [S, E]
    final = returns[:, -1]
    return {
        "env_steps": np.asarray(metrics["env_steps"][0]).tolist(),
        "returns": returns.tolist(),
        "final_mean": float(final.mean()),
        "final_std": float(final.std()),
        "final_min": float(final.min()),
        "final_max": float(final.max()),
        "finite": bool(np.all(metrics["finite"])),
        "compile_seconds": compile_s,
        "run_seconds": run_s,
        "env_steps_per_second": steps * seeds / run_s,
        "params": param_counts(algo, config, env),
        "dormant_ratio_final": (
            float(np.mean(np.asarray(metrics["dormant_ratio"])[:, -1]))
            if "dormant_ratio" in metrics
            else None
        ),
    }


def plot(path: Path, results: dict, steps: int, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8), dpi=100)
    for ax, (env_name, per_algo) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for color, (name, r) in zip(("C0", "C1", "C2", "C3"), per_algo.items(), strict=False):
            x, y = np.asarray(r["env_steps"]), np.asarray(r["returns"])
            ax.fill_between(x, y.min(0), y.max(0), color=color, alpha=0.15, lw=0)
            ax.plot(x, y.mean(0), color=color, label=name)
        ax.set_title(f"{env_name}: {seeds} seeds, {steps:,} steps")
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return (mean, min-max)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def table(results: dict) -> str:
    """Markdown: one row per algorithm, one column per env (final return mean +- std)."""
    env_names = list(results)
    lines = [
        "| algorithm | " + " | ".join(env_names) + " | params (actor / critics) |",
        "|---" * (len(env_names) + 2) + "|",
    ]
    for name in ALGOS:
        cells = []
        for e in env_names:
            r = results[e][name]
            cells.append(
                f"{r['final_mean']:.1f} +- {r['final_std']:.1f} "
                f"[{r['final_min']:.0f}, {r['final_max']:.0f}]"
            )
        p = results[env_names[0]][name]["params"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {p['actor']} / {p['critics']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="brax/inverted_pendulum")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--evals", type=int, default=10)
    parser.add_argument("--hidden", default="128,128")
    parser.add_argument("--algos", default=",".join(ALGOS))
    parser.add_argument("--out", default="runs/offpolicy_compare")
    args = parser.parse_args(argv)
    hidden = tuple(int(x) for x in args.hidden.split(","))
    names = [a.strip() for a in args.algos.split(",")]
    unknown = [a for a in names if a not in ALGOS]
    if unknown:
        parser.error(f"unknown algorithm(s) {unknown}; known: {', '.join(ALGOS)}")
    out = Path(args.out)
    t0 = time.perf_counter()
    results: dict = {}
    for env_name in args.envs.split(","):
        results[env_name] = {}
        for name in names:
            run_dir = out / "runs" / f"{name}-{env_name.replace('/', '_')}"
            r = run(ALGOS[name], env_name, args.steps, args.seeds, args.evals, hidden, run_dir)
            results[env_name][name] = r
            print(
                f"{env_name} {name}: {r['final_mean']:.1f} +- {r['final_std']:.1f} "
                f"(compile {r['compile_seconds']:.0f} s, run {r['run_seconds']:.0f} s)",
                flush=True,
            )
    record = {
        "envs": args.envs.split(","),
        "steps": args.steps,
        "seeds": args.seeds,
        "hidden": list(hidden),
        "wall_seconds": time.perf_counter() - t0,
        "results": results,
    }
    atomic_write(out / "offpolicy_compare.json", json.dumps(record, indent=1) + "\n")
    plot(out / "offpolicy_compare.png", results, args.steps, args.seeds)
    if set(names) == set(ALGOS):
        print(table(results))
    print(f"wall {record['wall_seconds']:.0f} s; wrote {out}/offpolicy_compare.json and .png")
    return record


if __name__ == "__main__":
    main()
