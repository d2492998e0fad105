"""The stream barrier: stream-x learners against classic streaming learners, batch = 1.

Every row learns from one transition at a time, as it arrives (batch = buffer = 1, no
replay), with the same eligibility traces and the same network widths:

- ``stream-x``: stream AC(lambda) / stream Q(lambda) with the paper's defaults (ObGD,
  sparse init, LayerNorm, online observation normalisation, reward scaling; lr 1).
- ``classic``: the same learner with Adam on ``-delta * z``, a dense uniform init, no
  LayerNorm and no normalisation: classic AC(lambda) / Q(lambda), the paper's
  batch-size-1, replay-free classic baseline. Adam's learning rate is swept (one vmapped
  compilation over seeds x rates) and the best rate by final return is reported, so
  the baseline gets the benefit of the doubt (chosen on the same seeds: optimistic).
- ``sac1``, ``ppo1``, ``dqn1``: the batch methods forced to batch = buffer = 1 (the
  paper's SAC1, PPO1, DQN1), each with its library defaults otherwise and the task's
  network widths: SAC (continuous tasks) with a one-transition replay; PPO (either kind)
  with one env and a rollout of one step, one epoch of one minibatch, advantages not
  normalised (one sample normalises to 0); DQN (discrete tasks) with a one-transition
  replay and one update per env step. Recorded under their own keys.

Tasks (``TASKS``): cartpole for both learners, a MinAtar game (flattened 400-d
observations, MLP) for Q, and a Brax task (positional backend: the MJX default costs
several times more on a CPU) for AC. The final return of a seed is the mean of its last
``FINAL_EVALS`` evaluations; IQM and 95% stratified bootstrap CI over seeds
(``jaxrl.report``).

    python experiments/stream_barrier.py    # every task and row
    python experiments/stream_barrier.py --tasks cartpole --steps 100000
    python experiments/stream_barrier.py --tasks cartpole --rows ppo1,dqn1 --resume  # add rows

Writes experiments/results/stream_barrier.json (per-seed curves of every row and, for
``classic``, of every rate) and stream_barrier.png (curves); its table is rendered from
the JSON by ``python -m jaxrl.report build`` (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import compile_cache, envs, sweep
from jaxrl.agents.actor_critic import sac
from jaxrl.agents.on_policy import ppo
from jaxrl.agents.stream import stream_ac, stream_q
from jaxrl.agents.value import dqn
from jaxrl.logging import atomic_write
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"
CLASSIC = {
    "optimizer": "adam",
    "sparsity": 0.0,
    "layer_norm": False,
    "normalize_obs": False,
    "scale_reward": False,
}
LEARNERS = {"AC(lambda)": stream_ac, "Q(lambda)": stream_q}
#: The batch-1 rows: algorithm and its batch = buffer = 1 config overrides.
BATCH1: dict[str, tuple] = {
    "sac1": (sac, {"batch_size": 1, "buffer_size": 1, "warmup_steps": 1}),
    "ppo1": (
        ppo,
        {
            "num_envs": 1,
            "rollout_len": 1,
            "num_epochs": 1,
            "num_minibatches": 1,
            "normalize_advantages": False,
        },
    ),
    "dqn1": (
        dqn,
        {
            "num_envs": 1,
            "batch_size": 1,
            "buffer_size": 1,
            "warmup_steps": 1,
            "updates_per_iter": 1,
        },
    ),
}
ROWS = ("stream-x", "classic", *BATCH1)
FINAL_EVALS = 2

#: Per task: learners run there, env kwargs, default budget, network width, eval count,
#: eval episodes per learner, hparam overrides (both rows). Harder tasks first.
TASKS: dict[str, dict] = {
    "minatar/breakout": {
        "learners": ("Q(lambda)",),
        "env_kwargs": {"flatten": True},
        "steps": 100_000,
        "hidden": (128, 128),
        "evals": 10,
        "eval_envs": 8,
        # PAPERS.md: epsilon decays over 0.2 of the run on MinAtar.
        "hparams": {"exploration_fraction": 0.2},
        "batch1": ("dqn1",),
    },
    "brax/inverted_double_pendulum": {
        "learners": ("AC(lambda)",),
        "env_kwargs": {"backend": "positional"},
        "steps": 50_000,
        "hidden": (128, 128),  # the paper's MuJoCo width
        "evals": 10,
        "eval_envs": 4,
        "hparams": {},
        "batch1": ("sac1", "ppo1"),
    },
    "cartpole": {
        "learners": ("AC(lambda)", "Q(lambda)"),
        "env_kwargs": {},
        "steps": 100_000,
        "hidden": (32, 32),
        "evals": 10,
        "eval_envs": 16,
        "hparams": {},
        "batch1": ("ppo1", "dqn1"),
    },
}

#: What the paper says (Elsayed, Vasan and Mahmood 2024, "Streaming Deep Reinforcement
#: Learning Finally Works", arXiv 2410.14606): the stream-barrier figures show classic
#: streaming learners (Q(lambda), SARSA(lambda), AC(lambda)) and batch methods forced to
#: batch = buffer = 1 (DQN1, PPO1, SAC1) failing, stream-x learning; the abstract names
#: MuJoCo Gym, DM Control and Atari as where the barrier is shown. No per-task table of
#: numbers was retrievable here (search corpora hold the abstract and bibliography only),
#: so the column states the claim, not a number.
PAPER = {
    "stream-x": "learns (stream-barrier figures; no table)",
    "classic": "fails (barrier shown on MuJoCo Gym, DM Control, Atari; figures, no table)",
    "sac1": "fails (SAC1 in the stream-barrier figures; no table)",
    "ppo1": "fails (PPO1 in the stream-barrier figures; no table)",
    "dqn1": "fails (DQN1 in the stream-barrier figures; no table)",
}
SOURCE = "Elsayed et al. 2024, arXiv 2410.14606, stream-barrier figures"


def final_scores(returns: np.ndarray) -> np.ndarray:
    """``[S, E]`` evaluation returns -> ``[S]``: mean of the last ``FINAL_EVALS``."""
    return np.asarray(returns)[:, -FINAL_EVALS:].mean(axis=1)


def train_grid(algo, cfg, env, hparams: dict, lrs: list[float], seeds: int, fields: tuple):
    """One compilation over seeds x ``lrs`` (every field in ``fields`` set to the rate):
    ``(env_steps [E], returns [H, S, E], finite [H])``."""
    base = algo.SPEC.default_hparams().replace(**hparams)
    hp = sweep.stack([base.replace(**{f: jnp.float32(lr) for f in fields}) for lr in lrs])
    train = algo.SPEC.make_train(cfg, env)
    run = jax.jit(sweep.over_seeds_and_hparams(train, seeds, len(lrs)))
    _, metrics = run(sweep.seed_keys(0, seeds), hp)
    returns = np.asarray(metrics["eval_return"])  # [H, S, E]
    finite = np.all(np.asarray(metrics["finite"]), axis=(1, 2))
    return np.asarray(metrics["env_steps"][0, 0]), returns, finite


def run_row(task: str, learner: str, row: str, steps: int, seeds: int, lrs: list[float]) -> dict:
    """One row (stream-x / classic / a batch-1 row) on ``task``: per-seed curves, settings."""
    spec = TASKS[task]
    env = envs.make(task, **spec["env_kwargs"])
    common = {
        "total_steps": steps,
        "num_evals": spec["evals"],
        "num_eval_envs": spec["eval_envs"],
        "hidden": spec["hidden"],
    }
    t0 = time.perf_counter()
    if row in BATCH1:
        algo, overrides = BATCH1[row]
        cfg = algo.Config(**common, **overrides)
        algo.SPEC.validate(cfg, env)
        fields = ("actor_lr", "critic_lr") if algo is sac else ("lr",)
        rates = [float(getattr(algo.SPEC.default_hparams(), fields[0]))]
        x, returns, finite = train_grid(algo, cfg, env, {}, rates, seeds, fields)
    else:
        algo = LEARNERS[learner]
        extra = CLASSIC if row == "classic" else {}
        rates = lrs if row == "classic" else [1.0]
        cfg = algo.Config(**common, **extra)
        x, returns, finite = train_grid(algo, cfg, env, spec["hparams"], rates, seeds, ("lr",))
    return select_rate(
        {
            "env_steps": x.tolist(),
            "lrs": rates,
            "returns_per_lr": returns.tolist(),
            "finite_per_lr": finite.tolist(),
            "seconds": time.perf_counter() - t0,
            **({"config": dict(overrides)} if row in BATCH1 else {}),
        }
    )


def select_rate(r: dict) -> dict:
    """Adds the chosen rate of row ``r``, its curves ``returns [S, E]`` and ``final [S]``.

    A rate's score is its mean final return over seeds; a rate with a non-finite
    evaluation on any seed (a diverged seed) ranks below every finite one.
    """
    returns = np.asarray(r["returns_per_lr"], dtype=np.float64)  # [H, S, E]
    scores = np.asarray([final_scores(x).mean() for x in returns])
    ok = np.all(np.isfinite(returns), axis=(1, 2))
    best = int(np.argmax(np.where(ok, scores, -np.inf))) if ok.any() else 0
    return {
        **r,
        "lr": r["lrs"][best],
        "final_mean_per_lr": scores.tolist(),
        "diverged_seeds_per_lr": (~np.all(np.isfinite(returns), axis=2)).sum(axis=1).tolist(),
        "returns": returns[best].tolist(),
        "final": final_scores(returns[best]).tolist(),
    }


def rows_for(task: str, rows: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``(key, learner, row)`` of each of ``rows`` that runs on ``task``: the stream rows
    per learner (key ``"learner | row"``), then its batch-1 rows (key = the row)."""
    out = []
    for learner in TASKS[task]["learners"]:
        out += [(f"{learner} | {r}", learner, r) for r in ("stream-x", "classic") if r in rows]
    out += [(r, "", r) for r in TASKS[task]["batch1"] if r in rows]
    return out


