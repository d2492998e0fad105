"""MuZero (a learned model, Gumbel and PUCT search) against PPO at equal env steps on a
small assistance game, with AlphaZero (the same search through the true simulator) and
the simulated human alone for reference.

Every method trains ``--steps`` env steps on ``--seeds`` vmapped seeds with the same
discount, then plays ``--episodes`` evaluation episodes per seed (deterministic
actions; the same episodes for every method). The game's undiscounted return telescopes
(a finished episode returns the number of cells to fix at reset, whoever fixes them), so
the table reports what separates assistants: the human's actions until the goal is done
and the episode length (shorter is what a discount below 1 pays for). IQM and 95%
stratified bootstrap CIs over seeds (``jaxrl.report``).

    python experiments/muzero_assist.py            # ~6 min on 2 cores

Writes experiments/results/muzero_assist.json (per seed; rewritten after each method).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import agents, compile_cache, envs, sweep
from jaxrl.envs import assist
from jaxrl.logging import atomic_write

RESULTS = Path(__file__).parent / "results"

METHODS: dict[str, tuple[str, dict]] = {
    "MuZero Gumbel (learned model)": ("muzero", {}),
    "PPO": ("ppo", {"rollout_len": 32, "num_minibatches": 4, "hidden": (128, 128)}),
    "MuZero PUCT (learned model)": ("muzero", {"search": "puct"}),
    "AlphaZero Gumbel (true simulator)": (
        "alphazero",
        {"num_simulations": 32, "max_considered": 8},
    ),
}


def run_method(algo: str, overrides: dict, env_name: str, args) -> dict:
    spec = agents.get(algo)
    env = envs.make(env_name)
    config = spec.make_config(env_name, total_steps=args.steps, num_evals=args.evals, **overrides)
    hparams = spec.default_hparams(gamma=args.gamma)
    t0 = time.perf_counter()
    states, metrics = sweep.over_seeds(spec.make_train(config, env), args.seeds)(
        sweep.seed_keys(0, args.seeds), hparams
    )
    jax.block_until_ready(states)
    train_s = time.perf_counter() - t0
    agent = spec.make_agent(config, env, hparams, spec.schedule(config, env))
    keys = jax.random.split(jax.random.PRNGKey(123), args.seeds)

    def evaluate(state, key):
        def policy(obs, k, env_state):
            return agent.act(state, obs, k, False, env_state=env_state)[0]

        return assist.episode_metrics(policy, env, key, args.episodes)

    out = jax.jit(jax.vmap(evaluate))(states, keys)
    per_seed = {k: np.asarray(v, np.float64).mean(-1).tolist() for k, v in out.items()}
    return per_seed | {
        "algo": algo,
        "train_seconds": train_s,
        "eval_return": np.asarray(metrics["eval_return"]).tolist(),  # [S, evals]
        "env_steps": np.asarray(metrics["env_steps"][0]).tolist(),
        "config": {k: str(v) for k, v in dataclasses.asdict(config).items()},
    }


def human_alone(env_name: str, seeds: int, episodes: int) -> dict:
    env = envs.make(env_name)

    def evaluate(key):
        noop = lambda obs, k, s: jnp.zeros(obs.shape[0], jnp.int32)  # noqa: E731
        return assist.episode_metrics(noop, env, key, episodes)

    out = jax.jit(jax.vmap(evaluate))(jax.random.split(jax.random.PRNGKey(123), seeds))
    return {k: np.asarray(v, np.float64).mean(-1).tolist() for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="assist/build-3x3")
    parser.add_argument("--steps", type=int, default=12_288)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--evals", type=int, default=6)
    parser.add_argument("--gamma", type=float, default=0.5, help="every method's discount")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=RESULTS / "muzero_assist.json")
    args = parser.parse_args()
    compile_cache.configure()
    t0 = time.perf_counter()
    blob = {
        "env": args.env,
        "steps": args.steps,
        "seeds": args.seeds,
        "episodes": args.episodes,
        "gamma": args.gamma,
        "human_alone": human_alone(args.env, args.seeds, args.episodes),
        "methods": {},
    }
    for name in args.methods.split(","):
        algo, overrides = METHODS[name]
        blob["methods"][name] = run_method(algo, overrides, args.env, args)
        blob["wall_seconds"] = time.perf_counter() - t0
        atomic_write(args.out, json.dumps(blob, indent=1).encode())
        r = blob["methods"][name]
        print(
            f"{name}: {r['train_seconds']:.0f} s; human actions "
            f"{np.mean(r['human_actions']):.2f}, length {np.mean(r['length']):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
