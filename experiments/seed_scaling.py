"""Why 16 vmapped seeds cost 0.7x a seed each on one XLA:CPU device, and the fix.

    python experiments/seed_scaling.py [--steps 50000]

1. Micro-benchmark: the batched matmuls of PPO's 64x64 networks (the weight gradient
   ``x^T dy`` per seed, the forward ``x W`` per seed) inside a compiled loop, at 1 and
   16 seeds. At one seed the 64x64 dots already run near one core's peak, so batching
   seeds cannot make a seed's FLOPs cheaper on that core.
2. PPO on CartPole (rejax's settings, as in ``jaxrl bench``) and stream AC: 1 and N
   vmapped seeds, wall and CPU seconds, on one device and with one JAX CPU device per
   core (``jaxrl.sweep.use_cpu_cores``, what the CLI does), each in its own process.
3. Results: the N-seed run's final state and metrics, one device against one per core.

Writes ``experiments/results/seed_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
SHAPES = ((100, 4, 64), (100, 64, 64), (100, 64, 2))  # (minibatch, in, out) of PPO's layers


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def dots(loops: int = 500) -> list[dict]:
    """GFLOP/s of each batched matmul of PPO's layers at 1 and 16 seeds (one device)."""
    import jax
    import jax.numpy as jnp

    def in_loop(op):
        def f(a, b):
            def body(_, acc):
                return acc + op(a + acc.ravel()[0] * 1e-9, b)

            return jax.lax.fori_loop(0, loops, body, jnp.zeros_like(op(a, b)))

        return jax.jit(f)

    ops = {
        "weight_grad": (lambda x, g: jnp.einsum("sbi,sbo->sio", x, g), "x", "g"),
        "forward": (lambda x, w: jnp.einsum("sbi,sio->sbo", x, w), "x", "w"),
    }
    rows = []
    key = jax.random.PRNGKey(0)
    for seeds in (1, 16):
        for batch, n_in, n_out in SHAPES:
            arrays = {
                "x": jax.random.normal(key, (seeds, batch, n_in)),
                "g": jax.random.normal(key, (seeds, batch, n_out)),
                "w": jax.random.normal(key, (seeds, n_in, n_out)),
            }
            for name, (op, a, b) in ops.items():
                fn, args = in_loop(op), (arrays[a], arrays[b])
                jax.block_until_ready(fn(*args))
                best = min(_wall(fn, *args) for _ in range(5))
                flops = 2 * seeds * batch * n_in * n_out * loops
                rows.append(
                    {
                        "op": name,
                        "seeds": seeds,
                        "shape": [batch, n_in, n_out],
                        "us_per_call": best / loops * 1e6,
                        "us_per_seed": best / loops * 1e6 / seeds,
                        "gflops": flops / best / 1e9,
                    }
                )
    return rows


def _wall(fn, *args) -> float:
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def runs(steps: int, stream_steps: int, seeds: int, stream_seeds: int, save: str) -> dict:
    """PPO and stream AC at 1 and N seeds in this process's device setup: wall and CPU s."""
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT))  # the checkout's benchmarks/ (not installed with jaxrl)
    from benchmarks.cases import jaxrl_ppo_train
    from benchmarks.stream_case import stream_train
    from jaxrl import sweep

    out: dict = {"devices": len(jax.devices())}
    cases = {
        "ppo": (jaxrl_ppo_train(steps), (1, seeds)),
        "stream_ac": (stream_train(stream_steps)[:2], (1, stream_seeds)),
    }
    for name, ((train, hparams), counts) in cases.items():
        out[name] = {}
        for n in counts:
            keys = sweep.seed_keys(0, n)
            compiled = sweep.over_seeds(train, n).lower(keys, hparams).compile()
            result = jax.block_until_ready(compiled(keys, hparams))
            timings = []
            for _ in range(3):
                c0, t0 = _cpu_seconds(), time.perf_counter()
                result = jax.block_until_ready(compiled(keys, hparams))
                timings.append((time.perf_counter() - t0, _cpu_seconds() - c0))
            wall, cpu = min(timings)
            out[name][str(n)] = {"wall_seconds": wall, "cpu_seconds": cpu}
            if name == "ppo" and n == seeds:
                leaves = jax.tree.leaves(result)
                np.savez(save, *[np.asarray(x) for x in leaves])
        one, many = (out[name][str(n)]["wall_seconds"] for n in counts)
        out[name]["per_seed_relative"] = many / counts[1] / one
        out[name]["cost_many_over_one"] = many / one
    return out


