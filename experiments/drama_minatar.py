"""Drama on a MinAtar task against PPO and a uniformly random policy at the same env-step
budget (CPU scale).

    python experiments/drama_minatar.py --env minatar/breakout --steps 20000 \
        --drama-seeds 2 --ppo-seeds 4 --out runs/drama_minatar

Drama runs with its CPU-sized defaults (``jaxrl.agents.model_based.drama.Config``; ``--set k=v``
overrides), PPO with a small MinAtar setting on flattened observations (8 envs x 32
steps, 4 epochs x 4 minibatches, 2x64 tanh MLP), the random policy over 64 episodes.
Writes ``drama_minatar.json`` (evaluation returns per seed and evaluation point, world
model parameter counts, wall times) and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import envs, loops, runner
from jaxrl.agents.model_based import drama
from jaxrl.agents.on_policy import ppo
from jaxrl.cli import parse_overrides
from jaxrl.core import Agent
from jaxrl.logging import atomic_write


def run_drama(env_name: str, steps: int, seeds: int, overrides: list[str], out: Path) -> dict:
    config_over, hparam_over = parse_overrides(overrides, drama.Config, drama.HParams)
    config = drama.Config(**({"total_steps": steps} | config_over))
    env = envs.make(env_name)
    result = runner.run(
        drama.SPEC,
        env_name,
        seeds=seeds,
        steps=steps,
        config=config_over,
        hparams=hparam_over,
        out=out,
        progress=False,
        log=None,
    )
    metrics = result.metrics
    return {
        "seconds": result.summary["compile_seconds"] + result.summary["run_seconds"],
        "world_model_params": drama.world_model_param_count(config, env),
        "paper_world_model_params": drama.world_model_param_count(drama.paper_config(), env),
        "env_steps": metrics["env_steps"][0].tolist(),
        "returns": metrics["eval_return"].tolist(),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()},
    }


def run_ppo(env_name: str, steps: int, seeds: int, out: Path) -> dict:
    name = env_name.split("/", 1)[1]
    config = {
        "num_envs": 8,
        "rollout_len": 32,
        "num_epochs": 4,
        "num_minibatches": 4,
        "num_evals": 10,
        "num_eval_envs": 16,
    }
    result = runner.run(
        ppo.SPEC,
        f"minatar/{name}",
        seeds=seeds,
        steps=steps,
        config=config,
        env_kwargs={"flatten": True},
        out=out,
        progress=False,
        log=None,
    )
    metrics = result.metrics
    return {
        "seconds": result.summary["compile_seconds"] + result.summary["run_seconds"],
        "env_steps": metrics["env_steps"][0].tolist(),
        "returns": metrics["eval_return"].tolist(),
    }


def run_random(env_name: str, episodes: int = 64) -> dict:
    env = envs.make(env_name)
    spec = env.action_spec
    agent = Agent(
        init=lambda key: None,
        act=lambda state, obs, key, explore=True, **_: (
            jax.vmap(spec.sample)(jax.random.split(key, obs.shape[0])),
            {},
        ),
        update=lambda state, batch, key: (state, {}),
    )
    mean, std = jax.jit(lambda k: loops.evaluate(agent, None, env, k, episodes))(
        jax.random.PRNGKey(0)
    )
    return {"episodes": episodes, "mean": float(mean), "std": float(std)}


def table(results: dict) -> str:
    rows = [("method", "final return (mean over seeds)", "per seed", "seconds")]
    for name in ("drama", "ppo"):
        r = results[name]
        final = np.asarray(r["returns"])[:, -1]
        rows.append(
            (
                name,
                f"{final.mean():.2f}",
                ", ".join(f"{x:.2f}" for x in final),
                f"{r['seconds']:.0f}",
            )
        )
    rnd = results["random"]
    rows.append(("random", f"{rnd['mean']:.2f}", f"{rnd['episodes']} episodes", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="minatar/breakout")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--drama-seeds", type=int, default=2)
    parser.add_argument("--ppo-seeds", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="runs/drama_minatar")
    args = parser.parse_args()
    results = {
        "env": args.env,
        "steps": args.steps,
        "random": run_random(args.env),
        "ppo": run_ppo(args.env, args.steps, args.ppo_seeds, Path(args.out) / "runs" / "ppo"),
    }
    print(f"random: {results['random']['mean']:.2f}; ppo done", flush=True)
    drama_dir = Path(args.out) / "runs" / "drama"
    results["drama"] = run_drama(args.env, args.steps, args.drama_seeds, args.set, drama_dir)
    results["jax_backend"] = jax.default_backend()
    atomic_write(Path(args.out) / "drama_minatar.json", json.dumps(results, indent=1))
    print(table(results))
    print(
        f"world model parameters: {results['drama']['world_model_params']:,} (CPU config), "
        f"{results['drama']['paper_world_model_params']:,} (paper config)"
    )


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
