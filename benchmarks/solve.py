"""Time to solve: wall-clock seconds, compile included, until the evaluation return first
reaches a threshold; one seed, and ``N`` seeds vmapped in one call.

A JAX contender (jaxrl, rejax) trains ``N`` seeds in one compiled call, evaluating every
``eval_every`` env steps; each seed's curve gives its first step at the threshold, and
the median over seeds (an unsolved seed counts as never) is the steps a typical seed
needs. The seconds to get there are ``compile + run * median_steps / total_steps``,
with ``run`` the median wall time of the whole compiled run (its evaluations included,
the same schedule for both JAX contenders): once for one seed (``seconds_to_threshold``)
and once for the vmapped ``N`` (``seconds_to_threshold_<N>_seeds``). Stable-Baselines3
trains one seed at a time and stops when it gets there; its seconds are measured
directly with the time spent in its evaluations left out (in its favour), and ``N``
seeds take ``N`` times the median seed (it runs them one after another).

Ratios are contender seconds / jaxrl seconds: above 1 when jaxrl gets there sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import harness


def first_steps(steps: Sequence[int], returns: Any, threshold: float) -> list[int | None]:
    """Per seed, the first of ``steps [E]`` whose ``returns [S, E]`` is >= ``threshold``."""
    reached = np.asarray(returns) >= threshold
    return [int(steps[int(np.argmax(r))]) if r.any() else None for r in reached]


def median_steps(per_seed: Sequence[int | None]) -> float | None:
    """Median over seeds of the steps to the threshold (never = infinity), or None if infinite."""
    med = float(np.median([np.inf if s is None else s for s in per_seed]))
    return None if not np.isfinite(med) else med


def seconds_to(compile_s: float, run_s: float, total_steps: int, steps: float | None):
    """``compile_s + run_s * steps / total_steps``, or None when ``steps`` is None."""
    return None if steps is None else compile_s + run_s * steps / total_steps


def jax_figures(
    per_seed: list[int | None],
    compile_s: dict[int, float],
    run_s: dict[int, list[float]],
    total_steps: int,
    final_return: float,
) -> dict[str, Any]:
    """The record of a JAX contender from its seeds' first steps and its timings per seed count.

    ``compile_s`` and ``run_s`` are keyed by the number of vmapped seeds (1 and N).
    """
    steps = median_steps(per_seed)
    out: dict[str, Any] = {
        "status": "ok",
        "env_steps": total_steps,
        "compile_seconds": compile_s[1],
        "env_steps_per_second": total_steps / harness.median(run_s[1]),
        "final_return": final_return,
        "steps_to_threshold": per_seed,
        "median_steps_to_threshold": steps,
    }
    for n in compile_s:
        suffix = "" if n == 1 else f"_{n}_seeds"
        out[f"compile_seconds{suffix}"] = compile_s[n]
        out[f"run_seconds{suffix}"] = run_s[n]
        out[f"seconds_to_threshold{suffix}"] = seconds_to(
            compile_s[n], harness.median(run_s[n]), total_steps, steps
        )
    return out


def ratios(record: dict[str, Any], ours: str, theirs: str, name: str, seeds: int) -> None:
    """Adds ``ratio_time_to_solve[_<N>_seeds]_vs_<name>`` (theirs / ours) where both solved."""
    a, b = record["contenders"][ours], record["contenders"][theirs]
    if b.get("status") != "ok":
        return
    for suffix, key in (("", ""), (f"_{seeds}_seeds", f"_{seeds}_seeds")):
        mine, other = a.get(f"seconds_to_threshold{suffix}"), b.get(f"seconds_to_threshold{suffix}")
        if mine is not None and other is not None:
            record[f"ratio_time_to_solve{key}_vs_{name}"] = other / mine


def sequential_figures(seconds: list[float | None], steps: list[int | None], seeds: int) -> dict:
    """A one-seed-at-a-time contender's record from its seeds' measured seconds and steps."""
    med = median_steps(seconds)
    return {
        "status": "ok",
        "seconds_per_seed": seconds,
        "steps_to_threshold": steps,
        "median_steps_to_threshold": median_steps(steps),
        "seconds_to_threshold": med,
        f"seconds_to_threshold_{seeds}_seeds": None if med is None else seeds * med,
    }


def sb3_ppo_solve(
    eval_episodes: int, threshold: float, max_steps: int, eval_every: int, seed: int
) -> Callable[[], tuple[float | None, int | None, float]]:
    """``cases.sb3_ppo(seed)`` evaluated (``eval_episodes`` deterministic episodes) every
    ``eval_every`` steps and stopped at ``threshold``: returns ``(seconds, steps, final)``,
    seconds without the evaluations (None when not reached in ``max_steps``)."""
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    class UntilSolved(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.env = gym.make("CartPole-v1")
            self.next_eval, self.eval_seconds, self.last = eval_every, 0.0, float("nan")
            self.reached: int | None = None

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += eval_every
            t0 = time.perf_counter()
            self.last, _ = evaluate_policy(
                self.model, self.env, n_eval_episodes=eval_episodes, deterministic=True
            )
            self.eval_seconds += time.perf_counter() - t0
            if self.last >= threshold:
                self.reached = self.num_timesteps
            return self.reached is None

    def run() -> tuple[float | None, int | None, float]:
        from benchmarks import cases

        t0 = time.perf_counter()
        model = cases.sb3_ppo(seed)
        callback = UntilSolved()
        model.learn(total_timesteps=max_steps, callback=callback)
        seconds = time.perf_counter() - t0 - callback.eval_seconds
        return (None if callback.reached is None else seconds), callback.reached, callback.last

    return harness.single_torch_thread(run)


def ppo_cartpole_solve(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Seconds to a CartPole return of ``budget.cartpole_threshold`` (475): jaxrl on rejax's
    settings, on SB3's zoo settings and on its own (``JAXRL_CARTPOLE``), rejax on its own,
    SB3 on the zoo's; one seed and ``budget.solve_seeds`` vmapped seeds."""
    from benchmarks import cases
    from jaxrl import sweep

    total, n, every = budget.solve_steps, budget.solve_seeds, budget.solve_eval_every
    threshold = budget.cartpole_threshold
    keys = sweep.seed_keys(0, n)
    runners: dict[str, Callable[[], Any]] = {}
    compile_s: dict[str, dict[int, float]] = {}
    ours = {
        "jaxrl": cases.REJAX_CARTPOLE,
        "jaxrl_tuned": cases.JAXRL_CARTPOLE,
        "jaxrl_sb3_zoo": cases.SB3_ZOO_AS_JAXRL,
    }
    for name, settings in ours.items():
        per_iter = settings["num_envs"] * settings["rollout_len"]
        evals = max(1, min(total // every, total // per_iter))  # whole iterations per period
        train, hp = cases.jaxrl_ppo_train(total, settings, num_evals=evals)
        one, c1 = harness.timed(lambda t=train, h=hp: jax.jit(t).lower(keys[0], h).compile())
        many, cn = harness.timed(
            lambda t=train, h=hp: sweep.over_seeds(t, n).lower(keys, h).compile()
        )
        compile_s[name] = {1: c1, n: cn}
        runners[f"{name}@1"] = lambda c=one, h=hp: c(keys[0], h)[1]
        runners[f"{name}@{n}"] = lambda c=many, h=hp: c(keys, h)[1]
    first_call: dict[int, float] = {}
    if (rejax_err := harness.try_import("rejax")[1]) is None:
        fn = cases.rejax_ppo_train(total, every)
        single = jax.jit(fn)  # first call untimed in the rounds, as rejax users run it
        _, first_call[1] = harness.timed(lambda: single(keys[0]))
        runners["rejax@1"] = lambda: single(keys[0])
        # N seeds: compiled ahead of time (one long run saved; same XLA compile)
        batched, rejax_compile_n = harness.timed(
            lambda: jax.jit(jax.vmap(fn)).lower(keys).compile()
        )
        runners[f"rejax@{n}"] = lambda: batched(keys)
    # One-seed runs take under a second: ``repeats`` alternating rounds. The vmapped runs
    # take tens of seconds each: ``solve_rounds`` rounds.
    runs = harness.alternate({k: r for k, r in runners.items() if k.endswith("@1")}, budget.repeats)
    runs |= harness.alternate(
        {k: r for k, r in runners.items() if not k.endswith("@1")}, budget.solve_rounds
    )
    seconds = {k: [s for _, s in rs] for k, rs in runs.items()}

    contenders: dict[str, Any] = {}
    for name in ours:
        metrics = runs[f"{name}@{n}"][-1][0]
        returns = np.asarray(metrics["eval_return"])  # [n, E]
        steps = [int(x) for x in np.asarray(metrics["env_steps"])[0]]
        # The run's own length: whole iterations per evaluation period can stop it short of
        # ``total`` (8 x 64 steps per iteration: 92,160 of 100,000), and run seconds cover it.
        contenders[name] = jax_figures(
            first_steps(steps, returns, threshold),
            compile_s[name],
            {1: seconds[f"{name}@1"], n: seconds[f"{name}@{n}"]},
            steps[-1],
            float(returns[:, -1].mean()),
        )
        contenders[name]["eval_steps"] = steps
    if rejax_err is None:
        _, (_, episode_returns) = runs[f"rejax@{n}"][-1][0]
        returns = np.asarray(episode_returns).mean(axis=-1)  # [n, E]
        steps = [every * (i + 1) for i in range(returns.shape[1])]
        run_s = {c: seconds[f"rejax@{c}"] for c in (1, n)}
        rejax_compile = {1: first_call[1] - harness.median(run_s[1]), n: rejax_compile_n}
        contenders["rejax"] = jax_figures(
            first_steps(steps, returns, threshold),
            rejax_compile,
            run_s,
            total,
            float(returns[:, -1].mean()),
        )
        contenders["rejax"]["eval_steps"] = steps
    else:
        contenders["rejax"] = rejax_err
    if (sb3_err := harness.try_import("stable_baselines3")[1]) is None:
        episodes = cases.SB3_ZOO_CARTPOLE["eval_episodes"]
        outs = [
            sb3_ppo_solve(episodes, threshold, budget.solve_sb3_steps, every, seed)()
            for seed in range(budget.solve_sb3_seeds)
        ]
        contenders["sb3"] = sequential_figures([o[0] for o in outs], [o[1] for o in outs], n)
        contenders["sb3"]["compile_seconds"] = None
        contenders["sb3"]["final_return"] = float(np.mean([o[2] for o in outs]))
        solved = [o for o in outs if o[0] is not None]
        contenders["sb3"]["env_steps_per_second"] = (
            harness.median([o[1] / o[0] for o in solved]) if solved else None
        )
    else:
        contenders["sb3"] = sb3_err
    record: dict[str, Any] = {
        "settings": {
            "threshold": threshold,
            "env_steps_per_seed": total,
            "seeds": n,
            "eval_every": every,
            "eval_episodes": cases.REJAX_CARTPOLE["num_eval_envs"],
            "repeats": {"1 seed": budget.repeats, f"{n} seeds": budget.solve_rounds},
            "sb3_seeds": budget.solve_sb3_seeds,
            "sb3_max_steps": budget.solve_sb3_steps,
            "jaxrl": cases.REJAX_CARTPOLE,
            "jaxrl_tuned": cases.JAXRL_CARTPOLE,
            "jaxrl_sb3_zoo": cases.SB3_ZOO_AS_JAXRL,
            "rejax": cases.REJAX_CARTPOLE,
            "sb3": cases.SB3_ZOO_CARTPOLE,
            "notes": [
                __doc__.split("\n\n")[1].replace("\n", " "),
                "shared settings: jaxrl vs rejax on rejax's CartPole settings, jaxrl_sb3_zoo "
                "vs sb3 on the zoo's; own tuned settings: jaxrl_tuned vs rejax and vs sb3",
                f"jaxrl's {n} seeds run through jaxrl.sweep.over_seeds, one device per CPU "
                "core (jaxrl.sweep.use_cpu_cores); rejax's through jit(vmap(train)), its "
                "documented way, on one device",
                "rejax compile_seconds = first call - median steady run (1 seed); "
                "lower + compile ahead of time (N seeds)",
            ],
        },
        "contenders": contenders,
    }
    ratios(record, "jaxrl", "rejax", "rejax", n)
    ratios(record, "jaxrl_tuned", "rejax", "tuned_rejax", n)
    ratios(record, "jaxrl_sb3_zoo", "sb3", "sb3", n)
    ratios(record, "jaxrl_tuned", "sb3", "tuned_sb3", n)
    return record
