"""Golden results: every registered algorithm on its default env, small budget, 2 seeds.

    python experiments/golden.py --record   # writes experiments/results/golden.json
    python experiments/golden.py --check    # recomputes and compares; exit 1 on change
    python experiments/golden.py --check --only sac,ppo

Per algorithm it stores the final evaluation return of each seed, a hash of the whole
evaluation curve and a hash of each array of the final agent state. Array hashes are
kept as a sorted list (a multiset), so a refactor may rename or regroup state fields
but every array the state had must come back bit for bit; ``--check`` also says when
the state gained arrays. Runs on CPU.

XLA:CPU compiles for the host's instruction set, so bitwise equality holds per CPU model.
Each entry records the CPU it was recorded on (``cpu``: model name and the vector ISA
flags XLA may use) and the L2 norm of every float array of the final state. On the
recording CPU (and for an entry recorded before CPUs were stored) ``--check`` is bitwise;
on another CPU it compares the final returns within ``RETURN_TOL`` and the sorted state norms
within ``NORM_RTOL``, and says which mode it used: float32 reorderings grow over a run, so
that mode catches a changed algorithm, not a changed last bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

RESULTS = Path(__file__).parent / "results" / "golden.json"
SEEDS = 2
#: Cross-CPU mode: ``|got - want| <= RETURN_TOL * (1 + |want|)`` per final return, and
#: each sorted state-array norm within ``NORM_RTOL`` (relative, plus 1e-6 absolute).
RETURN_TOL = 0.05
NORM_RTOL = 0.02
#: /proc/cpuinfo flags that change what XLA:CPU emits (vector widths and fused ops).
ISA_PREFIXES = ("sse4", "avx", "fma", "f16c", "amx")

#: Small budgets: enough iterations that every update path runs (warm-up, updates,
#: evaluation), small enough that the whole check takes a few minutes on 2 cores.
BUDGETS: dict[str, dict] = {
    "ppo": {"total_steps": 8192, "num_evals": 2},
    "ppo_rnn": {"total_steps": 8192, "num_evals": 2},
    "pqn": {"total_steps": 8192, "num_evals": 2},
    "dqn": {"total_steps": 2000, "warmup_steps": 500, "num_evals": 2},
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
    "muzero": {"total_steps": 640, "warmup_steps": 256, "num_evals": 2},
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def array_hash(x: np.ndarray) -> str:
    x = np.ascontiguousarray(x)
    return _sha(f"{x.dtype}{x.shape}".encode() + x.tobytes())


def cpu() -> dict:
    """``{"model": str, "isa": [flags]}`` of this machine (Linux /proc/cpuinfo, else
    ``platform.processor()`` with no flags)."""
    info = Path("/proc/cpuinfo")
    fields = {}
    if info.exists():
        for line in info.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "isa": sorted(f for f in flags if f.startswith(ISA_PREFIXES)),
    }


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
    floats = [x for x in leaves if np.issubdtype(x.dtype, np.floating)]
    return {
        "env": env_name,
        "cpu": cpu(),
        "final_returns": [float(x) for x in curve[:, -1]],
        "curve_hash": array_hash(curve),
        "state_hashes": sorted(array_hash(x) for x in leaves),
        "state_norms": sorted(float(np.linalg.norm(x.astype(np.float64))) for x in floats),
        "seconds": round(seconds, 1),
    }


def compare(name: str, want: dict, got: dict) -> tuple[str, list[str]]:
    """``(mode, problems)``: ``"bitwise"`` on the recording CPU, else ``"tolerance"``;
    ``problems`` is empty when the entry holds in that mode."""
    if want.get("cpu", got["cpu"]) == got["cpu"]:  # an entry without a CPU: as before
        return "bitwise", compare_bitwise(want, got)
    return "tolerance", compare_tolerance(want, got)


def compare_tolerance(want: dict, got: dict) -> list[str]:
    """Final returns within ``RETURN_TOL`` and sorted state norms within ``NORM_RTOL``."""
    problems = []
    w, g = np.asarray(want["final_returns"]), np.asarray(got["final_returns"])
    if w.shape != g.shape or np.any(np.abs(g - w) > RETURN_TOL * (1 + np.abs(w))):
        problems.append(f"final returns {g.tolist()} vs {w.tolist()} (tolerance {RETURN_TOL})")
    if "state_norms" not in want:
        problems.append("no state norms recorded: --record on this CPU")
        return problems
    wn, gn = np.asarray(want["state_norms"]), np.asarray(got["state_norms"])
    if wn.shape != gn.shape:
        problems.append(f"{len(gn)} float state arrays, {len(wn)} recorded")
    elif not np.allclose(gn, wn, rtol=NORM_RTOL, atol=1e-6):
        bad = int(np.sum(~np.isclose(gn, wn, rtol=NORM_RTOL, atol=1e-6)))
        problems.append(f"{bad} of {len(wn)} state norms off by more than {NORM_RTOL:.0%}")
    return problems


def compare_bitwise(want: dict, got: dict) -> list[str]:
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
        mode, problems = compare(name, recorded[name], got)
        extra = len(got["state_hashes"]) - len(recorded[name]["state_hashes"])
        note = f" (+{extra} new state arrays)" if extra > 0 and not problems else ""
        status = "ok" if not problems else "CHANGED: " + "; ".join(problems)
        print(f"{name:10s} {mode:9s} {status}{note}  ({got['seconds']} s)")
        if problems:
            failed.append(name)
    if args.record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        tmp.replace(RESULTS)
        print(f"wrote {RESULTS}")
        return 0
    print("golden: all equal" if not failed else f"golden: changed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
