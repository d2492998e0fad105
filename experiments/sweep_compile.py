"""One ``jaxrl sweep`` against separate ``jaxrl train`` runs: XLA compiles and seconds.

Runs the issue's command ``jaxrl sweep ppo --grid lr=1e-4,3e-4,1e-3 --grid
ent_coef=0,0.01 --seeds 4 --steps 100000`` and the six ``jaxrl train`` runs of the same
settings, each in a fresh process (as a user would), counting backend compiles with
``jaxrl.compile_cache.CompileStats``, with the persistent compilation cache off (cold
compiles in every process). Writes experiments/results/sweep_compile.json; its table is
rendered from the JSON by ``python -m jaxrl.report build`` (docs/results.md).

    python experiments/sweep_compile.py [--steps 100000] [--seeds 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
CHILD = """
import json, sys, time
from jaxrl import compile_cache, runner
kind, steps, seeds, out, lr, ent = sys.argv[1:]
t0 = time.perf_counter()
with compile_cache.CompileStats() as c:
    if kind == "sweep":
        grid = {"lr": [1e-4, 3e-4, 1e-3], "ent_coef": [0.0, 0.01]}
        r = runner.run_sweep("ppo", grid=grid, seeds=int(seeds), steps=int(steps), out=out,
                             progress=False, log=None, compile_cache=False)
    else:
        r = runner.run("ppo", seeds=int(seeds), steps=int(steps), out=out, progress=False,
                       hparams={"lr": float(lr), "ent_coef": float(ent)}, log=None,
                       compile_cache=False)
print(json.dumps({"compiles": c.count, "backend_compile_seconds": c.seconds,
                  "compile_seconds": r.summary["compile_seconds"],
                  "run_seconds": r.summary["run_seconds"],
                  "in_process_seconds": time.perf_counter() - t0}))
"""


def child(kind: str, steps: int, seeds: int, out: str, lr: float = 0, ent: float = 0) -> dict:
    t0 = time.perf_counter()
    args = [sys.executable, "-c", CHILD, kind, str(steps), str(seeds), out, str(lr), str(ent)]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_seconds"] = time.perf_counter() - t0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    result = {"steps": args.steps, "seeds": args.seeds}
    result["sweep"] = child("sweep", args.steps, args.seeds, str(tmp / "sweep"))
    trains = []
    for lr, ent in itertools.product([1e-4, 3e-4, 1e-3], [0.0, 0.01]):
        row = child("train", args.steps, args.seeds, str(tmp / f"t{lr}_{ent}"), lr, ent)
        trains.append({"lr": lr, "ent_coef": ent, **row})
    result["train_runs"] = trains
    keys = ("compiles", "compile_seconds", "run_seconds", "process_seconds")
    result["train_total"] = {k: sum(r[k] for r in trains) for k in keys}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep_compile.json").write_text(json.dumps(result, indent=2) + "\n")
    from jaxrl.report.renderers import RENDERERS

    print(RENDERERS["sweep_compile"].render(result))


if __name__ == "__main__":
    main()
