"""Bench case ``ppo_mjx``: PPO on MJX tasks, jaxrl against ``brax.training.agents.ppo.train``.

Both trainers get the same Brax env object (MJX backend; jaxrl sees it through its
``BraxEnv`` adapter), Brax's own published PPO settings, the same network sizes and
the same step budget (Brax rounds the budget up to whole epochs; jaxrl runs exactly
as many steps). The case also measures the raw throughput of that env with random
actions at the training batch (issue case 4) and each trainer's fraction of it.

Timing. Brax's ``train`` compiles inside every call (one to two minutes for an MJX env
on 2 CPU cores), so the rounds alternate *within one Brax call*: Brax's ``progress_fn``
runs after each of its epochs (training steps plus one evaluation), and there, outside
Brax's timed intervals, one whole compiled jaxrl run is timed. A Brax epoch counts as
steady state when no XLA compilation happened during it (under jax 0.10 Brax compiles
its epoch and its evaluator twice: the second call sees arrays with a new sharding).
jaxrl's run has the same make-up (its epochs, each closed by one evaluation), so the
two env-steps-per-second figures compare like with like; ``ratio_steps_per_second_vs_brax``
is the median of jaxrl / Brax over the paired rounds (higher is better for jaxrl).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks import harness, solve
from jaxrl import envs

SOURCE = (
    "Brax's published PPO settings: notebooks/training.ipynb in github.com/google/brax "
    "(train_fn for 'inverted_pendulum'). Brax publishes no PPO row for hopper (its notebook "
    "trains hopper with SAC), so hopper uses the same row (Brax's PPO family for "
    "inverted_pendulum / inverted_double_pendulum / ant)."
)

#: Brax's published PPO settings (``brax.training.agents.ppo.train`` keyword arguments).
BRAX_INVERTED_PENDULUM = {
    "num_evals": 20,
    "reward_scaling": 10.0,
    "episode_length": 1000,
    "normalize_observations": True,
    "action_repeat": 1,
    "unroll_length": 5,
    "num_minibatches": 32,
    "num_updates_per_batch": 4,
    "discounting": 0.97,
    "learning_rate": 3e-4,
    "entropy_cost": 1e-2,
    "num_envs": 2048,
    "batch_size": 1024,
}
BRAX_PPO: dict[str, dict[str, Any]] = {
    "inverted_pendulum": BRAX_INVERTED_PENDULUM,
    "hopper": BRAX_INVERTED_PENDULUM,
    "fast": BRAX_INVERTED_PENDULUM,  # Brax's unit-test env (no physics): tiny mode only
}

#: Brax ``ppo.train`` defaults the published rows leave alone, stated for the record.
BRAX_DEFAULTS = {
    "clipping_epsilon": 0.3,
    "gae_lambda": 0.95,
    "vf_loss_coefficient": 0.5,
    "normalize_advantage": True,
    "max_grad_norm": None,
    "num_eval_envs": 128,
}

#: Both trainers' networks: Brax's default policy torso (4x32, swish) for actor and
#: critic (jaxrl's PPO has one ``hidden`` for both), a Gaussian with a learned
#: state-independent log-std (jaxrl's ``DiagGaussian``; Brax's ``distribution_type="normal",
#: noise_std_type="log"``).
NETWORK = {"hidden": (32, 32, 32, 32), "activation": "swish (jax.nn.silu)"}

#: Changes to the published settings per bench mode: the published 2048 envs x 80 steps
#: per iteration leave 300k steps (quick) only two iterations, so quick and tiny shrink
#: num_envs and batch_size by the same factor (16 unrolls per env per iteration, as
#: published), with fewer, smaller evaluations. ``num_evals`` None means ``budget.repeats + 3``:
#: Brax's initial evaluation, 2 epochs that compile, then ``repeats`` steady epochs.
MODE_OVERRIDES: dict[str, dict[str, Any]] = {
    "full": {},
    "quick": {"num_envs": 128, "batch_size": 64, "num_evals": None, "num_eval_envs": 16},
    "tiny": {"num_envs": 4, "batch_size": 2, "num_evals": None, "num_eval_envs": 4},
}


#: Time-to-solve thresholds per task: near-optimal where the optimum is known
#: (inverted_pendulum: 1000 = balanced for the whole episode). hopper has none.
MJX_THRESHOLDS: dict[str, float] = {"inverted_pendulum": 950.0, "fast": -1e9}


def brax_settings(task: str, budget: Any) -> dict[str, Any]:
    """Brax's settings for ``task`` in ``budget.mode``: its published row plus overrides."""
    s = {**BRAX_PPO[task], **BRAX_DEFAULTS, **MODE_OVERRIDES[budget.mode]}
    if s["num_evals"] is None:
        s["num_evals"] = budget.repeats + 3
    s["num_timesteps"] = budget.mjx_steps
    return s