def split_key(key: str) -> tuple[str, str]:
    """``(learner, row)`` of a results key; a batch-1 row has no learner (``""``)."""
    learner, _, row = key.rpartition(" | ")
    return learner, row


def describe(row: str, r: dict) -> str:
    if row == "classic":
        return f"classic, Adam lr {r['lr']:g}"
    if row in BATCH1:
        return f"{row.upper()[:-1]}1 (batch = buffer = 1)"
    return "stream-x (ObGD, lr 1)"


def plot(results: dict, path: Path) -> None:
    from jaxrl.logging import new_figure, save_figure

    panels = [(task, split_key(key)[0]) for task, rows in results.items() for key in rows]
    panels = list(dict.fromkeys(panels))
    fig, axes = new_figure(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    axes = axes[0]
    colors = {"stream-x": "C0", "classic": "C3", "sac1": "C2", "ppo1": "C4", "dqn1": "C5"}
    for ax, (task, learner) in zip(axes, panels, strict=True):
        for key, r in results[task].items():
            name, row = split_key(key)
            if name != learner:
                continue
            x, y = np.asarray(r["env_steps"]), np.asarray(r["returns"])
            ax.fill_between(x, y.min(0), y.max(0), color=colors[row], alpha=0.15, lw=0)
            ax.plot(x, y.mean(0), color=colors[row], label=f"{describe(row, r)}, {len(y)} seeds")
        ax.set_title(f"{learner or 'batch methods'} on {task}, batch = 1", fontsize=9)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)
    axes[0].set_ylabel("evaluation return (mean, min-max band)")
    fig.tight_layout()
    save_figure(fig, path)


