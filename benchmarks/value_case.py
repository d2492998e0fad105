"""Bench case ``value_cartpole``: DQN and PQN on CartPole, jaxrl against rejax.

Each algorithm runs on rejax's own CartPole settings (``REJAX_DQN_CARTPOLE``,
``REJAX_PQN_CARTPOLE``: its ``configs/gymnax/cartpole.yaml``) in both libraries, the same
network, optimiser, exploration schedule, step budget and evaluation schedule
(``eval_episodes`` greedy episodes every ``eval_every`` env steps). Per algorithm:

- ``compile_seconds``: ahead-of-time trace + lower + compile of the one-seed program,
  ``budget.value_compile_pairs`` alternating jaxrl/rejax pairs, each of a budget one
  iteration longer than the last (no cache hits); the ratio is the median of the pairs'
  rejax / jaxrl;
- ``env_steps_per_second``: whole one-seed runs (evaluations included), ``Plan.rounds``
  alternating rounds after the compiles; the ratio is the median of the rounds' jaxrl / rejax;
- time to a return of ``budget.cartpole_threshold`` (475), compile included, at one seed
  and at ``Plan.seeds`` vmapped seeds, as ``benchmarks.solve`` defines it: the median
  seed's first evaluation at the threshold in one ``Plan.seeds``-seed run (jaxrl through
  ``sweep.over_seeds``, rejax through ``jit(vmap(train))``), then ``compile + run seconds
  x median steps / steps``; with ``Plan.seeds = 1`` (rejax's DQN runs tens of seconds
  per seed on 2 cores: ``--quick``) from the last timed one-seed run's own curve.

Every ratio reads higher-is-better for jaxrl.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks import harness, solve

#: rejax's CartPole-v1 DQN settings (``configs/gymnax/cartpole.yaml``), used by both.
REJAX_DQN_CARTPOLE: dict[str, Any] = {
    "num_envs": 10,
    "buffer_size": 50_000,
    "learning_starts": 5_000,  # rejax fill_buffer (uniformly random actions until then)
    "batch_size": 100,
    "updates_per_iter": 5,  # rejax num_epochs: updates per step of the num_envs envs
    "lr": 1e-3,
    "max_grad_norm": 10.0,
    "gamma": 0.99,
    "tau": 0.02,  # rejax polyak 0.98, once per iteration (target_update_freq 1)
    "eps_start": 1.0,
    "eps_end": 0.05,
    # exploration_fraction in both libraries, named so that no settings key reads "ratio"
    # (bench.json readers treat every number under a "ratio" key as a jaxrl/contender ratio)
    "eps_decay_fraction": 0.5,
    "double": True,
    "dueling": True,
    "hidden": [64, 64],
    "activation": "swish",
    "layer_norm": False,
}

#: rejax's CartPole-v1 PQN settings (``configs/gymnax/cartpole.yaml``), used by both.
REJAX_PQN_CARTPOLE: dict[str, Any] = {
    "num_envs": 16,
    "rollout_len": 128,  # rejax num_steps
    "num_epochs": 5,
    "num_minibatches": 16,
    "lr": 3e-4,  # Adam, constant (rejax); jaxrl: rectified=False, anneal_lr=False
    "max_grad_norm": 10.0,
    "gamma": 0.99,
    "lam": 0.9,  # rejax td_lambda
    "eps_start": 1.0,
    "eps_end": 0.05,
    "eps_decay_fraction": 0.5,
    "hidden": [64, 64],
    "activation": "relu",
    "layer_norm": True,  # rejax: Dense -> LayerNorm -> relu
}

EVAL_EPISODES = 16

NOTES = [
    "same settings both sides: rejax's own CartPole DQN and PQN configs; networks 64x64 "
    "(DQN: dueling, swish, no LayerNorm; PQN: LayerNorm before relu), Adam at a constant "
    "learning rate, epsilon from 1 to 0.05 over the first half of the run's env steps",
    "rejax clips gradients element-wise (optax.clip(10)), jaxrl by global norm (10)",
    "DQN replay sampling: rejax draws each minibatch without replacement over the whole "
    "buffer (jax.random.choice with probabilities, work in the buffer size per update), "
    "jaxrl uniformly with replacement (work in the batch size): most of the steps/s gap",
    "DQN target: rejax moves it by polyak 0.98 once per iteration (5 updates); jaxrl by "
    "tau 0.02 every target_period = 5 updates",
    "evaluation: 16 episodes every eval_every env steps in both; jaxrl greedy, rejax's "
    "make_act (epsilon 0.005)",
    "rejax (gymnax) ends a bootstrap at CartPole's 500-step time limit as at a termination; "
    "jaxrl bootstraps through truncation",
    "compile_seconds: ahead-of-time trace + lower + compile of one seed's program, alternating "
    "jaxrl/rejax pairs of budgets one iteration apart (no cache hits); the ratio is the "
    "median of the paired rejax / jaxrl",
    "time to solve (benchmarks.solve): median seed's first evaluation at the threshold in "
    "one vmapped run of `seeds` seeds; seconds = compile + run x median steps / steps, at 1 "
    "seed from the timed one-seed rounds and at `seeds` from the vmapped run; jaxrl's seeds "
    "through sweep.over_seeds (one device per CPU core), rejax's through jit(vmap(train))",
]


def learning_starts(steps: int) -> int:
    """rejax's 5,000 random steps, cut to a quarter of the run in tiny budgets."""
    return min(REJAX_DQN_CARTPOLE["learning_starts"], steps // 4)


def jaxrl_train(algo: str, steps: int, eval_every: int) -> tuple[Callable, Any, int]:
    """jaxrl ``algo`` (``"dqn"`` or ``"pqn"``) on ``cartpole`` with rejax's settings:
    ``(train, hparams, env_steps)`` (``env_steps``: what the run really takes)."""
    from benchmarks import cases
    from jaxrl import agents, envs

    spec = agents.get(algo)
    s = REJAX_DQN_CARTPOLE if algo == "dqn" else REJAX_PQN_CARTPOLE
    common = {k: s[k] for k in ("eps_start", "eps_end", "gamma", "lr", "max_grad_norm")}
    common["exploration_fraction"] = s["eps_decay_fraction"]
    if algo == "dqn":
        config = spec.config(
            total_steps=steps,
            num_envs=s["num_envs"],
            batch_size=s["batch_size"],
            buffer_size=s["buffer_size"],
            warmup_steps=learning_starts(steps),
            updates_per_iter=s["updates_per_iter"],
            target_period=s["updates_per_iter"],
            double=s["double"],
            dueling=s["dueling"],
            hidden=tuple(s["hidden"]),
            activation="silu",  # flax's swish
            layer_norm=s["layer_norm"],
            num_evals=max(1, steps // eval_every),
            num_eval_envs=EVAL_EPISODES,
        )
        hparams = spec.default_hparams(tau=s["tau"], **common)
    else:
        config = spec.config(
            total_steps=steps,
            num_envs=s["num_envs"],
            rollout_len=s["rollout_len"],
            num_epochs=s["num_epochs"],
            num_minibatches=s["num_minibatches"],
            hidden=tuple(s["hidden"]),
            activation=s["activation"],
            layer_norm=s["layer_norm"],
            anneal_lr=False,
            rectified=False,
            num_evals=max(1, steps // eval_every),
            num_eval_envs=EVAL_EPISODES,
        )
        hparams = spec.default_hparams(lam=s["lam"], reward_scale=1.0, **common)
    env = envs.make("cartpole")
    return spec.make_train(config, env), hparams, cases.env_steps(spec, config, env)


def rejax_train(algo: str, steps: int, eval_every: int) -> Callable[[jax.Array], Any]:
    """rejax ``algo`` (``"dqn"`` or ``"pqn"``) on gymnax CartPole-v1 with its own settings,
    evaluating ``EVAL_EPISODES`` episodes every ``eval_every`` env steps."""
    import gymnax
    from rejax import DQN, PQN

    from benchmarks import cases

    env, params = gymnax.make("CartPole-v1")
    shared = (harness.GuardedLegacyStep(env), params, steps, eval_every, EVAL_EPISODES)
    if algo == "dqn":
        s = REJAX_DQN_CARTPOLE
        return cases.rejax_trainer(
            DQN,
            *shared,
            agent="DuelingQNetwork" if s["dueling"] else "QNetwork",
            agent_kwargs={"activation": s["activation"]},
            num_envs=s["num_envs"],
            buffer_size=s["buffer_size"],
            fill_buffer=learning_starts(steps),
            batch_size=s["batch_size"],
            max_grad_norm=s["max_grad_norm"],
            learning_rate=s["lr"],
            num_epochs=s["updates_per_iter"],
            polyak=1.0 - s["tau"],
            eps_start=s["eps_start"],
            eps_end=s["eps_end"],
            exploration_fraction=s["eps_decay_fraction"],
            gamma=s["gamma"],
            ddqn=s["double"],
        )
    s = REJAX_PQN_CARTPOLE
    return cases.rejax_trainer(
        PQN,
        *shared,
        num_envs=s["num_envs"],
        num_steps=s["rollout_len"],
        num_minibatches=s["num_minibatches"],
        max_grad_norm=s["max_grad_norm"],
        learning_rate=s["lr"],
        num_epochs=s["num_epochs"],
        eps_start=s["eps_start"],
        eps_end=s["eps_end"],
        exploration_fraction=s["eps_decay_fraction"],
        gamma=s["gamma"],
        td_lambda=s["lam"],
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """One algorithm's share of a budget: env steps and evaluation period per run, seeds of
    the time-to-solve run (1: the timed one-seed runs' own curves), timed one-seed rounds."""

    steps: int
    eval_every: int
    seeds: int
    rounds: int


def plan(algo: str, budget: Any) -> Plan:
    """``algo``'s ``Plan`` in ``budget``."""
    if algo == "dqn":
        return Plan(budget.dqn_steps, budget.dqn_eval_every, budget.dqn_seeds, budget.dqn_rounds)
    return Plan(budget.pqn_steps, budget.pqn_eval_every, budget.pqn_seeds, budget.pqn_rounds)


def _per_iter(algo: str) -> int:
    if algo == "dqn":
        return REJAX_DQN_CARTPOLE["num_envs"]
    return REJAX_PQN_CARTPOLE["num_envs"] * REJAX_PQN_CARTPOLE["rollout_len"]


def _curves(out: Any, library: str, eval_every: int) -> tuple[list[int], np.ndarray]:
    """``(steps [E], returns [S, E])`` of a run's evaluations (one seed: ``S = 1``)."""
    if library == "jaxrl":
        returns = np.asarray(out["eval_return"])
        steps = np.asarray(out["env_steps"])
        steps = steps if steps.ndim == 1 else steps[0]
        return [int(x) for x in steps], returns.reshape(-1, returns.shape[-1])
    _, (_, episode_returns) = out
    means = np.asarray(episode_returns).mean(axis=-1)  # [E] or [S, E]
    means = means.reshape(-1, means.shape[-1])
    return [eval_every * (i + 1) for i in range(means.shape[1])], means


def _algo(algo: str, p: Plan, budget: Any) -> tuple[dict[str, Any], dict]:
    """One algorithm's jaxrl and rejax figures: ``({contender: record}, ratios)``."""
    from jaxrl import sweep

    n, key, keys = p.seeds, jax.random.PRNGKey(0), sweep.seed_keys(0, p.seeds)
    ours, theirs = f"jaxrl_{algo}", f"rejax_{algo}"
    compile_s: dict[str, list[float]] = {ours: [], theirs: []}
    # Compile pairs of budgets one iteration apart (no in-process reuse), longest first:
    # the last pair, at ``p.steps``, is the one that runs.
    for i in reversed(range(budget.value_compile_pairs)):
        total = p.steps + i * _per_iter(algo)
        train, hparams, env_steps = jaxrl_train(algo, total, p.eval_every)
        one, seconds = harness.timed(lambda t=train, h=hparams: jax.jit(t).lower(key, h).compile())
        compile_s[ours].append(seconds)
        fn = rejax_train(algo, total, p.eval_every)
        rejax_one, seconds = harness.timed(lambda f=fn: jax.jit(f).lower(key).compile())
        compile_s[theirs].append(seconds)
    rounds = harness.alternate(
        {ours: lambda: one(key, hparams)[1], theirs: lambda: rejax_one(key)}, p.rounds
    )
    compiles = {name: {1: harness.median(compile_s[name])} for name in (ours, theirs)}
    run_s = {name: {1: [s for _, s in rs]} for name, rs in rounds.items()}
    last = {name: rs[-1][0] for name, rs in rounds.items()}
    if n > 1:  # time to solve over n vmapped seeds
        many, compiles[ours][n] = harness.timed(
            lambda: sweep.over_seeds(train, n).lower(keys, hparams).compile()
        )
        rejax_many, compiles[theirs][n] = harness.timed(
            lambda: jax.jit(jax.vmap(fn)).lower(keys).compile()
        )
        vmapped = harness.alternate(
            {ours: lambda: many(keys, hparams)[1], theirs: lambda: rejax_many(keys)}, 1
        )
        for name, rs in vmapped.items():
            last[name], run_s[name][n] = rs[0][0], [rs[0][1]]
    out: dict[str, Any] = {}
    for name, library, total in ((ours, "jaxrl", env_steps), (theirs, "rejax", p.steps)):
        curve_steps, returns = _curves(last[name], library, p.eval_every)
        per_seed = solve.first_steps(curve_steps, returns, budget.cartpole_threshold)
        out[name] = solve.jax_figures(
            per_seed, compiles[name], run_s[name], total, float(returns[:, -1].mean())
        )
        out[name]["compile_seconds_each"] = compile_s[name]
        out[name]["eval_steps"] = curve_steps
        out[name]["eval_returns_median"] = np.median(returns, axis=0).tolist()
    ratios = {
        f"ratio_steps_per_second_vs_{theirs}": harness.paired_ratio(
            [env_steps / s for s in run_s[ours][1]], [p.steps / s for s in run_s[theirs][1]]
        ),
        f"ratio_compile_speedup_vs_{theirs}": harness.paired_ratio(
            compile_s[theirs], compile_s[ours]
        ),
    }
    return out, ratios


def value_cartpole(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """DQN and PQN on CartPole: jaxrl against rejax on rejax's settings."""
    del results
    record: dict[str, Any] = {"contenders": {}}
    if (err := harness.try_import("rejax")[1]) is not None:
        for algo in ("dqn", "pqn"):
            p = plan(algo, budget)
            train, hparams, steps = jaxrl_train(algo, p.steps, p.eval_every)
            compiled, compile_s = harness.timed(
                lambda t=train, h=hparams: jax.jit(t).lower(jax.random.PRNGKey(0), h).compile()
            )
            _, seconds = harness.timed(lambda c=compiled, h=hparams: c(jax.random.PRNGKey(0), h)[1])
            record["contenders"][f"jaxrl_{algo}"] = {
                "status": "ok",
                "compile_seconds": compile_s,
                "env_steps_per_second": steps / seconds,
            }
            record["contenders"][f"rejax_{algo}"] = err
    else:
        for algo in ("dqn", "pqn"):
            contenders, ratios = _algo(algo, plan(algo, budget), budget)
            record["contenders"] |= contenders
            record |= ratios
            seeds = plan(algo, budget).seeds
            solve.ratios(record, f"jaxrl_{algo}", f"rejax_{algo}", f"rejax_{algo}", seeds)
    record["settings"] = {
        "env": "jaxrl cartpole / gymnax CartPole-v1",
        "threshold": budget.cartpole_threshold,
        "steps": {"dqn": budget.dqn_steps, "pqn": budget.pqn_steps},
        "eval_every": {"dqn": budget.dqn_eval_every, "pqn": budget.pqn_eval_every},
        "seeds": {"dqn": budget.dqn_seeds, "pqn": budget.pqn_seeds},
        "rounds": {"dqn": budget.dqn_rounds, "pqn": budget.pqn_rounds},
        "eval_episodes": EVAL_EPISODES,
        "compile_pairs": budget.value_compile_pairs,
        "dqn": REJAX_DQN_CARTPOLE,
        "pqn": REJAX_PQN_CARTPOLE,
        "notes": NOTES,
    }
    return record
