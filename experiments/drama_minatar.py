"""Drama on MinAtar against PPO and a uniformly random policy at equal env steps, and
Mamba against a same-size Transformer as Drama's sequence model (CPU scale).

Drama's claim (Wang et al., 2024, ICLR 2025, "Drama: Mamba-Enabled Model-Based
Reinforcement Learning Is Sample and Parameter Efficient") is sample efficiency on
Atari100k; the paper has no MinAtar number. Here every method gets the same env-step
budget per game:

- Drama, a reduced CPU size (``SMALL`` over ``drama.Config``; ``--set k=v`` overrides),
  vmapped seeds, with its Mamba-2 sequence model on every game and with a causal
  Transformer of about the same size on ``--transformer-games``
  (``sequence_model="transformer"``: ``ff_mult=1``, rotary positions, a KV cache of
  ``max(wm_seq_len, context_len + horizon)`` steps);
- PPO, a small MinAtar setting on flattened observations (8 envs x 32 steps,
  4 epochs x 4 minibatches, 2x64 tanh MLP), vmapped seeds;
- a uniformly random policy over many episodes.

Score: the final evaluation return per seed (``num_eval_envs`` greedy episodes); IQM
and 95% stratified bootstrap CI over seeds (``jaxrl.report``). Every method's final
agents are also evaluated with sampled actions (the ``sampled`` evaluation hook,
``jaxrl.transforms.sampled``: the same routine, ``explore=True``), recorded per seed as
``sampled`` beside ``greedy`` (same episodes and keys), since a greedy evaluation turns
an untrained or flat policy into one repeated action. Time per update: one
jitted Drama update (``agent.update`` on a replay-shaped batch) timed after warm-up.

    python experiments/drama_minatar.py                      # the committed run
    python experiments/drama_minatar.py --games minatar/breakout --steps 2560 \
        --drama-seeds 1 --ppo-seeds 1 --smoke                 # minutes-scale smoke run

Writes experiments/results/drama_minatar.{json,png} (``--out`` elsewhere); its table is
rendered from the JSON by ``python -m jaxrl.report build`` (docs/results.md).
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

from jaxrl import envs, loops, runner
from jaxrl.agents.model_based import drama
from jaxrl.agents.on_policy import ppo
from jaxrl.cli import parse_overrides
from jaxrl.core import Agent
from jaxrl.data.sequences import SequenceBatch
from jaxrl.logging import atomic_write, new_figure, save_figure
from jaxrl.report.renderers import RENDERERS
from jaxrl.transforms import sampled

RESULTS = Path(__file__).parent / "results"
GAMES = ("minatar/breakout", "minatar/asterix")
SEQUENCE_MODELS = ("mamba", "transformer")
#: Drama at a size this shared 2-core CPU can train in the budget (``drama.Config``
#: defaults otherwise): ~0.2 s per update there instead of ~0.9 s for the defaults.
SMALL = {"d_model": 64, "hidden": 128, "ac_hidden": 128, "img_batch": 64, "wm_batch": 8}
PPO_CONFIG = {
    "num_envs": 8,
    "rollout_len": 32,
    "num_epochs": 4,
    "num_minibatches": 4,
    "num_evals": 10,
    "num_eval_envs": 16,
}
#: The paper evaluates on Atari100k only (../shared/PAPERS.md, "Drama").
PAPER = (
    "no MinAtar number in the paper; its claim is sample efficiency on Atari100k "
    "(100k agent steps) with a ~7M-parameter Mamba-2 world model (Wang et al. 2024, "
    "ICLR 2025; ../shared/PAPERS.md)"
)


def run_drama(game: str, steps: int, seeds: int, overrides: dict, out: Path) -> dict:
    result = runner.run(
        with_sampled_hook(drama.SPEC),
        game,
        seeds=seeds,
        steps=steps,
        config=overrides,
        out=out,
        progress=False,
        log=None,
    )
    m = result.metrics
    return {
        "seconds": result.summary["compile_seconds"] + result.summary["run_seconds"],
        "compile_seconds": result.summary["compile_seconds"],
        "run_seconds": result.summary["run_seconds"],
        "env_steps": m["env_steps"][0].tolist(),
        "returns": m["eval_return"].tolist(),
        **final_evaluations(result.summary),
    }


def final_evaluations(summary: dict) -> dict:
    """The ``sampled`` hook's per-seed final returns: sampled and greedy actions."""
    return {
        "sampled": summary["sampled_returns"],
        "greedy": summary["greedy_returns"],
        "final_eval_episodes": summary["sampled_episodes"],
    }


def with_sampled_hook(spec):
    """``spec`` with the ``sampled`` evaluation hook (Drama's spec declares it itself)."""
    if sampled.HOOK in spec.eval_hooks:
        return spec
    return dataclasses.replace(spec, eval_hooks=(*spec.eval_hooks, sampled.HOOK))


def run_ppo(game: str, steps: int, seeds: int, out: Path) -> dict:
    result = runner.run(
        with_sampled_hook(ppo.SPEC),
        game,
        seeds=seeds,
        steps=steps,
        config=PPO_CONFIG,
        env_kwargs={"flatten": True},
        out=out,
        progress=False,
        log=None,
    )
    m = result.metrics
    return {
        "seconds": result.summary["compile_seconds"] + result.summary["run_seconds"],
        "env_steps": m["env_steps"][0].tolist(),
        "returns": m["eval_return"].tolist(),
        **final_evaluations(result.summary),
    }


def run_random(game: str, episodes: int) -> dict:
    env = envs.make(game)
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


