"""SRL vs SAC-J vs online planning across decision intervals: the paper's Frequency-
Averaged Score (Patel & Siegelmann, ICLR 2025, arXiv 2410.08979; official code
github.com/dee0512/Sequence-Reinforcement-Learning).

Protocol, as the official code runs it (``scripts/train_sac.py``, ``scripts/eval_sac.py``,
``notebooks/table2.ipynb``):

- ``sac_jJ`` (SAC-J, J in 1, 2, 4, 8, 16): SAC trained with action repeat J: each
  decision's action is held for J env steps, the replay keeps one transition per
  decision with the J rewards summed and ``gamma`` per decision (``envs.ActionRepeat``);
  the budget counts env steps, the random warm-up too. It is then evaluated, like every
  method, with the action-sequence transform's hold at each interval ``k``
  (``action_sequences.evaluate_intervals``).
- ``SRL``: SRL-J (``seq_len``) with its GRU unrolled to 30 actions (``act_len``), so at
  interval ``k`` it plays ``k`` actions of its sequence; ``Planning``: CEM with SRL's
  learned model and critic, no training of its own, planning ``max(k, seq_len)`` steps.
- Every run evaluates every ``EVAL_EVERY`` env steps (10 episodes, at its own training
  interval) and keeps its best evaluation's agent (``transforms.best``): the FAS is
  measured on that best checkpoint, at ``k`` in ``report.FAS_INTERVALS`` (1, 2, 4, ...,
  30), 10 episodes each, as ``report.frequency_averaged_score`` (trapezoid area of
  ``R_k + offset`` over ``max_reward x 30``; Pendulum: offset 1550, max 1350).

IQM and 95% stratified bootstrap CIs over seeds (``jaxrl.report``).

    python experiments/srl_fas.py --tasks pendulum --seeds 5            # Pendulum, 30k steps
    python experiments/srl_fas.py --tasks pendulum --steps 10000 --hidden 64

Writes experiments/results/srl_fas.json (per task, method, seed and interval) and
srl_fas.png (return vs decision interval); its tables are rendered from the JSON by
``python -m jaxrl.report build`` (docs/results.md, README) and printed at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl import compile_cache, envs, report, sweep
from jaxrl.agents.actor_critic import sac, srl
from jaxrl.logging import atomic_write
from jaxrl.loops import evaluate
from jaxrl.report.renderers import RENDERERS
from jaxrl.transforms import best
from jaxrl.transforms.action_sequences import evaluate_intervals, with_action_sequences

RESULTS = Path(__file__).parent / "results"
#: The paper's budgets (env steps; ``hyperparameters.py``: Pendulum 30k, MuJoCo 1M).
BUDGETS = {
    "pendulum": 30_000,
    "brax/inverted_pendulum": 1_000_000,
    "brax/inverted_double_pendulum": 1_000_000,
}
#: Env steps between evaluations (``eval_freq``: Pendulum 2500, MuJoCo 5000).
EVAL_EVERY = {"pendulum": 2_500}
DEFAULT_EVAL_EVERY = 5_000
#: Random warm-up env steps (``start_timesteps``: Pendulum 1000, MuJoCo 10000).
WARMUP = {"pendulum": 1_000}
DEFAULT_WARMUP = 10_000
SAC_J = (1, 2, 4, 8, 16)
EPISODES = 10  # evaluation episodes, during training and per interval (eval_sac.py)
PAPER_WIDTH = 256  # hidden_size of every network (hyperparameters.py)
SRL_ACT_LEN = max(report.FAS_INTERVALS)  # SRL's GRU unrolls to the longest interval
#: The paper's Table 2 SAC-J FAS: the mean over 5 seeds printed by the official
#: ``notebooks/table2.ipynb`` (Pendulum-v1, InvertedPendulum-v2, InvertedDoublePendulum-v2).
PAPER_SAC_J: dict[str, dict[int, float]] = {
    "pendulum": {1: 0.4419, 2: 0.4235, 4: 0.4979, 8: 0.4895, 16: 0.3262},
    "brax/inverted_pendulum": {1: 0.0522, 2: 0.0724, 4: 0.1439, 8: 0.3115, 16: 0.3385},
    "brax/inverted_double_pendulum": {1: 0.0218, 2: 0.0731, 4: 0.0891, 8: 0.0147, 16: 0.0141},
}
PAPER_SOURCE = "Patel & Siegelmann, ICLR 2025, Table 2 (official notebooks/table2.ipynb)"
#: SRL's and planning's Table 2 values are not in the official repository (its notebook
#: computes SAC-J only) and the paper's tables were not retrievable here.
PAPER_OTHER = "not retrievable here (the official notebook computes SAC-J only)"


def sac_j_key(j: int) -> str:
    return f"sac_j{j}"


def method_label(key: str) -> str:
    return f"SAC-{key.removeprefix('sac_j')}" if key.startswith("sac_j") else key


def paper_value(task: str, key: str) -> float | None:
    if key.startswith("sac_j"):
        return PAPER_SAC_J.get(task, {}).get(int(key.removeprefix("sac_j")))
    return None


def train_best(algo, cfg, env, seeds: int):
    """``(best agent states [seeds], eval curve [seeds, evals], best returns [seeds])``:
    the run keeps the agent of its best evaluation (``transforms.best``)."""
    trainer = best.with_best(algo.SPEC.make_train(cfg, env))

    def run(key, hp):
        state = trainer.init(key, hp)
        state, metrics = trainer.run_periods(state, hp, trainer.schedule.num_evals)
        return (state.best, state.best_return), metrics

    hp = algo.SPEC.default_hparams()
    (states, best_return), metrics = sweep.over_seeds(run, seeds)(sweep.seed_keys(0, seeds), hp)
    return states, np.asarray(metrics["eval_return"]), np.asarray(best_return)


def interval_evaluator(agent, env):
    """Jitted ``(states [seeds], keys [seeds]) -> [seeds, K]``: each seed's return at each
    FAS interval (compiled once per agent, reused for every SAC-J)."""

    def one(state, key):
        return evaluate_intervals(agent, state, env, key, EPISODES, report.FAS_INTERVALS)

    return jax.jit(jax.vmap(one))


def interval_returns(evaluator, states, seeds: int) -> np.ndarray:
    """``[seeds, K]`` (the same eval keys for every method)."""
    return np.asarray(evaluator(states, jax.random.split(jax.random.PRNGKey(123), seeds)))


def planner_returns(cfg, env, hp, states, seeds: int) -> np.ndarray:
    """The planner's ``[seeds, K]``: horizon ``max(k, seq_len)`` at interval ``k``."""
    cols = []
    keys = jax.random.split(jax.random.PRNGKey(123), seeds)
    for k in report.FAS_INTERVALS:
        plan = srl.planner(cfg, env, hp, horizon=max(k, cfg.seq_len), population=32, elites=4)
        timed = with_action_sequences(plan, k, env.action_spec)
        fn = jax.jit(jax.vmap(lambda s, key, a=timed: evaluate(a, s, env, key, EPISODES)[0]))
        cols.append(np.asarray(fn(states, keys)))
    return np.stack(cols, axis=1)


