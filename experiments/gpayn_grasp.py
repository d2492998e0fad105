"""G-PAYN against SAC from scratch, SAC from the grasp pose and the scripted demonstrator
on the MJX ``grasp/<object>`` task (Ceola et al., 2023, "A Grasp Pose is All You Need").

Per object shape, two compiled programs, each vmapped over seeds:

* ``gpayn`` with the hyperparameter ``demo_fraction`` in {0.5, 0}: G-PAYN (half of every
  batch from the automatic demonstrations) and SAC from the grasp pose without
  demonstrations (same episode start, same settings, no demo rows), vmapped together;
  the demonstrations the G-PAYN runs recorded in ``init`` give the demonstrator alone
  (the scripted controller, no noise, ``demo_episodes`` random object poses per seed);
* ``sac`` on the same shape with ``start="home"``: SAC from scratch (hand above the
  table centre, no grasp pose in the observation).

Each run ends with ``eval_episodes`` deterministic episodes of the final policy recorded
with ``jaxrl.data.datasets.record`` (inside the same compiled program): success rate and
time to grasp (steps until the object is held ``lift_height`` up). Learning curves use
the library's periodic evaluation return, which by the env's design is the success rate
to within 0.1 (``jaxrl.envs.grasp``). Aggregates: IQM over seeds with 95% stratified
bootstrap CIs (``jaxrl.report``) across the shapes.

    python experiments/gpayn_grasp.py                 # 3 shapes, 5 seeds, 3000 steps
    python experiments/gpayn_grasp.py --full          # 4 shapes, 10 seeds, 20k steps

``--part gpayn`` / ``--part scratch`` run one of the two programs per shape (two
processes can run them side by side); each saves ``gpayn_grasp.<part>.json.part`` after
every shape (not committed), and every call merges what is saved (``--part merge`` only
merges). ``--steps`` is the budget (env steps per run); ``--init-alpha`` the initial
temperature of every learner (0.01, see ``jaxrl.agents.actor_critic.gpayn.HParams``).

Writes experiments/results/gpayn_grasp.json (per shape, method and seed: success rate
and time to grasp; ``args``) and .png; the table is ``jaxrl.report.renderers.gpayn_grasp``
(``python -m jaxrl.report build``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl import agents, compile_cache, envs, sweep
from jaxrl.data.datasets import record
from jaxrl.logging import atomic_write, new_figure, save_figure
from jaxrl.report import renderers

METHODS = ("G-PAYN", "SAC (grasp pose, no demos)", "SAC (scratch)", "Demonstrator")

#: The paper's numbers (Ceola et al. 2023, Table I, iCub in MuJoCo, YCB-Video objects,
#: superquadric grasp poses): not transcribed here (the table could not be read from
#: this machine); the paper reports G-PAYN above SAC and the other DRL baselines in
#: success rate and execution time on most objects, and often above the demonstration
#: pipeline. Our column gives the claim, not numbers.
PAPER = {
    "G-PAYN": "highest success, shortest time on most objects (claim)",
    "SAC (grasp pose, no demos)": "below G-PAYN (claim)",
    "SAC (scratch)": "not reported for this setting",
    "Demonstrator": "below G-PAYN on several objects (claim)",
}


def episode_stats(ds) -> tuple[np.ndarray, np.ndarray]:
    """``(success [..., N], steps to success [..., N] (nan where none))`` of recorded
    episodes (leaves ``[..., T, N]``): an episode succeeds iff it terminated."""
    term = np.asarray(ds.terminal)
    success = term.any(-2)
    steps = np.where(success, np.asarray(ds.length), np.nan)
    return success, steps


def run_gpayn(shape: str, args) -> dict:
    """G-PAYN, SAC from the grasp pose (demo_fraction 0) and the demonstrator on ``shape``."""
    name = f"grasp/{shape}"
    keys = sweep.seed_keys(args.seed, args.seeds)
    spec = agents.get("gpayn")
    env = envs.make(name)
    cfg = spec.make_config(name, **_common(args), demo_episodes=args.demo_episodes)
    spec.validate(cfg, env)
    trainer = spec.make_train(cfg, env)
    hp = sweep.stack(
        [spec.default_hparams(demo_fraction=f, init_alpha=args.init_alpha) for f in (0.5, 0.0)]
    )

    def train_eval(key, hparams):
        state, metrics = trainer(key, hparams)
        agent = spec.make_agent(cfg, env, hparams, None)
        policy = lambda o, k: agent.act(state, o, k, False)[0]  # noqa: E731
        episodes = record(env, policy, jax.random.fold_in(key, 7), args.eval_episodes)
        return state.demos, episodes, metrics

    fn = jax.jit(jax.vmap(jax.vmap(train_eval, in_axes=(0, None)), in_axes=(None, 0)))
    t0 = time.time()
    demos, evals, metrics = jax.block_until_ready(fn(keys, hp))
    wall = time.time() - t0
    succ, steps = episode_stats(evals)  # [2, S, N]
    d_succ, d_steps = episode_stats(demos)  # [2, S, N_demo]; the same collection in both rows
    steps_axis = np.asarray(metrics["env_steps"][0, 0]).tolist()
    ret = np.asarray(metrics["eval_return"])  # [2, S, E]
    out = {
        m: _method(succ[i], steps[i], steps_axis, ret[i], wall) for i, m in enumerate(METHODS[:2])
    }
    out["Demonstrator"] = _method(d_succ[0], d_steps[0], None, None, 0.0)
    return out


def run_scratch(shape: str, args) -> dict:
    """SAC from scratch on ``shape``: start above the table, no grasp pose."""
    name = f"grasp/{shape}"
    keys = sweep.seed_keys(args.seed, args.seeds)
    spec = agents.get("sac")
    env = envs.make(name, start="home")
    cfg = spec.make_config(name, **_common(args), warmup_steps=min(1000, args.steps // 5))
    spec.validate(cfg, env)
    trainer = spec.make_train(cfg, env)
    hp = spec.default_hparams(init_alpha=args.init_alpha)

    def train_eval(key):
        state, metrics = trainer(key, hp)
        agent = spec.make_agent(cfg, env, hp, None)
        policy = lambda o, k: agent.act(state, o, k, False)[0]  # noqa: E731
        return record(env, policy, jax.random.fold_in(key, 7), args.eval_episodes), metrics

    t0 = time.time()
    evals, metrics = jax.block_until_ready(jax.jit(jax.vmap(train_eval))(keys))
    succ, steps = episode_stats(evals)
    steps_axis = np.asarray(metrics["env_steps"][0]).tolist()
    ret = np.asarray(metrics["eval_return"])
    return {"SAC (scratch)": _method(succ, steps, steps_axis, ret, time.time() - t0)}


def _common(args) -> dict:
    return {"total_steps": args.steps, "num_evals": args.evals, "hidden": args.hidden}


def _method(succ, steps, steps_axis, ret, wall) -> dict:
    per_seed = succ.mean(-1)
    t = (
        np.nanmean(np.where(np.isnan(steps), np.nan, steps), -1)
        if np.isfinite(steps).any()
        else None
    )
    return {
        "success_per_seed": per_seed.tolist(),
        "time_to_grasp_per_seed": None if t is None else np.where(np.isnan(t), None, t).tolist(),
        "env_steps": steps_axis,
        "eval_return": None if ret is None else ret.tolist(),
        "wall_seconds": wall,
    }


def write_outputs(results: dict, dest: Path) -> None:
    """Writes ``gpayn_grasp.{json,png}``; the table is ``renderers.gpayn_grasp``'s."""
    atomic_write(dest / "gpayn_grasp.json", json.dumps(results, indent=1) + "\n")
    _plot(results, dest / "gpayn_grasp.png")


