"""Drama on MinAtar against PPO and a uniformly random policy at equal env steps, and
Mamba against a same-size Transformer as Drama's sequence model (CPU scale).

Drama's claim (Wang et al., 2024, ICLR 2025, "Drama: Mamba-Enabled Model-Based
Reinforcement Learning Is Sample and Parameter Efficient") is sample efficiency on
Atari100k; the paper has no MinAtar number. The protocol (issue 33, Build 4): every
method gets the same env steps (``--steps``, checked equal from the schedules before
anything compiles), the same seeds (``--seeds``, 5) and the same evaluation
(``--eval-episodes`` episodes, 16, at each of ``NUM_EVALS`` periods and at the end):

- Drama, a reduced CPU size (``SMALL`` over ``drama.Config``; ``--set k=v`` overrides),
  vmapped seeds, with its Mamba-2 sequence model on every game and with a causal
  Transformer of about the same size on ``--transformer-games``
  (``sequence_model="transformer"``: ``ff_mult=1``, rotary positions, a KV cache of
  ``max(wm_seq_len, context_len + horizon)`` steps);
- PPO, a small MinAtar setting on flattened observations (8 envs x 32 steps,
  4 epochs x 4 minibatches, 2x64 tanh MLP), vmapped seeds;
- a uniformly random policy over many episodes.

Train ratio. The official train.yaml makes one world-model and one actor-critic update
per env step (``TrainDynamicsEverySteps = TrainAgentEverySteps = 1``) on 16 x 128
replayed sequences and 1024 imagined rollouts, after 1032 random steps, for 100k steps;
100k updates of that size are days on this shared 2-core CPU. Here (``PROTOCOL``,
``SMALL``): one update per 2 env steps (``train_every=2``) on 8 x 32 replayed sequences
and 64 imagined rollouts, after the official 1032 random steps, for 5,120 env steps:
2,044 updates per seed. Why: the smoke run below measured 0.069 s per update and seed
(Mamba on Breakout, one seed, acting and evaluation included: 6.7 s for 97 updates);
taking 5 vmapped seeds as 5x that, the Transformer as 1.3x and Asterix as 0.8x (their
ratios in the committed run), the three Drama runs cost ~1.07 s per update, so 2,044
updates are ~37 min, plus ~5 min of compilation, timing, PPO and random: ~42 min of the
hour, the rest a margin for seeds scaling worse than linearly. The same number of
updates at 10,240 env steps would need one per 4 env steps; this keeps the ratio twice
as close to the official one. The departure stays large: half the official updates per
env step and, per update, 8x fewer replayed steps and 16x fewer imagined rollouts.

Score: the final evaluation of each seed's agent, with greedy and with sampled actions
(the ``sampled`` evaluation hook, ``jaxrl.transforms.sampled``: the same routine and
keys, ``explore=True`` or not; a greedy evaluation turns an untrained or flat policy
into one repeated action); IQM and 95% stratified bootstrap CI over seeds
(``jaxrl.report``). Training curves per seed (``[seeds, periods]``, periods at
``env_steps``) under ``train_metrics``: the means over each period's updates of the
agent's update metrics (Drama: policy entropy, imagined reward and return, actor and
critic losses, world-model losses; PPO: entropy and its losses); a period without an
update reports 0 (Drama's first two at the defaults: 1032 warm-up steps, 512 per
period) and the one holding the first update averages in zeros for the iterations
before it (3 of 256 at the defaults). Time per update: one jitted Drama update
(``agent.update`` on a replay-shaped batch) timed after warm-up.

    python experiments/drama_minatar.py                      # the committed run
    python experiments/drama_minatar.py --games minatar/breakout --steps 1024 \
        --seeds 1 --eval-episodes 4 --transformer-games '' --smoke   # ~1.5 min smoke run

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

from jaxrl import compile_cache, envs, loops, runner
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
#: The recorded protocol: seeds, env steps and final-evaluation episodes, equal for every
#: method; evaluations per run (the same periods for Drama and PPO).
SEEDS = 5
STEPS = 5_120
EVAL_EPISODES = 16
NUM_EVALS = 10
#: Drama at a size this shared 2-core CPU can train in the budget (``drama.Config``
#: defaults otherwise; the committed run timed one update at 0.25 s, 0.9 s for the
#: defaults, both on a loaded CPU).
SMALL = {"d_model": 64, "hidden": 128, "ac_hidden": 128, "img_batch": 64, "wm_batch": 8}
#: Drama's training schedule: one update per 2 env steps after the official 1032 random
#: steps (the module docstring says why).
PROTOCOL = {"train_every": 2, "warmup_steps": 1032}
PPO_CONFIG = {"num_envs": 8, "rollout_len": 32, "num_epochs": 4, "num_minibatches": 4}
#: Update metrics recorded as ``[seeds, periods]`` curves (those the agent reports).
DRAMA_CURVES = (
    "entropy",
    "imag_reward",
    "imag_return",
    "actor_loss",
    "critic_loss",
    "wm_loss",
    "recon_loss",
    "reward_loss",
    "term_loss",
    "kl_dyn",
    "kl_rep",
)
PPO_CURVES = ("entropy", "policy_loss", "value_loss")
#: The paper evaluates on Atari100k only (../shared/PAPERS.md, "Drama").
PAPER = (
    "no MinAtar number in the paper; its claim is sample efficiency on Atari100k "
    "(100k agent steps) with a ~7M-parameter Mamba-2 world model (Wang et al. 2024, "
    "ICLR 2025; ../shared/PAPERS.md)"
)


def final_env_steps(spec, game: str, steps: int, config: dict, env_kwargs: dict) -> int:
    """Env steps a run of ``spec`` trains for (its schedule rounds ``steps`` down);
    validates the settings without compiling anything."""
    spec, _, env, cfg, _ = runner.resolve(spec, game, config, None, steps, env_kwargs)
    return spec.schedule(cfg, env).total_steps


def run_method(
    spec, game: str, steps: int, seeds: int, config: dict, out: Path, curves: tuple, **kw
) -> dict:
    """One ``runner.run`` of ``spec`` with the ``sampled`` hook: timings, the periodic
    greedy returns, the final greedy and sampled returns and the ``curves`` of the update
    metrics (``[seeds, periods]``)."""
    result = runner.run(
        with_sampled_hook(spec),
        game,
        seeds=seeds,
        steps=steps,
        config=config,
        out=out,
        progress=False,
        log=None,
        **kw,
    )
    m = result.metrics
    return {
        "seconds": result.summary["compile_seconds"] + result.summary["run_seconds"],
        "compile_seconds": result.summary["compile_seconds"],
        "run_seconds": result.summary["run_seconds"],
        "env_steps": m["env_steps"][0].tolist(),
        "returns": m["eval_return"].tolist(),
        **final_evaluations(result.summary),
        "train_metrics": {k: np.asarray(m[k]).tolist() for k in curves if k in m},
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
    parser.add_argument("--steps", type=int, default=STEPS, help="env steps, every method")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds, every method")
    parser.add_argument("--drama-seeds", type=int, default=None, help="default: --seeds")
    parser.add_argument("--ppo-seeds", type=int, default=None, help="default: --seeds")
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=EVAL_EPISODES,
        help="episodes per evaluation (periodic and final), every method",
    )
    parser.add_argument("--random-episodes", type=int, default=512)
    parser.add_argument(
        "--transformer-games",
        default=GAMES[0],
        help="games (comma-separated) where Drama also trains with the Transformer",
    )
    parser.add_argument("--timing-repeats", type=int, default=20, help="0: no timing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--runs", default="runs/drama_minatar", help="run folders")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny settings: 256 warm-up steps, 2 evaluations, no timing",
    )
    args = parser.parse_args()
    compile_cache.configure()  # before the timing's compiles too
    out, runs = Path(args.out), Path(args.runs)
    games = args.games.split(",")
    seeds = {
        "Drama": args.seeds if args.drama_seeds is None else args.drama_seeds,
        "PPO": args.seeds if args.ppo_seeds is None else args.ppo_seeds,
    }
    evaluation = {
        "num_evals": 2 if args.smoke else NUM_EVALS,
        "num_eval_envs": args.eval_episodes,
    }
    overrides, hparams = parse_overrides(args.set, drama.Config, drama.HParams)
    smoke = {"warmup_steps": 256} if args.smoke else {}
    timing_repeats = 0 if args.smoke else args.timing_repeats
    overrides = SMALL | PROTOCOL | evaluation | smoke | overrides
    ppo_config = PPO_CONFIG | evaluation
    budget = {
        "Drama": final_env_steps(drama.SPEC, games[0], args.steps, overrides, {}),
        "PPO": final_env_steps(ppo.SPEC, games[0], args.steps, ppo_config, {"flatten": True}),
    }
    if len(set(budget.values())) != 1:
        raise SystemExit(
            f"--steps {args.steps} gives unequal env steps {budget} (each schedule rounds "
            f"down to whole periods): pick a multiple of both methods' steps per period"
        )
    t_start = time.perf_counter()
    results: dict = {
        "steps": args.steps,
        "env_steps": budget["Drama"],
        "seeds": seeds,
        "eval_episodes": args.eval_episodes,
        "num_evals": evaluation["num_evals"],
        "drama_overrides": overrides,
        "drama_hparams": hparams,
        "ppo_config": ppo_config,
        "random_episodes": args.random_episodes,
        "timing_repeats": timing_repeats,
        "jax_backend": jax.default_backend(),
        "paper": PAPER,
        "games": {},
        "timing": {},
    }
    for model in SEQUENCE_MODELS if timing_repeats > 0 else ():
        config = drama.Config(**(overrides | {"sequence_model": model}))
        results["timing"][model] = time_update(games[0], config, timing_repeats)
        print(f"timing {model}: {results['timing'][model]['update_seconds_median']:.3f} s/update")
    for game in games:
        name = game.split("/", 1)[1]
        g = {"random": run_random(game, args.random_episodes), "methods": {}}
        results["games"][game] = g
        t0 = time.perf_counter()
        g["methods"]["PPO"] = run_method(
            ppo.SPEC,
            game,
            args.steps,
            seeds["PPO"],
            ppo_config,
            runs / name / "ppo",
            PPO_CURVES,
            env_kwargs={"flatten": True},
        )
        print(f"{game} PPO {time.perf_counter() - t0:.0f}s", flush=True)
        models = ["mamba"] + (["transformer"] if game in args.transformer_games.split(",") else [])
        for model in models:
            t0 = time.perf_counter()
            label = f"Drama ({model.capitalize()})"
            g["methods"][label] = r = run_method(
                drama.SPEC,
                game,
                args.steps,
                seeds["Drama"],
                overrides | {"sequence_model": model},
                runs / name / f"drama_{model}",
                DRAMA_CURVES,
                hparams=hparams,
            )
            print(
                f"{game} {label} {time.perf_counter() - t0:.0f}s final greedy {r['greedy']} "
                f"sampled {r['sampled']}",
                flush=True,
            )
            results["total_seconds"] = time.perf_counter() - t_start
            write(results, out)  # after every run, so a cut-short run keeps what finished
    print(RENDERERS["drama_minatar"].render(results))
    print(f"total {results['total_seconds']:.0f}s")


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