def base_config(task: str, steps: int, hidden: int) -> dict:
    every = EVAL_EVERY.get(task, DEFAULT_EVAL_EVERY)
    return {
        "total_steps": steps,
        "num_evals": max(1, steps // every),
        "num_eval_envs": EPISODES,
        "hidden": (hidden, hidden),
        "batch_size": 256,
        "warmup_steps": min(WARMUP.get(task, DEFAULT_WARMUP), steps // 2),
    }


def scores(task: str, res: dict) -> dict:
    """``res`` with its per-seed ``fas`` (and jaxrl's earlier ``interval_mean_score``)."""
    r = np.asarray(res["returns"])
    norm = report.fas_norm(task) or (0.0, 1.0)
    res["fas"] = report.frequency_averaged_score(r, report.FAS_INTERVALS, *norm).tolist()
    ranges = report.interval_mean_range(task)
    if ranges:  # the earlier stand-in, for comparison with older runs
        at = [report.FAS_INTERVALS.index(k) for k in report.INTERVAL_MEAN_INTERVALS]
        res["interval_mean_score"] = report.interval_mean_score(r[:, at], *ranges).tolist()
    return res


def run_task(task: str, steps: int, seeds: int, hidden: int, methods: list[str], log, save) -> dict:
    """Every method on ``task``; ``save(out)`` after each (a cut-short run keeps its rows)."""
    env = envs.make(task)
    base = base_config(task, steps, hidden)
    out: dict = {}
    sac_eval = None  # one SAC agent (act does not depend on the budget) for every J
    for j in SAC_J if "sac_j" in methods else ():
        t0 = time.perf_counter()
        # A decision is J env steps: the budget, warm-up and evaluation period in decisions.
        cfg = sac.SPEC.make_config(
            task,
            **{
                **base,
                "total_steps": steps // j,
                "warmup_steps": max(1, base["warmup_steps"] // j),
            },
        )
        states, curve, best_ret = train_best(sac, cfg, envs.ActionRepeat(env, j), seeds)
        if sac_eval is None:
            sac_eval = interval_evaluator(sac.make_agent(cfg, env, sac.SPEC.default_hparams()), env)
        out[sac_j_key(j)] = scores(
            task,
            {
                "returns": interval_returns(sac_eval, states, seeds).tolist(),
                "curve": curve.tolist(),
                "best_eval_return": best_ret.tolist(),
                "train_interval": j,
                "seconds": time.perf_counter() - t0,
            },
        )
        save(out)
        log(f"{task} SAC-{j}: {out[sac_j_key(j)]['seconds']:.0f}s, FAS {out[sac_j_key(j)]['fas']}")
    if "srl" in methods or "planning" in methods:
        t0 = time.perf_counter()
        cfg = srl.SPEC.make_config(task, **base, act_len=SRL_ACT_LEN)
        hp = srl.SPEC.default_hparams()
        states, curve, best_ret = train_best(srl, cfg, env, seeds)
        agent = srl.make_sequence_agent(cfg, env, hp)  # re-timed to each k by the transform
        out["SRL"] = scores(
            task,
            {
                "returns": interval_returns(interval_evaluator(agent, env), states, seeds).tolist(),
                "curve": curve.tolist(),
                "best_eval_return": best_ret.tolist(),
                "train_interval": cfg.interval,
                "seconds": time.perf_counter() - t0,
            },
        )
        save(out)
        log(f"{task} SRL-{cfg.interval}: {out['SRL']['seconds']:.0f}s, FAS {out['SRL']['fas']}")
        if "planning" in methods:
            t0 = time.perf_counter()
            rets = planner_returns(cfg, env, hp, states, seeds)
            elapsed = time.perf_counter() - t0
            out["Planning"] = scores(task, {"returns": rets.tolist(), "seconds": elapsed})
            save(out)
            log(f"{task} Planning: {elapsed:.0f}s, FAS {out['Planning']['fas']}")
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for ax, (task, res) in zip(axes[0], results.items(), strict=True):
        for key, r in res.items():
            rets = np.asarray(r["returns"])
            ax.plot(report.FAS_INTERVALS, rets.mean(0), marker="o", ms=3, label=method_label(key))
        ax.set_xlabel("decision interval k (env steps)")
        ax.set_title(task)
    axes[0][0].set_ylabel("return (mean over seeds)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="pendulum", help=f"any of {', '.join(BUDGETS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="one budget for every task")
    parser.add_argument("--hidden", type=int, default=PAPER_WIDTH, help="width of every layer")
    parser.add_argument("--methods", default="sac_j,srl,planning", help="of sac_j, srl, planning")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--resume", action="store_true", help="keep the rows of OUT/srl_fas.json not rerun"
    )
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    bad = sorted(set(methods) - {"sac_j", "srl", "planning"})
    if bad:
        raise SystemExit(f"unknown methods {bad}; known: sac_j, srl, planning")
    compile_cache.configure()
    tasks = args.tasks.split(",")
    budgets = {t: args.steps or BUDGETS.get(t, 100_000) for t in tasks}
    out = Path(args.out)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--out" in given:  # the command recorded is the one that reproduces the results
        del given[given.index("--out") : given.index("--out") + 2]
    given = [a for a in given if not a.startswith("--out=")]
    given = [a for a in given if a != "--resume"]
    command = " ".join(["python experiments/srl_fas.py", *given])
    results: dict = {}
    before: dict = {}
    if args.resume and (out / "srl_fas.json").exists():
        record = json.loads((out / "srl_fas.json").read_text())
        results, before = record["results"], record["meta"]
        if (
            before["hidden"] != [args.hidden] * 2
            or before["seeds"] != args.seeds
            or any(before["budgets"].get(t, budgets[t]) != budgets[t] for t in tasks)
        ):
            raise SystemExit("--resume needs the budgets and hidden of the rows kept")
    kept = {t: dict(rows) for t, rows in results.items()}
    t0 = time.perf_counter()

    def save(task: str, rows: dict) -> dict:
        results[task] = {**kept.get(task, {}), **rows}
        commands = [c for c in before.get("command", "").split(" ; ") if c]
        meta = {
            "command": " ; ".join(dict.fromkeys([*commands, command])),
            "seeds": args.seeds,
            "budgets": {**before.get("budgets", {}), **budgets},
            "hidden": [args.hidden, args.hidden],
            "paper_hidden": [PAPER_WIDTH, PAPER_WIDTH],
            "intervals": list(report.FAS_INTERVALS),
            "episodes": EPISODES,
            "fas_norms": {t: report.fas_norm(t) for t in results},
            "fas_span": report.FAS_SPAN,
            "checkpoint": "best evaluation (transforms.best)",
            "eval_every": {t: EVAL_EVERY.get(t, DEFAULT_EVAL_EVERY) for t in results},
            "paper_sac_j": {t: PAPER_SAC_J.get(t) for t in results},
            "paper_source": PAPER_SOURCE,
            "paper_srl_planning": PAPER_OTHER,
            "wall_min": before.get("wall_min", 0.0) + (time.perf_counter() - t0) / 60,
        }
        record = {"meta": meta, "results": results}
        atomic_write(out / "srl_fas.json", (json.dumps(record, indent=1) + "\n").encode())
        plot(results, out / "srl_fas.png")
        return meta

    for task in tasks:
        rows = run_task(
            task,
            budgets[task],
            args.seeds,
            args.hidden,
            methods,
            lambda s: print(s, flush=True),
            lambda r, task=task: save(task, r),
        )
        meta = save(task, rows)
    print(RENDERERS["srl_fas"].render({"meta": meta, "results": results}))


if __name__ == "__main__":
    main()