def _plot(results: dict, path: Path) -> None:
    shapes = list(results["shapes"])
    fig, axes = new_figure(1, len(shapes), figsize=(4 * len(shapes), 3.2), squeeze=False)
    for ax, s in zip(axes[0], shapes, strict=True):
        for m in METHODS[:3]:
            r = results["shapes"][s]["methods"][m]
            y = np.asarray(r["eval_return"])
            x = np.asarray(r["env_steps"])
            ax.plot(x, y.mean(0), label=m)
            ax.fill_between(x, y.min(0), y.max(0), alpha=0.2)
        demo = np.mean(results["shapes"][s]["methods"]["Demonstrator"]["success_per_seed"])
        ax.axhline(demo, color="k", ls="--", label="Demonstrator")
        ax.set_title(f"grasp/{s}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (~ success rate)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="box,cylinder,sphere")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--evals", type=int, default=3)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--demo-episodes", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--init-alpha",
        type=float,
        default=0.01,
        help="SAC's initial temperature for every learner (the paper's code: --ent_coef "
        "auto_0.01; its default auto starts at 1.0), target entropy -dim(A)",
    )
    p.add_argument(
        "--part",
        choices=("all", "gpayn", "scratch", "merge"),
        default="all",
        help="run one compiled program per shape (gpayn: G-PAYN, SAC from the grasp pose "
        "and the demonstrator; scratch: SAC from scratch), or only merge saved parts",
    )
    p.add_argument("--full", action="store_true", help="4 shapes, 10 seeds, 20k steps")
    p.add_argument("--results", default="experiments/results")
    args = p.parse_args()
    if args.full:
        args.shapes, args.seeds, args.steps, args.evals = (
            "box,cylinder,sphere,capsule",
            10,
            20000,
            10,
        )
    args.hidden = (args.hidden, args.hidden)
    compile_cache.configure()
    dest = Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    parts = {"gpayn": run_gpayn, "scratch": run_scratch}
    todo = list(parts) if args.part == "all" else [] if args.part == "merge" else [args.part]
    shared = json.loads(json.dumps({k: getattr(args, k) for k in SHARED}))
    for part in todo:
        path = dest / f"gpayn_grasp.{part}.json.part"
        saved = json.loads(path.read_text()) if path.exists() else {}
        if saved.get("_args") != shared:  # another setting's part: start again
            saved = {"_args": shared}
        for shape in args.shapes.split(","):
            t0 = time.time()
            saved[shape] = parts[part](shape, args)
            print(f"{part} {shape}: {time.time() - t0:.0f}s", flush=True)
            atomic_write(path, json.dumps(saved, indent=1))  # partial results after every shape
    settings = {k: v for k, v in vars(args).items() if k not in ("part", "results", "full")}
    results = {
        "command": "python " + " ".join(sys.argv),
        "args": settings,
        "paper": PAPER,
        "shapes": {},
        "notes": NOTES,
    }
    loaded = {
        part: json.loads((dest / f"gpayn_grasp.{part}.json.part").read_text())
        for part in parts
        if (dest / f"gpayn_grasp.{part}.json.part").exists()
    }
    loaded = {k: v for k, v in loaded.items() if v.get("_args") == shared}
    for shape in args.shapes.split(","):
        methods = {}
        for part in loaded.values():
            methods.update(part.get(shape, {}))
        if all(m in methods for m in METHODS):
            results["shapes"][shape] = {"methods": methods}
    if results["shapes"]:
        write_outputs(results, dest)
        print(renderers.gpayn_grasp(results))


NOTES = ""
#: The settings the two parts of one table must share.
SHARED = (
    "seeds",
    "steps",
    "evals",
    "eval_episodes",
    "demo_episodes",
    "hidden",
    "seed",
    "init_alpha",
)


if __name__ == "__main__":
    main()
