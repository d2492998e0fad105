"""AssistanceZero vs PPO vs imitation (BC) vs the no-human-model ablation on the
``assist/build`` game, with the simulated human alone as the floor.

Every assistant trains for the same env steps against the simulated human, over
``--seeds`` vmapped seeds, then plays ``--episodes`` evaluation episodes per seed
(deterministic actions). Metrics per seed: goal completion within the episode
(fraction of episodes), the human's grid-changing actions until the goal is done (the
paper's human-study metric; a whole episode's count when it is not done) and human
actions saved relative to the human alone. IQM and 95% stratified bootstrap CIs over
seeds (``jaxrl.report``).

    python experiments/assistance_game.py                 # ~20-30 min on 2 busy cores
    python experiments/assistance_game.py --full          # 5x longer training, 10 seeds

Writes experiments/results/assistance_game.json (per seed) and .png; its table is rendered
from the JSON by ``python -m jaxrl.report build`` (docs/results.md, README).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import agents, compile_cache, envs, report, sweep
from jaxrl.envs import assist
from jaxrl.logging import atomic_write
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"

#: For orientation only: their task (MBAG, 3-D houses, 10^400 goals, a human model
#: learned from data) is far larger. Figures as reported in secondary summaries of
#: Laidlaw et al. 2025 (arXiv 2504.07091); not checked against the paper's tables.
PAPER = {
    "AssistanceZero": "goal 79.8%; human study: ~37% fewer human actions",
    "PPO": "learns little help (paper: below AssistanceZero)",
    "BC (imitate the human)": "below AssistanceZero",
}

METHODS: dict[str, tuple[str, dict]] = {
    "AssistanceZero": ("assistancezero", {}),
    "AZ without human model": ("assistancezero", {"human_model": False}),
    "BC (imitate the human)": ("assistancezero", {"imitate": True}),
    "PPO": ("ppo", {"rollout_len": 32, "num_minibatches": 4, "hidden": (128, 128)}),
}


def train_and_evaluate(
    name: str,
    algo: str,
    overrides: dict,
    env_name: str,
    steps: int,
    seeds: int,
    episodes: int,
    gamma: float = 0.95,
) -> dict:
    spec = agents.get(algo)
    env = envs.make(env_name)
    config = spec.make_config(env_name, total_steps=steps, num_evals=5, **overrides)
    hparams = spec.default_hparams(gamma=gamma)
    trainer = spec.make_train(config, env)
    t0 = time.perf_counter()
    states, metrics = sweep.over_seeds(trainer, seeds)(sweep.seed_keys(0, seeds), hparams)
    jax.block_until_ready(states)
    train_s = time.perf_counter() - t0
    agent = spec.make_agent(config, env, hparams, spec.schedule(config, env))

    def evaluate(state, key):
        def policy(obs, k, env_state):
            return agent.act(state, obs, k, False, env_state=env_state)[0]

        return assist.episode_metrics(policy, env, key, episodes)

    eval_keys = jax.random.split(jax.random.PRNGKey(123), seeds)  # same episodes per method
    out = jax.jit(jax.vmap(evaluate))(states, eval_keys)
    print(f"{name}: trained {seeds} x {steps} steps in {train_s:.0f} s", flush=True)
    return summarize(out) | {
        "train_seconds": train_s,
        "eval_return": np.asarray(metrics["eval_return"]).tolist(),
        "env_steps": np.asarray(metrics["env_steps"][0]).tolist(),
        "config": {k: str(v) for k, v in dataclasses.asdict(config).items()},
    }


def human_alone(env_name: str, seeds: int, episodes: int) -> dict:
    env = envs.make(env_name)

    def evaluate(key):
        return assist.episode_metrics(
            lambda obs, k, s: jnp.zeros(obs.shape[0], jnp.int32), env, key, episodes
        )

    out = jax.jit(jax.vmap(evaluate))(jax.random.split(jax.random.PRNGKey(123), seeds))
    return summarize(out)


def summarize(out: dict) -> dict:
    """Per-seed means ``[S]`` of the per-episode metrics."""
    return {k: np.asarray(v, np.float64).mean(-1).tolist() for k, v in out.items()}


def ci(values) -> tuple[float, float, float]:
    return report.stratified_bootstrap_ci([np.asarray(values)], report.iqm)


def plot(path: Path, results: dict, floor: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    names = ["human alone", *results]
    for ax, key, label in (
        (axes[0], "human_actions", "human actions to finish (IQM, 95% CI)"),
        (axes[1], "completed", "goal completed (IQM, 95% CI)"),
    ):
        stats = [ci(floor[key])] + [ci(r[key]) for r in results.values()]
        p = np.array([s[0] for s in stats])
        err = np.array([[s[0] - s[1], s[2] - s[0]] for s in stats]).T
        ax.barh(names, p, xerr=err, color=[f"C{i}" for i in range(len(names))])
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, axis="x")
    axes[1].set_yticks([])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="assist/build")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--gamma", type=float, default=0.95, help="every method's discount")
    parser.add_argument("--full", action="store_true", help="150k steps, 10 seeds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    compile_cache.configure()
    if args.full:
        args.steps, args.seeds = 150_000, 10
    if not args.env.startswith("assist/"):
        raise ValueError(f"--env must be an assist/<name> game, got {args.env!r}")
    t0 = time.perf_counter()
    floor = human_alone(args.env, args.seeds, args.episodes)
    results = {}
    for name in args.methods.split(","):
        algo, overrides = METHODS[name]
        results[name] = train_and_evaluate(
            name, algo, overrides, args.env, args.steps, args.seeds, args.episodes, args.gamma
        )
    args.out.mkdir(parents=True, exist_ok=True)
    blob = {
        "env": args.env,
        "steps": args.steps,
        "seeds": args.seeds,
        "episodes": args.episodes,
        "gamma": args.gamma,
        "human_alone": floor,
        "methods": results,
        "paper": PAPER,
        "wall_seconds": time.perf_counter() - t0,
    }
    atomic_write(args.out / "assistance_game.json", json.dumps(blob, indent=1).encode())
    plot(args.out / "assistance_game.png", results, floor)
    print(RENDERERS["assistance_game"].render(blob))
    print(f"wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
