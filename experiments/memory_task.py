"""A task that needs memory: feed-forward PPO against recurrent PPO on masked CartPole.

``cartpole_masked`` is CartPole with the two velocities removed from the observation
(cart position and pole angle only; ``jaxrl.envs.classic.MaskedCartPole``). A policy that
sees one observation cannot tell which way the pole is moving; a recurrent one can infer
the velocities from successive observations. Issue 34's claim: the task separates
recurrent from feed-forward PPO (non-overlapping 95% CIs).

Both methods train for the same env steps and seeds, each seed set vmapped in one
program (one ``runner.run`` per method), each with its own defaults otherwise (PPO: an
MLP 64x64 tanh, 16 envs x 64 steps, 8 epochs x 8 minibatches; ppo_rnn: Dense 64 -> GRU
64 -> heads 64, 16 envs x 64 steps, BPTT over the 64-step rollout, 4 epochs x 8
minibatches of whole env sequences). Same HParams (``ppo.HParams`` defaults).

    python experiments/memory_task.py                        # the recorded run
    python experiments/memory_task.py --seeds 2 --steps 20000 --out /tmp/memory_smoke

Statistic: the final evaluation return per seed (16 deterministic episodes, up to 500
steps); IQM with a 95% stratified bootstrap CI over seeds (``jaxrl.report``). Writes
``experiments/results/memory_task.json`` (per-seed curves and finals).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxrl import report, runner
from jaxrl.logging import atomic_write

RESULTS = Path(__file__).parent / "results"
ENV = "cartpole_masked"
METHODS = {"PPO": "ppo", "PPO-RNN": "ppo_rnn"}


def run_one(algo: str, steps: int, seeds: int, evals: int, out: Path) -> dict:
    """One vmapped-seeds ``runner.run`` of ``algo`` on the masked task."""
    t0 = time.perf_counter()
    result = runner.run(
        algo,
        ENV,
        seeds=seeds,
        config={"total_steps": steps, "num_evals": evals},
        out=out,
        progress=False,
        log=None,
    )
    m = result.metrics
    curve = np.asarray(m["eval_return"], np.float64)  # [seeds, evals]
    return {
        "algo": algo,
        "env_steps": np.asarray(m["env_steps"][0]).tolist(),
        "curve": curve.tolist(),
        "final": curve[:, -1].tolist(),
        "finite": bool(np.all(m["finite"])),
        "compile_seconds": result.summary["compile_seconds"],
        "run_seconds": result.summary["run_seconds"],
        "wall_seconds": time.perf_counter() - t0,
    }


def ci(final) -> tuple[float, float, float]:
    return report.stratified_bootstrap_ci([np.asarray(final, np.float64)], report.iqm)


def separated(results: dict) -> bool:
    """Whether PPO-RNN's CI lies wholly above PPO's."""
    return ci(results["PPO-RNN"]["final"])[1] > ci(results["PPO"]["final"])[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--evals", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, algo in METHODS.items():
            results[name] = run_one(algo, args.steps, args.seeds, args.evals, Path(tmp) / algo)
            c = ci(results[name]["final"])
            print(
                f"{name:8s} final return IQM {c[0]:.1f} [{c[1]:.1f}, {c[2]:.1f}] "
                f"per seed {np.round(results[name]['final'], 1).tolist()} "
                f"({results[name]['wall_seconds']:.0f} s)",
                flush=True,
            )
    data = {
        "meta": {
            "command": "python experiments/memory_task.py " + " ".join(sys.argv[1:]),
            "env": ENV,
            "seeds": args.seeds,
            "steps": args.steps,
            "evals": args.evals,
            "eval_episodes": 16,
            "wall_min": (time.perf_counter() - start) / 60,
            "date": datetime.date.today().isoformat(),
            "machine": platform.processor() or platform.machine(),
        },
        "results": results,
    }
    data["separated"] = separated(results)
    print("separated (non-overlapping CIs):", data["separated"])
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "memory_task.json", json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
