"""AssistanceZero vs PPO vs imitation (BC) vs the no-human-model ablation on an
``assist/*`` game where helping pays (a cost per human action), with the simulated human
alone as the floor.

Every assistant trains for the same env steps against the simulated human (its
temperature: the recorded one), over ``--seeds`` vmapped seeds:

- AssistanceZero (Gumbel, 64 simulations over 8 considered actions) and AZ PUCT (64
  simulations) plan with a human model learned by behaviour cloning on recorded episodes
  of the simulated human (``human_source="learned_bc"``), with value targets from
  discounted returns of real rewards (``value_target="n_step"``);
- the ablation plans with no human in its tree;
- BC is an assistant cloned from recorded human-human games (a second scripted human in
  the assistant's seat), as the paper's imitation baseline;
- PPO learns from the game's reward.

Each method's ``human_model_source`` says how its search's human model was obtained
(``"learned_bc"``, ``"scripted"``, or ``"none"`` without one). During training, after
each of ``num_evals`` periods, curves record what separates assistants: the human's
actions, the episode length and the discounted return (``--curve-episodes`` episodes).
At the end every seed plays ``--episodes`` evaluation episodes (deterministic actions)
with the recorded human and with one of ``--eval-temperature``. Metrics per seed: goal
completion, the human's grid-changing actions until the goal is done (the paper's
human-study metric), human actions saved relative to the human alone, the episode
length and the discounted return. IQM and 95% stratified bootstrap CIs over seeds
(``jaxrl.report``).

    python experiments/assistance_game.py                 # 10 seeds; see README for time
    python experiments/assistance_game.py --seeds 2 --steps 2048 --out /tmp/ag   # smoke

Writes ``assistance_game.json`` (per seed) and ``.png`` under ``--out``
(experiments/results); its table is rendered from the JSON by
``python -m jaxrl.report build`` (docs/results.md, README).
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
#: Env steps per seed of the full run (sized to about 30-40 min on 2 quiet cores).
STEPS = 30_000

#: For orientation only: their task (MBAG, 3-D houses, 10^400 goals, a human model
#: learned from data) is far larger. Figures as reported in secondary summaries of
#: Laidlaw et al. 2025 (arXiv 2504.07091); not checked against the paper's tables.
PAPER = {
    "AssistanceZero": "goal 79.8%; human study: ~37% fewer human actions",
    "AZ PUCT": "the paper's search: PUCT, 100 simulations, c = 1",
    "PPO": "learns little help (paper: below AssistanceZero)",
    "BC (assistant from human data)": "below AssistanceZero",
}

#: The search settings of the planners: more simulations than considered actions, so
#: the tree grows past depth 1; values from discounted returns of real rewards.
PLANNER = {
    "human_source": "learned_bc",
    "value_target": "n_step",
    "td_steps": 10,
    "num_simulations": 64,
    "max_considered": 8,
}

#: name: (algorithm, config overrides, human_model_source).
METHODS: dict[str, tuple[str, dict, str]] = {
    "AssistanceZero": ("assistancezero", PLANNER, "learned_bc"),
    "AZ PUCT": ("assistancezero", {**PLANNER, "search": "puct"}, "learned_bc"),
    "AZ without human model": ("assistancezero", {**PLANNER, "human_model": False}, "none"),
    "BC (assistant from human data)": ("assistancezero", {"imitate": True}, "none"),
    "PPO": ("ppo", {"rollout_len": 32, "num_minibatches": 4, "hidden": (128, 128)}, "none"),
}
CURVE_KEYS = ("human_actions", "length", "discounted_return")


def train_and_evaluate(
    name: str,
    algo: str,
    overrides: dict,
    env_name: str,
    steps: int,
    seeds: int,
    episodes: int,
    gamma: float,
    eval_temperature: float,
    num_evals: int,
    curve_episodes: int,
) -> dict:
    """Trains ``seeds`` vmapped seeds period by period (the loop's chunks, bitwise the
    one-shot run), with ``curve_episodes`` episodes of curves after each period, then
    evaluates the final agents with the recorded human and one at ``eval_temperature``."""
    spec = agents.get(algo)
    env = envs.make(env_name)
    other = envs.make(env_name, human_temperature=eval_temperature)
    config = spec.make_config(env_name, total_steps=steps, num_evals=num_evals, **overrides)
    hparams = spec.default_hparams(gamma=gamma)
    trainer = spec.make_train(config, env)
    agent = spec.make_agent(config, env, hparams, spec.schedule(config, env))

    def evaluate(state, key, game, num):
        def policy(obs, k, env_state):
            return agent.act(state, obs, k, False, env_state=env_state)[0]

        return assist.episode_metrics(policy, game, key, num, gamma)

    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)))
    period = jax.jit(jax.vmap(lambda s, h: trainer.run_periods(s, h, 1), in_axes=(0, None)))
    curve_eval = jax.jit(jax.vmap(lambda s, k: evaluate(s, k, env, curve_episodes)))
    t0 = time.perf_counter()
    run = init(sweep.seed_keys(0, seeds), hparams)
    curves: dict[str, list] = {k: [] for k in CURVE_KEYS}
    env_steps = []
    for p in range(trainer.schedule.num_evals):
        run, metrics = period(run, hparams)
        curve_keys = jax.random.split(jax.random.PRNGKey(1000 + p), seeds)
        out = curve_eval(run.agent_state, curve_keys)
        for k in CURVE_KEYS:
            curves[k].append(np.asarray(out[k], np.float64).mean(-1))
        env_steps.append(int(np.asarray(metrics["env_steps"])[0, 0]))
    jax.block_until_ready(run)
    train_s = time.perf_counter() - t0
    eval_keys = jax.random.split(jax.random.PRNGKey(123), seeds)  # same episodes per method
    final = jax.jit(jax.vmap(lambda s, k: evaluate(s, k, env, episodes)))(
        run.agent_state, eval_keys
    )
    shifted = jax.jit(jax.vmap(lambda s, k: evaluate(s, k, other, episodes)))(
        run.agent_state, eval_keys
    )
    print(f"{name}: trained {seeds} x {steps} steps in {train_s:.0f} s", flush=True)
    return summarize(final) | {
        "human_model_source": METHODS[name][2] if name in METHODS else "none",
        "other_human": summarize(shifted),
        "train_seconds": train_s,
        "curves": {
            "env_steps": env_steps,
            **{k: np.stack(v, 1).tolist() for k, v in curves.items()},  # [seeds, evals]
        },
        "config": {k: str(v) for k, v in dataclasses.asdict(config).items()},
    }


def human_alone(env_name: str, seeds: int, episodes: int, gamma: float, **game) -> dict:
    env = envs.make(env_name, **game)

    def evaluate(key):
        return assist.episode_metrics(
            lambda obs, k, s: jnp.zeros(obs.shape[0], jnp.int32), env, key, episodes, gamma
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
    parser.add_argument("--env", default="assist/build-3x3-cost")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--num-evals", type=int, default=5, help="curve points")
    parser.add_argument("--curve-episodes", type=int, default=32)
    parser.add_argument(
        "--eval-temperature",
        type=float,
        default=1.0,
        help="temperature of the second evaluation human (the recorded one: the env's)",
    )
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--gamma", type=float, default=0.95, help="every method's discount")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    compile_cache.configure()
    if not args.env.startswith("assist/"):
        raise ValueError(f"--env must be an assist/<name> game, got {args.env!r}")
    names = args.methods.split(",")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    recorded = envs.make(args.env).unwrapped.config.human_temperature
    t0 = time.perf_counter()
    floor = human_alone(args.env, args.seeds, args.episodes, args.gamma)
    floor["other_human"] = human_alone(
        args.env, args.seeds, args.episodes, args.gamma, human_temperature=args.eval_temperature
    )
    results = {}
    for name in names:
        algo, overrides, _ = METHODS[name]
        results[name] = train_and_evaluate(
            name,
            algo,
            overrides,
            args.env,
            args.steps,
            args.seeds,
            args.episodes,
            args.gamma,
            args.eval_temperature,
            args.num_evals,
            args.curve_episodes,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    blob = {
        "env": args.env,
        "steps": args.steps,
        "seeds": args.seeds,
        "episodes": args.episodes,
        "gamma": args.gamma,
        "recorded_temperature": recorded,
        "eval_temperature": args.eval_temperature,
        "human_action_cost": envs.make(args.env).unwrapped.config.human_action_cost,
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
