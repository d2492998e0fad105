"""Golden results: every registered algorithm on its default env, small budget, 2 seeds.

    python experiments/golden.py --record   # writes experiments/results/golden.json
    python experiments/golden.py --check    # recomputes and compares bitwise; exit 1 on change
    python experiments/golden.py --check --only sac,ppo

Per algorithm it stores the final evaluation return of each seed, a hash of the whole
evaluation curve and a hash of each array of the final agent state. Array hashes are
kept as a sorted list (a multiset), so a refactor may rename or regroup state fields
but every array the state had must come back bit for bit; ``--check`` also says when
the state gained arrays. Runs on CPU (bitwise equality is a same-backend property).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

RESULTS = Path(__file__).parent / "results" / "golden.json"
SEEDS = 2

#: Small budgets: enough iterations that every update path runs (warm-up, updates,
#: evaluation), small enough that the whole check takes a few minutes on 2 cores.
BUDGETS: dict[str, dict] = {
    "ppo": {"total_steps": 8192, "num_evals": 2},
    "gpayn": {"total_steps": 400, "num_evals": 2, "demo_episodes": 8},
    "sac": {"total_steps": 1600, "warmup_steps": 1000, "num_evals": 2},
    "srl": {"total_steps": 1200, "warmup_steps": 1000, "num_evals": 2},
    "td3": {"total_steps": 1600, "warmup_steps": 1000, "num_evals": 2},
    "dsac_t": {"total_steps": 1600, "warmup_steps": 1000, "num_evals": 2},
    "drm": {"total_steps": 1600, "warmup_steps": 1000, "num_evals": 2, "perturb_every": 200},
    "mentor": {
        "total_steps": 1600,
        "warmup_steps": 1000,
        "num_evals": 2,
        "perturb_every": 200,
        "snapshot_every": 100,
    },
    "stream_ac": {"total_steps": 2000, "num_evals": 2},
    "stream_q": {"total_steps": 2000, "num_evals": 2},
    "stream_td": {"total_steps": 2000, "num_evals": 2},
    "bc": {"total_steps": 200, "num_evals": 2},
    "rcsl": {"total_steps": 200, "num_evals": 2},
    "iql": {"total_steps": 200, "num_evals": 2},
    "mbrcsl": {
        "total_steps": 200,
        "num_evals": 2,
        "model_steps": 100,
        "behavior_steps": 100,
        "num_rollouts": 256,
        "num_keep": 32,
    },
    "drama": {"total_steps": 1280, "warmup_steps": 512, "num_evals": 2},
    "drrpo": {"total_steps": 600, "num_evals": 2},
    "alphazero": {"total_steps": 640, "warmup_steps": 256, "num_evals": 2},
    "assistancezero": {"total_steps": 640, "warmup_steps": 256, "num_evals": 2},
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def array_hash(x: np.ndarray) -> str:
    x = np.ascontiguousarray(x)
    return _sha(f"{x.dtype}{x.shape}".encode() + x.tobytes())


def _trainer(name: str):
    """``(train, hparams, env_name)`` for algorithm ``name`` at its golden budget."""
    from jaxrl import agents, envs

    spec = agents.get(name)
    if name not in BUDGETS:
        raise ValueError(f"golden: no budget for {name!r}; add one to BUDGETS")
    config = spec.make_config(spec.default_env, **BUDGETS[name])
    env = envs.make(spec.default_env)
    return spec.make_train(config, env), spec.default_hparams(), spec.default_env


def algorithms() -> list[str]:
    from jaxrl import agents

    return agents.names()


def run_one(name: str) -> dict:
    from jaxrl import sweep

    train, hparams, env_name = _trainer(name)
    keys = sweep.seed_keys(0, SEEDS)
    t0 = time.perf_counter()
    state, metrics = jax.block_until_ready(sweep.over_seeds(train, SEEDS)(keys, hparams))
    seconds = time.perf_counter() - t0
    curve = np.asarray(metrics["eval_return"], np.float32)
    leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
    return {
        "env": env_name,
        "final_returns": [float(x) for x in curve[:, -1]],
        "curve_hash": array_hash(curve),
        "state_hashes": sorted(array_hash(x) for x in leaves),
        "seconds": round(seconds, 1),
    }


def compare(name: str, want: dict, got: dict) -> list[str]:
    """Differences between a recorded and a recomputed entry (empty: bitwise equal)."""
    problems = []
    if got["final_returns"] != want["final_returns"]:
        problems.append(f"final returns {got['final_returns']} != {want['final_returns']}")
    if got["curve_hash"] != want["curve_hash"]:
        problems.append("evaluation curve differs")
    missing = list(want["state_hashes"])
    for h in got["state_hashes"]:
        if h in missing:
            missing.remove(h)
    if missing:
        problems.append(f"{len(missing)} of {len(want['state_hashes'])} state arrays differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated algorithm names")
    args = parser.parse_args(argv)
    jax.config.update("jax_platforms", "cpu")
    from jaxrl import compile_cache

    compile_cache.configure()
    names = [n for n in args.only.split(",") if n] or algorithms()
    recorded = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    failed = []
    for name in names:
        got = run_one(name)
        if args.record:
            recorded[name] = got
            print(f"{name:10s} recorded  returns {got['final_returns']}  ({got['seconds']} s)")
            continue
        if name not in recorded:
            print(f"{name:10s} NOT RECORDED (run --record --only {name})")
            failed.append(name)
            continue
        problems = compare(name, recorded[name], got)
        extra = len(got["state_hashes"]) - len(recorded[name]["state_hashes"])
        note = f" (+{extra} new state arrays)" if extra > 0 and not problems else ""
        status = "ok" if not problems else "CHANGED: " + "; ".join(problems)
        print(f"{name:10s} {status}{note}  ({got['seconds']} s)")
        if problems:
            failed.append(name)
    if args.record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        tmp.replace(RESULTS)
        print(f"wrote {RESULTS}")
        return 0
    print("golden: all bitwise equal" if not failed else f"golden: changed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