def schedule(s: dict[str, Any]) -> tuple[int, int, int]:
    """``(steps_per_iter, iters_per_epoch, epochs)`` as Brax's ``train`` computes them."""
    steps_per_iter = s["batch_size"] * s["num_minibatches"] * s["unroll_length"]
    steps_per_iter *= s["action_repeat"]
    epochs = max(s["num_evals"] - 1, 1)
    return steps_per_iter, math.ceil(s["num_timesteps"] / (epochs * steps_per_iter)), epochs


def brax_env(task: str) -> Any:
    """The Brax env both trainers train on (MJX backend; ``fast`` has no physics backend)."""
    import brax.envs

    return brax.envs.get_environment(task, **({} if task == "fast" else {"backend": "mjx"}))


# --- jaxrl ------------------------------------------------------------------------------


def jaxrl_train(raw_env: Any, s: dict[str, Any]) -> tuple[Callable, Any, dict[str, Any]]:
    """jaxrl PPO with Brax's settings ``s``: ``(train, hparams, settings)``.

    Brax's ``reward_scaling`` and Adam eps map onto PPO's ``reward_scale`` and
    ``adam_eps`` hyperparameters; no gradient clipping (``max_grad_norm=inf``).
    """
    from jaxrl.agents.on_policy import ppo
    from jaxrl.envs.brax_env import BraxEnv

    steps_per_iter, iters, epochs = schedule(s)
    env = envs.EpisodeLimit(BraxEnv(raw_env), s["episode_length"])
    config = ppo.Config(
        total_steps=steps_per_iter * iters * epochs,
        num_envs=s["num_envs"],
        rollout_len=steps_per_iter // s["num_envs"],
        num_epochs=s["num_updates_per_batch"],
        num_minibatches=s["num_minibatches"],
        hidden=NETWORK["hidden"],
        activation="silu",
        anneal_lr=False,
        clip_value=False,
        normalize_obs=s["normalize_observations"],
        normalize_advantages=s["normalize_advantage"],
        num_evals=epochs,
        num_eval_envs=s["num_eval_envs"],
    )
    hparams = ppo.SPEC.default_hparams(
        lr=s["learning_rate"],
        gamma=s["discounting"],
        gae_lambda=s["gae_lambda"],
        clip_eps=s["clipping_epsilon"],
        ent_coef=s["entropy_cost"],
        vf_coef=s["vf_loss_coefficient"],
        max_grad_norm=math.inf,  # Brax: no gradient clipping
        reward_scale=s["reward_scaling"],
        adam_eps=1e-8,  # Brax's optax.adam default
    )
    train = ppo.SPEC.make_train(config, env)
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()}
    settings["hparams"] = {k: float(v) for k, v in vars(hparams).items()}
    settings["hparams"]["max_grad_norm"] = None
    return train, hparams, settings


# --- Brax -------------------------------------------------------------------------------