def time_update(game: str, config: drama.Config, repeats: int) -> dict:
    """Seconds per jitted Drama update (after one warm-up call) and parameter counts."""
    env = envs.make(game)
    agent = drama.make_agent(config, env, drama.SPEC.default_hparams())
    state = agent.init(jax.random.PRNGKey(0))
    obs_shape = env.observation_spec.shape

    def seqs(key, b, t):
        k1, k2, k3 = jax.random.split(key, 3)
        return {
            "obs": (jax.random.uniform(k1, (b, t, *obs_shape)) < 0.1).astype(jnp.float32),
            "action": jax.random.randint(k2, (b, t), 0, env.action_spec.num_actions),
            "reward": (jax.random.uniform(k3, (b, t)) < 0.1).astype(jnp.float32),
            "terminated": jnp.zeros((b, t), jnp.bool_),
        }

    batch = SequenceBatch(
        wm=seqs(jax.random.PRNGKey(1), config.wm_batch, config.wm_seq_len),
        img=seqs(jax.random.PRNGKey(2), config.img_batch, config.context_len),
    )
    update = jax.jit(agent.update)
    t0 = time.perf_counter()
    state = jax.block_until_ready(update(state, batch, jax.random.PRNGKey(3))[0])
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        state = jax.block_until_ready(update(state, batch, jax.random.PRNGKey(4 + i))[0])
        times.append(time.perf_counter() - t0)
    wm_params = state.wm_params["params"]["mamba"]
    return {
        "update_seconds_median": float(np.median(times)),
        "update_seconds": times,
        "first_call_seconds": compile_s,
        "world_model_params": drama.world_model_param_count(config, env),
        "sequence_model_params": int(sum(x.size for x in jax.tree.leaves(wm_params))),
    }


def final_scores(returns: list) -> np.ndarray:
    """``[seeds]`` final evaluation return of each seed."""
    return np.asarray(returns, np.float64)[:, -1]


def plot(results: dict, path: Path) -> None:
    games = list(results["games"])
    fig, axes = new_figure(1, len(games), figsize=(5 * len(games), 3.6), squeeze=False)
    for ax, game in zip(axes[0], games, strict=True):
        g = results["games"][game]
        for name, r in g["methods"].items():
            x = np.asarray(r["env_steps"])
            y = np.asarray(r["returns"], np.float64)
            ax.plot(x, y.mean(0), label=f"{name} ({len(y)} seeds)")
            ax.fill_between(x, y.min(0), y.max(0), alpha=0.15)
        ax.axhline(g["random"]["mean"], color="k", ls="--", lw=1, label="random")
        ax.set_title(game)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return (mean, min-max band)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "drama_minatar.json", json.dumps(results, indent=1))
    plot(results, out / "drama_minatar.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", default=",".join(GAMES))
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--drama-seeds", type=int, default=3)
    parser.add_argument("--ppo-seeds", type=int, default=5)
    parser.add_argument("--random-episodes", type=int, default=512)
    parser.add_argument(
        "--transformer-games",
        default=GAMES[0],
        help="games (comma-separated) where Drama also trains with the Transformer",
    )
    parser.add_argument("--timing-repeats", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--runs", default="runs/drama_minatar", help="run folders")
    parser.add_argument("--smoke", action="store_true", help="tiny evaluation settings")
    args = parser.parse_args()
    out, runs = Path(args.out), Path(args.runs)
    overrides, _ = parse_overrides(args.set, drama.Config, drama.HParams)
    overrides = SMALL | overrides
    if args.smoke:
        overrides = {"warmup_steps": 256, "num_evals": 2, "num_eval_envs": 2} | overrides
    t_start = time.perf_counter()
    results: dict = {
        "steps": args.steps,
        "drama_overrides": overrides,
        "ppo_config": PPO_CONFIG,
        "random_episodes": args.random_episodes,
        "timing_repeats": args.timing_repeats,
        "jax_backend": jax.default_backend(),
        "paper": PAPER,
        "games": {},
        "timing": {},
    }
    for model in SEQUENCE_MODELS:
        config = drama.Config(**(overrides | {"sequence_model": model}))
        results["timing"][model] = time_update(
            args.games.split(",")[0], config, args.timing_repeats
        )
        print(f"timing {model}: {results['timing'][model]['update_seconds_median']:.3f} s/update")
    for game in args.games.split(","):
        name = game.split("/", 1)[1]
        g = {"random": run_random(game, args.random_episodes), "methods": {}}
        results["games"][game] = g
        t0 = time.perf_counter()
        g["methods"]["PPO"] = run_ppo(game, args.steps, args.ppo_seeds, runs / name / "ppo")
        print(f"{game} PPO {time.perf_counter() - t0:.0f}s", flush=True)
        models = ["mamba"] + (["transformer"] if game in args.transformer_games else [])
        for model in models:
            t0 = time.perf_counter()
            label = f"Drama ({model.capitalize()})"
            g["methods"][label] = run_drama(
                game,
                args.steps,
                args.drama_seeds,
                overrides | {"sequence_model": model},
                runs / name / f"drama_{model}",
            )
            s = final_scores(g["methods"][label]["returns"])
            print(f"{game} {label} {time.perf_counter() - t0:.0f}s final {s}", flush=True)
            results["total_seconds"] = time.perf_counter() - t_start
            write(results, out)  # after every run, so a cut-short run keeps what finished
    print(RENDERERS["drama_minatar"].render(results))
    print(f"total {results['total_seconds']:.0f}s")


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