def _child(devices: int, args: argparse.Namespace, save: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_NUM_CPU_DEVICES"] = str(devices)
    cmd = [sys.executable, __file__, "--child", save, "--steps", str(args.steps)]
    cmd += ["--stream-steps", str(args.stream_steps)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(a: str, b: str) -> dict:
    """How many leaves of two saved states differ, and by how much at most."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        differ = [k for k in x.files if not np.array_equal(x[k], y[k], equal_nan=True)]
        worst = max((float(np.nanmax(np.abs(x[k] - y[k]))) for k in differ), default=0.0)
        return {"leaves": len(x.files), "differing_leaves": len(differ), "max_abs_diff": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--stream-steps", type=int, default=10_000)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from jaxrl import compile_cache

    compile_cache.configure()
    if args.child:
        print(json.dumps(runs(args.steps, args.stream_steps, 16, 32, args.child)))
        return
    from jaxrl import sweep

    cores = sweep.cpu_cores()
    tmp = Path("/tmp") if Path("/tmp").exists() else RESULTS
    states = {d: str(tmp / f"seed_scaling_state_{d}.npz") for d in (1, cores)}
    result = {
        "cpu_cores": cores,
        "dots": dots(),
        "one_device": _child(1, args, states[1]),
        "one_device_per_core": _child(cores, args, states[cores]),
        "steps": args.steps,
        "stream_steps": args.stream_steps,
    }
    result["results_one_device_vs_per_core"] = compare(states[1], states[cores])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "seed_scaling.json").write_text(json.dumps(result, indent=2))
    md = _markdown(result)
    (RESULTS / "seed_scaling.md").write_text(md)
    print(md)


def _markdown(r: dict) -> str:
    lines = ["# Seed scaling on one XLA:CPU device and on one device per core", ""]
    lines += ["## Batched matmuls of PPO's layers (one device, in a compiled loop)", ""]
    lines += ["| op | seeds | [batch, in, out] | us per call | us per seed | GFLOP/s |"]
    lines += ["|---|---|---|---|---|---|"]
    for d in r["dots"]:
        lines.append(
            f"| {d['op']} | {d['seeds']} | {d['shape']} | {d['us_per_call']:.1f} | "
            f"{d['us_per_seed']:.2f} | {d['gflops']:.1f} |"
        )
    lines += ["", "## Whole runs", ""]
    lines += [
        "| learner | devices | seeds | wall s | CPU s | per-seed time vs 1 seed | cost vs 1 |"
    ]
    lines += ["|---|---|---|---|---|---|---|"]
    for setup in ("one_device", "one_device_per_core"):
        run = r[setup]
        for name, n in (("ppo", 16), ("stream_ac", 32)):
            for count in ("1", str(n)):
                f = run[name][count]
                many = count != "1"
                rel = f"{run[name]['per_seed_relative']:.2f}" if many else "1"
                cost = f"{run[name]['cost_many_over_one']:.2f}" if many else "1"
                lines.append(
                    f"| {name} | {run['devices']} | {count} | {f['wall_seconds']:.3f} | "
                    f"{f['cpu_seconds']:.3f} | {rel} | {cost} |"
                )
    c = r["results_one_device_vs_per_core"]
    lines += [
        "",
        f"PPO's 16-seed final state and metrics, one device against one per core: "
        f"{c['differing_leaves']} of {c['leaves']} leaves differ, by at most "
        f"{c['max_abs_diff']:.3g}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