def brax_kwargs(s: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``brax.training.agents.ppo.train`` for settings ``s``."""
    import flax.linen as nn
    from brax.training.agents.ppo import networks

    network_factory = functools.partial(
        networks.make_ppo_networks,
        policy_hidden_layer_sizes=NETWORK["hidden"],
        value_hidden_layer_sizes=NETWORK["hidden"],
        activation=nn.swish,
        distribution_type="normal",
        noise_std_type="log",
    )
    return s | {
        "network_factory": network_factory,
        "deterministic_eval": True,  # as jaxrl evaluates
        "seed": 0,
        "max_devices_per_host": 1,  # one device, as jaxrl's single run (see NOTES)
    }


class Rounds:
    """Brax's ``progress_fn``: times Brax's epochs and runs one jaxrl round after each.

    ``epochs`` holds ``(seconds, steady)`` per Brax epoch (its training steps and its
    evaluation, the time spent in this callback excluded); ``pairs`` holds
    ``(brax_epoch_seconds, jaxrl_run)`` for steady epochs, at most ``repeats``.
    """

    def __init__(self, run_jaxrl: Callable[[], tuple], repeats: int, compiles: harness.CompileLog):
        self.run_jaxrl, self.repeats, self.compiles = run_jaxrl, repeats, compiles
        self.epochs: list[tuple[float, bool]] = []
        self.pairs: list[tuple[float, tuple]] = []
        self.returns: list[float] = []
        self.steps: list[int] = []
        self.elapsed: list[float] = []  # Brax's own seconds since the call, at each evaluation
        self._left = self._started = time.perf_counter()
        self._outside = 0.0  # seconds spent in this callback
        self._compiles = compiles.count

    def __call__(self, step: int, metrics: dict[str, Any]) -> None:
        entered = time.perf_counter()
        self.returns.append(float(metrics.get("eval/episode_reward", math.nan)))
        self.steps.append(int(step))
        self.elapsed.append(entered - self._started - self._outside)
        if step > 0:  # the first call follows Brax's initial evaluation, not an epoch
            seconds, steady = entered - self._left, self.compiles.count == self._compiles
            self.epochs.append((seconds, steady))
            if steady and len(self.pairs) < self.repeats:
                self.pairs.append((seconds, self.run_jaxrl()))
        self._compiles = self.compiles.count
        self._left = time.perf_counter()
        self._outside += self._left - entered

    def seconds_to(self, threshold: float) -> tuple[int | None, float | None]:
        """``(step, seconds)`` of the first evaluation at or above ``threshold``: Brax's
        wall time since the call (tracing, compiling and evaluating included; the time in
        this callback excluded), or ``(None, None)``."""
        for step, ret, seconds in zip(self.steps, self.returns, self.elapsed, strict=True):
            if ret >= threshold:
                return step, seconds
        return None, None


# --- the case ---------------------------------------------------------------------------


def random_rollout(raw_env: Any, num_envs: int, length: int) -> Callable[[jax.Array], jax.Array]:
    """Random actions in ``[-1, 1]`` in the vmapped raw Brax env (no wrappers, no resets)."""

    def rollout(key: jax.Array) -> jax.Array:
        reset_key, key = jax.random.split(key)
        state = jax.vmap(raw_env.reset)(jax.random.split(reset_key, num_envs))

        def body(state, k):
            action = jax.random.uniform(k, (num_envs, raw_env.action_size), minval=-1, maxval=1)
            state = jax.vmap(raw_env.step)(state, action)
            return state, state.done.sum()

        last, dones = jax.lax.scan(body, state, jax.random.split(key, length))
        return last.obs.sum() + dones.sum()  # keeps the dynamics live

    return rollout


def raw_throughput(raw_env: Any, num_envs: int, steps: int, repeats: int) -> dict[str, Any]:
    """Random-action env steps per second at ``num_envs``, median of ``repeats`` runs."""
    length = max(1, steps // num_envs)
    key = jax.random.PRNGKey(0)
    compiled, compile_s = harness.timed(
        lambda: jax.jit(random_rollout(raw_env, num_envs, length)).lower(key).compile()
    )
    runs = harness.alternate({"raw": lambda: compiled(key)}, repeats)["raw"]
    seconds = [s for _, s in runs]
    return {
        "status": "ok",
        "compile_seconds": compile_s,
        "run_seconds": seconds,
        "env_steps": length * num_envs,
        "env_steps_per_second": harness.median([length * num_envs / s for s in seconds]),
    }


def brax_record(
    rounds: Rounds,
    compiles: harness.CompileLog,
    call_s: float,
    steady: bool,
    steps: int,
    epoch_steps: int,
) -> dict[str, Any]:
    """Brax's record from one ``train`` call timed by ``rounds`` (its paired epochs)."""
    brax_seconds = [b for b, _ in rounds.pairs]
    return {
        "status": "ok",
        # XLA compile seconds during the call (Brax traces inside train(), untimed).
        "compile_seconds": compiles.seconds,
        "xla_compilations": compiles.count,
        "call_seconds": call_s,
        "epoch_seconds": [e for e, _ in rounds.epochs],
        "epoch_steady": [ok for _, ok in rounds.epochs],
        "steady_state": steady,
        "run_seconds": brax_seconds,
        "env_steps": steps,
        "env_steps_per_second": harness.median([epoch_steps / b for b in brax_seconds]),
        "final_return": rounds.returns[-1],
        "eval_returns": rounds.returns,
    }


def jaxrl_record(compile_s: float, runs: list[tuple], steps: int) -> dict:
    """A jaxrl contender's record from its compile seconds and ``(metrics, seconds)`` runs."""
    seconds = [s for _, s in runs]
    metrics = runs[-1][0]
    returns = np.asarray(metrics["eval_return"])
    return {
        "status": "ok",
        "compile_seconds": compile_s,
        "run_seconds": seconds,
        "env_steps": steps,
        "env_steps_per_second": harness.median([steps / s for s in seconds]),
        "final_return": float(returns[-1]),
        "eval_returns": returns.tolist(),
        "eval_steps": [int(x) for x in np.asarray(metrics["env_steps"])],
    }


def add_time_to_solve(record: dict, threshold: float | None, brax: Rounds | None) -> None:
    """Adds ``steps_to_threshold`` and ``seconds_to_threshold`` (compile included) to a
    jaxrl record (from its evaluation curve) and, with ``brax``, to Brax's record."""
    if threshold is None:
        return
    jaxrl = record["jaxrl"]
    first = solve.first_steps(jaxrl["eval_steps"], [jaxrl["eval_returns"]], threshold)
    figures = solve.jax_figures(
        first, {1: jaxrl["compile_seconds"]}, {1: jaxrl["run_seconds"]}, jaxrl["env_steps"], 0.0
    )
    for k in ("steps_to_threshold", "median_steps_to_threshold", "seconds_to_threshold"):
        jaxrl[k] = figures[k]
    if brax is not None:
        step, seconds = brax.seconds_to(threshold)
        record["brax"].update(
            steps_to_threshold=[step], median_steps_to_threshold=step, seconds_to_threshold=seconds
        )


def run_task(task: str, budget: Any, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both trainers and the raw env on ``task``: ``{"settings", "jaxrl", "brax", "raw"}``
    records, and ``paired_ratio`` (jaxrl / Brax env steps per second) when Brax ran."""
    s = brax_settings(task, budget)
    steps_per_iter, iters, epochs = schedule(s)
    epoch_steps = steps_per_iter * iters
    steps = epoch_steps * epochs
    raw_env = brax_env(task)
    key = jax.random.PRNGKey(0)

    train, hparams, jaxrl_settings = jaxrl_train(raw_env, s)
    with harness.CompileLog() as compiles:
        compiled, compile_s = harness.timed(lambda: jax.jit(train).lower(key, hparams).compile())
    jaxrl_xla = {"xla_compile_seconds": compiles.seconds}

    def run_jaxrl() -> tuple:
        return harness.timed(lambda: compiled(key, hparams)[1])

    out: dict[str, Any] = {"settings": {"brax": s, "jaxrl": jaxrl_settings, "env_steps": steps}}
    brax_ppo, brax_missing = harness.try_import("brax.training.agents.ppo.train")
    if brax_missing is not None:
        runs = [run_jaxrl() for _ in range(budget.repeats)]
        out["jaxrl"] = jaxrl_record(compile_s, runs, steps) | jaxrl_xla
        out["brax"] = brax_missing
    else:
        log(harness.restore_device_put_replicated())
        with harness.CompileLog() as compiles:
            rounds = Rounds(run_jaxrl, budget.repeats, compiles)
            _, call_s = harness.timed(
                lambda: brax_ppo.train(raw_env, progress_fn=rounds, **brax_kwargs(s))
            )
        steady = bool(rounds.pairs)
        if not steady:  # budgets too small for a compile-free epoch: pair the last one
            rounds.pairs.append((rounds.epochs[-1][0], run_jaxrl()))
        brax_seconds = [b for b, _ in rounds.pairs]
        jaxrl_runs = [r for _, r in rounds.pairs]
        out["jaxrl"] = jaxrl_record(compile_s, jaxrl_runs, steps) | jaxrl_xla
        out["brax"] = brax_record(rounds, compiles, call_s, steady, steps, epoch_steps)
        out["paired_ratio"] = harness.paired_ratio(
            [steps / r[1] for r in jaxrl_runs], [epoch_steps / b for b in brax_seconds]
        )
    add_time_to_solve(out, MJX_THRESHOLDS.get(task), None if brax_missing else rounds)
    # One Brax epoch's worth of steps is plenty for the raw rate.
    raw_steps = min(budget.raw_steps, epoch_steps)
    out["raw"] = raw_throughput(raw_env, s["num_envs"], raw_steps, budget.repeats)
    return out


def ppo_mjx(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """PPO on each of ``budget.mjx_tasks``: jaxrl vs Brax's trainer, and the raw env limit."""
    contenders: dict[str, Any] = {}
    record: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for task in budget.mjx_tasks:
        out = run_task(task, budget)
        tasks[task] = out["settings"]
        for name, label in (("jaxrl", "jaxrl"), ("brax", "brax"), ("raw", "random_actions")):
            contenders[f"{label}/{task}"] = out[name]
        raw_sps = out["raw"]["env_steps_per_second"]
        for name in ("jaxrl", "brax"):
            if out[name].get("status") == "ok":
                fraction = out[name]["env_steps_per_second"] / raw_sps
                record.setdefault(f"{name}_ppo_fraction_of_raw", {})[task] = fraction
        if "paired_ratio" in out:
            record.setdefault("ratio_steps_per_second_vs_brax", {})[task] = out["paired_ratio"]
        ours, theirs = (out[n].get("seconds_to_threshold") for n in ("jaxrl", "brax"))
        if ours is not None and theirs is not None:
            record.setdefault("ratio_time_to_solve_vs_brax", {})[task] = theirs / ours
    record["settings"] = {
        "source": SOURCE,
        "tasks": tasks,
        "network": {**NETWORK, "hidden": list(NETWORK["hidden"])},
        "repeats": budget.repeats,
        "thresholds": {t: MJX_THRESHOLDS.get(t) for t in budget.mjx_tasks},
        "notes": NOTES,
    }
    record["contenders"] = contenders
    return record


NOTES = [
    "jax.device_put_replicated (called by Brax 0.14.2, removed from jax 0.10's public API) "
    "is restored by the bench harness before Brax's trainer runs; jaxrl does not use it",
    "same Brax env object for both (MJX backend), episode_length 1000, action_repeat 1; "
    "quick/tiny scale num_envs and batch_size down together (see brax settings) and use "
    "fewer evaluations with fewer eval envs; tiny uses Brax's physics-free 'fast' env",
    "networks: Brax's default policy torso 4x32 swish for actor and critic in both (jaxrl's "
    "PPO has one hidden size; Brax's default critic is 5x256), Gaussian policy with a learned "
    "state-independent log-std in both (Brax distribution_type='normal', noise_std_type='log' "
    "instead of its default tanh-squashed Gaussian); initialisers differ (Brax lecun_uniform, "
    "jaxrl orthogonal)",
    "iteration: Brax collects batch_size*num_minibatches/num_envs unrolls of unroll_length "
    "per env; jaxrl collects one rollout of that many steps per env (rollout_len), then the "
    "same num_minibatches x num_updates_per_batch gradient steps on the same samples",
    "differences not removable from the bench: Brax computes GAE over each unroll_length "
    "segment inside the loss with the current value net, jaxrl once per rollout over "
    "rollout_len steps; Brax masks truncated steps, jaxrl bootstraps from V(final obs); "
    "Brax updates observation statistics before SGD, "
    "jaxrl after; Brax passes unclipped actions to MJX (ctrl clamped to ctrlrange), jaxrl "
    "clips to [-1, 1]; Brax auto-resets to its first initial state, jaxrl draws a new one",
    "reward_scaling and Adam eps 1e-8 set through jaxrl PPO's reward_scale and adam_eps "
    "hyperparameters (rewards scaled before GAE, as Brax scales them in its loss)",
    "max_grad_norm None in Brax; jaxrl runs with max_grad_norm=inf (clipping is a no-op)",
    "both trainers run one seed on one device: Brax with max_devices_per_host=1 (under the "
    "CLI jaxrl exposes each CPU core as a device for seed sweeps, and Brax would pmap its "
    "envs over them), jaxrl's single run is not sharded",
    "time to solve (thresholds): seconds until an evaluation first reaches the threshold, "
    "compile included; Brax's measured in its call (tracing, compile and evaluations "
    "included, the jaxrl rounds run in its progress_fn excluded), jaxrl's as compile + "
    "median run seconds x first step / steps (its evaluations included); one seed each, as "
    "Brax's trainer trains one; evaluations after every epoch for both",
    "evaluation: deterministic policy, num_eval_envs episodes of up to 1000 steps after "
    "each epoch for both (Brax also evaluates once before training)",
    "timing: jaxrl AOT-compiled once, then one whole run timed inside Brax's progress_fn "
    "after each steady Brax epoch (rounds alternate B A B A); Brax's steps/s is per steady "
    "epoch (no XLA compilation during it), training plus its evaluation, as in jaxrl's run",
    "compile_seconds: jaxrl lower+compile wall time; Brax XLA compile seconds recorded by "
    "jax.monitoring during its call (its tracing is not included)",
    "random_actions: the raw Brax env vmapped at num_envs with uniform actions in [-1, 1], no "
    "resets or wrappers; the *_fraction_of_raw figures count training steps only, while the "
    "trainers' times include their evaluations",
]
