"""The stream barrier: stream-x learners against classic AC(lambda) / Q(lambda) with Adam.

Both sides learn from one transition at a time (batch = buffer = 1) with the same
eligibility traces. "stream-x" adds ObGD, sparse init, LayerNorm, observation
normalisation and reward scaling (the paper's defaults); "classic" uses Adam on
``-delta * z``, a dense uniform init, no LayerNorm and no normalisation. Adam's
learning rate is swept (one vmapped compilation over seeds x learning rates) and the
best rate by final return is reported, so the baseline gets the benefit of the doubt.

    python experiments/stream_barrier.py --steps 100000 --seeds 4 --out runs/stream_barrier

Writes ``stream_barrier.json`` (evaluation returns per seed and evaluation point for
every setting) and ``stream_barrier.png`` (mean and min-max band over seeds), and
prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

from jaxrl import envs, runner, sweep
from jaxrl.agents.stream import stream_ac, stream_q
from jaxrl.logging import atomic_write

CLASSIC = {
    "optimizer": "adam",
    "sparsity": 0.0,
    "layer_norm": False,
    "normalize_obs": False,
    "scale_reward": False,
}
LEARNERS = {"AC(lambda)": stream_ac, "Q(lambda)": stream_q}


def run_stream_x(algo, env_name: str, steps: int, seeds: int, num_evals: int, out) -> dict:
    """Stream-x defaults: returns ``{"env_steps": [E], "returns": [S, E]}``."""
    config = {"total_steps": steps, "num_evals": num_evals}
    result = runner.run(algo.SPEC, env_name, seeds=seeds, config=config, out=out, progress=False)
    metrics = result.metrics
    return {
        "env_steps": np.asarray(metrics["env_steps"][0]).tolist(),
        "returns": np.asarray(metrics["eval_return"]).tolist(),
        "finite": bool(np.all(metrics["finite"])),
    }


def run_classic(
    algo, env_name: str, steps: int, seeds: int, num_evals: int, lrs: list[float]
) -> dict:
    """Classic learner with Adam at each rate in ``lrs``: one compilation, ``[H, S, E]``."""
    config = algo.Config(total_steps=steps, num_evals=num_evals, **CLASSIC)
    train = algo.SPEC.make_train(config, envs.make(env_name))
    hparams, settings = sweep.grid(algo.SPEC.default_hparams(), lr=lrs)
    run = sweep.over_seeds_and_hparams(train, seeds, len(lrs))
    _, metrics = run(sweep.seed_keys(0, seeds), hparams)
    returns = np.asarray(metrics["eval_return"])  # [H, S, E]
    finals = returns[:, :, -1].mean(axis=1)
    best = int(np.argmax(finals))
    return {
        "env_steps": np.asarray(metrics["env_steps"][0, 0]).tolist(),
        "lrs": [s["lr"] for s in settings],
        "final_return_mean_per_lr": finals.tolist(),
        "best_lr": settings[best]["lr"],
        "returns": returns[best].tolist(),
        "returns_per_lr": returns.tolist(),
        "finite_per_lr": np.all(np.asarray(metrics["finite"]), axis=(1, 2)).tolist(),
    }


def plot(path: Path, results: dict, env_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8), dpi=100)
    for ax, (learner, sides) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for color, (side, r) in zip(("C0", "C3"), sides.items(), strict=True):
            x = np.asarray(r["env_steps"])
            y = np.asarray(r["returns"])
            label = side if "best_lr" not in r else f"{side} (Adam lr {r['best_lr']:g})"
            ax.fill_between(x, y.min(0), y.max(0), color=color, alpha=0.15, lw=0)
            ax.plot(x, y.mean(0), color=color, label=f"{label}, {len(y)} seeds")
        ax.set_title(f"{learner} on {env_name}, batch = 1")
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="cartpole")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--evals", type=int, default=10)
    parser.add_argument("--lrs", default="1e-4,3e-4,1e-3", help="Adam rates for the baseline")
    parser.add_argument("--out", default="runs/stream_barrier")
    args = parser.parse_args(argv)
    lrs = [float(x) for x in args.lrs.split(",")]
    out = Path(args.out)
    t0 = time.perf_counter()
    results: dict = {}
    for learner, algo in LEARNERS.items():
        results[learner] = {
            "stream-x": run_stream_x(
                algo, args.env, args.steps, args.seeds, args.evals, out / "runs" / algo.SPEC.name
            ),
            "classic": run_classic(algo, args.env, args.steps, args.seeds, args.evals, lrs),
        }
    record = {
        "env": args.env,
        "steps": args.steps,
        "seeds": args.seeds,
        "classic_settings": CLASSIC,
        "wall_seconds": time.perf_counter() - t0,
        "results": results,
    }
    atomic_write(out / "stream_barrier.json", json.dumps(record, indent=1) + "\n")
    plot(out / "stream_barrier.png", results, args.env)
    print(f"{'learner':<12} {'variant':<10} final return mean +- std over seeds (per seed)")
    for learner, sides in results.items():
        for side, r in sides.items():
            final = np.asarray(r["returns"])[:, -1]
            extra = f"  [Adam lr {r['best_lr']:g}]" if "best_lr" in r else ""
            per_seed = ", ".join(f"{x:.0f}" for x in final)
            print(
                f"{learner:<12} {side:<10} {final.mean():7.1f} +- {final.std():5.1f} "
                f"({per_seed}){extra}"
            )
    print(f"wall {record['wall_seconds']:.0f} s; wrote {out}/stream_barrier.json and .png")
    return record


if __name__ == "__main__":
    main()