def meta(
    command: str, args, budgets: dict, lrs: list[float], results: dict, before: dict | None = None
) -> dict:
    """The record's meta; ``before``: the meta of the rows ``--resume`` kept (its commands
    and budgets stay listed)."""
    seconds = sum(r["seconds"] for rows in results.values() for r in rows.values())
    before = before or {}
    commands = [c for c in before.get("command", "").split(" ; ") if c]
    return {
        "command": " ; ".join(dict.fromkeys([*commands, command])),
        "seeds": args.seeds,
        "budgets": {**before.get("budgets", {}), **budgets},
        "lrs": lrs,
        "final_evals": FINAL_EVALS,
        "classic_settings": CLASSIC,
        "tasks": {t: TASKS[t] for t in results},
        "paper": {"source": SOURCE, "claims": PAPER},
        "wall_min": seconds / 60,
    }


def write(out: Path, results: dict, info: dict) -> None:
    """JSON and plot of every row so far (called after each row)."""
    record = {"meta": info, "results": results}
    atomic_write(out / "stream_barrier.json", (json.dumps(record, indent=1) + "\n").encode())
    plot(results, out / "stream_barrier.png")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"any of {', '.join(TASKS)}")
    parser.add_argument("--env", default=None, help="alias of --tasks (one task)")
    parser.add_argument("--steps", type=int, default=None, help="one budget for every task")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--lrs", default="1e-4,3e-4,1e-3", help="Adam rates for the baseline")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"any of {', '.join(ROWS)}")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--resume", action="store_true", help="keep the rows already in OUT/stream_barrier.json"
    )
    args = parser.parse_args(argv)
    compile_cache.configure()
    tasks = (args.env or args.tasks).split(",")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    rows = tuple(args.rows.split(","))
    if set(rows) - set(ROWS):
        raise SystemExit(f"unknown rows {sorted(set(rows) - set(ROWS))}; known: {', '.join(ROWS)}")
    lrs = [float(x) for x in args.lrs.split(",")]
    budgets = {t: args.steps or TASKS[t]["steps"] for t in tasks}
    out = Path(args.out)
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    if "--out" in given:  # the command recorded is the one that reproduces the results
        del given[given.index("--out") : given.index("--out") + 2]
    command = " ".join(["python experiments/stream_barrier.py", *given])
    results: dict = {}
    done: dict = {}
    before: dict | None = None
    if args.resume and (out / "stream_barrier.json").exists():
        record = json.loads((out / "stream_barrier.json").read_text())
        done, before = record["results"], record["meta"]
    for task in [*tasks, *(t for t in done if t not in tasks)]:
        # --resume: the rows an earlier run finished stay (other tasks' too).
        results[task] = {k: select_rate(r) for k, r in done.get(task, {}).items()}
    for task in tasks:
        for key, learner, row in rows_for(task, rows):
            if key in done.get(task, {}):  # --resume: a row an earlier run finished
                results[task][key] = select_rate(done[task][key])
                continue
            r = run_row(task, learner, row, budgets[task], args.seeds, lrs)
            results[task][key] = r
            print(
                f"{task} {learner or row} {describe(row, r)}: final {np.mean(r['final']):.1f} "
                f"(per seed {np.round(r['final'], 1).tolist()}), {r['seconds']:.0f}s",
                flush=True,
            )
            write(out, results, meta(command, args, budgets, lrs, results, before))
    info = meta(command, args, budgets, lrs, results, before)
    write(out, results, info)
    print(RENDERERS["stream_barrier"].render({"meta": info, "results": results}))
    return {"meta": info, "results": results}


if __name__ == "__main__":
    main()
