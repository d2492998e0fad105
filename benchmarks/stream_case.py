"""Bench case ``stream_cartpole``: streaming steps per second for 1 and 32 vmapped seeds.

Stream AC(lambda) with its defaults on ``cartpole``, ``budget.stream_steps`` env steps
per seed, one evaluation at the end. ``per_step_cost_32_over_1`` is the wall time of a
32-seed run over that of a 1-seed run of the same length: the cost of one streaming
step for 32 learners relative to one (issue target: at most 4; lower is better).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from benchmarks import harness

SEED_COUNTS = (1, 32)


def stream_train(steps: int) -> tuple[Callable, Any, dict[str, Any]]:
    from jaxrl import envs
    from jaxrl.agents.stream import stream_ac

    config = stream_ac.Config(total_steps=steps, num_evals=1)
    train = stream_ac.SPEC.make_train(config, envs.make("cartpole"))
    settings = {"algo": "stream_ac", "env": "cartpole", "config": config.__dict__.copy()}
    settings["config"]["hidden"] = list(config.hidden)
    return train, stream_ac.SPEC.default_hparams(), settings


def stream_cartpole(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """jaxrl stream AC on CartPole at 1 and 32 vmapped seeds, alternating rounds."""
    from jaxrl import sweep

    steps = budget.stream_steps
    train, hparams, settings = stream_train(steps)
    runners: dict[str, Callable[[], Any]] = {}
    compile_s: dict[str, float] = {}
    for n in SEED_COUNTS:
        keys = sweep.seed_keys(0, n)
        compiled, compile_s[str(n)] = harness.timed(
            lambda keys=keys, n=n: sweep.over_seeds(train, n).lower(keys, hparams).compile()
        )
        runners[str(n)] = lambda compiled=compiled, keys=keys: compiled(keys, hparams)[1]
    runs = harness.alternate(runners, budget.repeats, warmup=1)
    per_count: dict[str, Any] = {}
    for n, rs in runs.items():
        seconds = [s for _, s in rs]
        final = rs[-1][0]["eval_return"][:, -1]
        per_count[n] = {
            "compile_seconds": compile_s[n],
            "run_seconds": seconds,
            "median_seconds": harness.median(seconds),
            "env_steps_per_second": harness.median([steps * int(n) / s for s in seconds]),
            "final_return": float(final.mean()),
        }
    one, many = (per_count[str(n)] for n in SEED_COUNTS)
    jaxrl = {
        "status": "ok",
        # The row in the table: the single-learner stream, as the reference runs it.
        "compile_seconds": one["compile_seconds"],
        "env_steps_per_second": one["env_steps_per_second"],
        "final_return": one["final_return"],
        "seed_counts": per_count,
    }
    return {
        "settings": settings
        | {
            "steps_per_seed": steps,
            "seed_counts": list(SEED_COUNTS),
            "repeats": budget.repeats,
            "devices": len(jax.devices()),
            "notes": [
                "one untimed warm-up round, then alternating timed rounds (1 seed, 32 seeds)",
                "run time includes one 16-episode evaluation at the end of each run",
                "seeds run through jaxrl.sweep.over_seeds: under the CLI one JAX device per "
                "CPU core (jaxrl.sweep.use_cpu_cores), so 32 learners use every core, while "
                "one learner runs on one (experiments/seed_scaling.py)",
            ],
        },
        "contenders": {"jaxrl": jaxrl},
        f"per_step_cost_{SEED_COUNTS[1]}_over_{SEED_COUNTS[0]}": (
            many["median_seconds"] / one["median_seconds"]
        ),
    }
