"""Benchmark cases. Each case maps a ``Budget`` (and earlier results) to one JSON record.

A record holds ``settings`` (identical for the JAX contenders), ``contenders``
(per library: ``compile_seconds``, median steady-state ``env_steps_per_second``,
``final_return``, or ``{"status": "missing", ...}``) and paired-median ratios
``ratio_steps_per_second_vs_<contender>`` = jaxrl / contender.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks import harness
from benchmarks.atari_case import atari_throughput
from benchmarks.drama_case import drama_world_model
from benchmarks.mjx_case import ppo_mjx
from benchmarks.sac_case import sac_pendulum
from benchmarks.solve import ppo_cartpole_solve
from benchmarks.stream_case import stream_cartpole
from benchmarks.value_case import value_cartpole
from jaxrl import compile_cache

#: rejax's own CartPole-v1 PPO settings, used for both JAX contenders.
REJAX_CARTPOLE = {
    "num_envs": 5,
    "rollout_len": 100,
    "num_epochs": 5,
    "num_minibatches": 5,
    "lr": 7.5e-4,
    "max_grad_norm": 0.5,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_eps": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "hidden": [64, 64],
    "activation": "tanh",
    "anneal_lr": False,
    "clip_value": True,
    "ortho_init": False,  # rejax's networks keep flax's default lecun_normal init
    "normalize_obs": False,
    "adam_eps": 1e-5,  # jaxrl PPO's default; rejax uses optax's 1e-8 (not settable)
    "num_evals": 1,
    "num_eval_envs": 16,
}

#: rl-baselines3-zoo's tuned CartPole-v1 PPO settings for Stable-Baselines3.
SB3_ZOO_CARTPOLE = {
    "n_envs": 8,
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "linear 1e-3",
    "clip_range": "linear 0.2",
    "policy": "MlpPolicy (tanh 64x64)",
    "eval_episodes": 16,
}


@dataclasses.dataclass(frozen=True)
class Budget:
    """Step budgets and repeat counts of one bench mode."""

    mode: str
    ppo_steps: int
    sb3_steps: int
    repeats: int
    raw_steps: int
    seed_counts: tuple[int, ...]
    seed_steps: int
    seed_repeats: int
    sac_steps: int  # jaxrl and rejax SAC on pendulum
    mjx_steps: int  # PPO on each MJX task, jaxrl and Brax
    mjx_tasks: tuple[str, ...]
    stream_steps: int  # streaming learners, per seed
    atari_steps: int  # agent steps of Breakout per way of stepping it (atari_throughput)
    solve_steps: int  # time to solve: env steps per seed of each JAX contender's run
    solve_seeds: int  # ... and the vmapped seed count it is timed at (besides 1)
    solve_rounds: int  # timed rounds of the vmapped runs
    solve_eval_every: int  # env steps between evaluations
    solve_sb3_seeds: int  # SB3 seeds, one after another
    solve_sb3_steps: int  # SB3's cap when it does not get there
    sac_solve_steps: int  # jaxrl and rejax SAC's vmapped run until -200
    sac_solve_seeds: int  # ... its seeds (16 seeds of SAC take minutes on 2 cores)
    sac_solve_torch_seeds: int  # SBX and SB3 SAC seeds trained until -200
    sac_solve_torch_steps: int  # ... and their cap
    cartpole_threshold: float  # 475 (CartPole-v1's "solved"); tiny: low, to reach it
    sac_threshold: float  # -200 on Pendulum; tiny: low, to reach it
    dqn_steps: int  # DQN on CartPole, jaxrl and rejax (value_cartpole), per seed
    dqn_eval_every: int  # ... env steps between its evaluations
    dqn_seeds: int  # ... vmapped seeds of its time to solve (1: from the timed runs)
    dqn_rounds: int  # ... timed one-seed rounds (jaxrl and rejax alternating)
    pqn_steps: int  # PQN on CartPole, per seed
    pqn_eval_every: int
    pqn_seeds: int
    pqn_rounds: int
    value_compile_pairs: int  # alternating jaxrl/rejax compiles per algorithm


def budget_for(mode: str) -> Budget:
    """``full``, ``quick`` (under 10 minutes on 2 CPU cores) or ``tiny`` (tests only)."""
    budgets = {
        "full": Budget(
            "full",
            500_000,
            100_000,
            5,
            1_000_000,
            (1, 4, 16, 64),
            100_000,
            3,
            sac_steps=20_000,
            mjx_steps=2_000_000,
            mjx_tasks=("inverted_pendulum", "hopper"),
            stream_steps=100_000,
            atari_steps=16_384,
            solve_steps=200_000,
            solve_seeds=16,
            solve_rounds=3,
            solve_eval_every=2_500,
            solve_sb3_seeds=5,
            solve_sb3_steps=200_000,
            sac_solve_steps=20_000,
            sac_solve_seeds=16,
            sac_solve_torch_seeds=3,
            sac_solve_torch_steps=10_000,
            cartpole_threshold=475.0,
            sac_threshold=-200.0,
            dqn_steps=100_000,
            dqn_eval_every=2_500,
            dqn_seeds=16,
            dqn_rounds=3,
            pqn_steps=524_288,
            pqn_eval_every=16_384,
            pqn_seeds=16,
            pqn_rounds=3,
            value_compile_pairs=3,
        ),
        "quick": Budget(
            "quick",
            100_000,
            10_000,
            3,
            200_000,
            (1, 16),
            30_000,
            2,
            sac_steps=3_000,
            mjx_steps=300_000,
            mjx_tasks=("inverted_pendulum",),
            stream_steps=20_000,
            atari_steps=2_048,
            solve_steps=100_000,
            solve_seeds=16,
            solve_rounds=1,
            solve_eval_every=5_000,
            solve_sb3_seeds=3,
            solve_sb3_steps=100_000,
            sac_solve_steps=8_000,
            sac_solve_seeds=4,
            sac_solve_torch_seeds=1,
            sac_solve_torch_steps=12_000,
            cartpole_threshold=475.0,
            sac_threshold=-200.0,
            dqn_steps=100_000,
            dqn_eval_every=2_500,
            dqn_seeds=1,  # rejax's DQN: ~40 s per seed on 2 cores; 16 seeds take minutes
            dqn_rounds=1,
            pqn_steps=524_288,
            pqn_eval_every=16_384,
            pqn_seeds=1,
            pqn_rounds=1,
            value_compile_pairs=1,
        ),
        "tiny": Budget(
            "tiny",
            1_000,
            512,
            1,
            1_000,
            (2,),
            1_000,
            1,
            sac_steps=300,
            mjx_steps=2_000,
            mjx_tasks=("fast",),  # Brax's physics-free test env
            stream_steps=500,
            atari_steps=256,
            solve_steps=4_096,
            solve_seeds=2,
            solve_rounds=1,
            solve_eval_every=500,
            solve_sb3_seeds=1,
            solve_sb3_steps=1_000,
            sac_solve_steps=300,
            sac_solve_seeds=2,
            sac_solve_torch_seeds=1,
            sac_solve_torch_steps=300,
            cartpole_threshold=15.0,
            sac_threshold=-1500.0,
            dqn_steps=2_000,
            dqn_eval_every=500,
            dqn_seeds=1,
            dqn_rounds=1,
            pqn_steps=4_096,
            pqn_eval_every=2_048,
            pqn_seeds=2,
            pqn_rounds=1,
            value_compile_pairs=1,
        ),
    }
    if mode not in budgets:
        raise ValueError(f"unknown bench mode {mode!r}; known: {', '.join(budgets)}")
    return budgets[mode]


# --- contenders -------------------------------------------------------------------------


#: jaxrl's own CartPole settings for time to solve: the fastest to a 475 return of a few
#: tried (5x100 rejax-style, 16x64 jaxrl default, 16x32, 32x16, 8x32 with 10 epochs)
#: on 16 seeds at 200k steps, median 13.8k steps, every seed at 500 at the end.
JAXRL_CARTPOLE = REJAX_CARTPOLE | {
    "num_envs": 8,
    "rollout_len": 64,
    "num_epochs": 4,
    "num_minibatches": 4,
    "lr": 2e-3,
    "clip_value": False,
}

#: ``SB3_ZOO_CARTPOLE`` in jaxrl's terms (SB3 also anneals the clip range; jaxrl does not).
SB3_ZOO_AS_JAXRL = REJAX_CARTPOLE | {
    "num_envs": 8,
    "rollout_len": 32,
    "num_epochs": 20,
    "num_minibatches": 1,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "ent_coef": 0.0,
    "lr": 1e-3,
    "anneal_lr": True,
    "clip_value": False,
    "ortho_init": True,  # SB3's MlpPolicy initialises orthogonally
    "max_grad_norm": 0.5,
}


def env_steps(spec: Any, config: Any, env: Any) -> int:
    """Env steps a run of ``config`` really takes (whole iterations per period)."""
    return int(spec.schedule(config, env).total_steps)


def jaxrl_ppo(
    env: Any, s: dict[str, Any], steps: int, num_evals: int, eval_envs: int
) -> tuple[Callable, Any, int]:
    """jaxrl PPO on ``env`` with schema settings ``s``: ``(train, hparams, env_steps)``.

    ``env_steps`` is what the run really takes (whole iterations per evaluation period).
    """
    from jaxrl.agents.on_policy import ppo

    config = ppo.Config(
        total_steps=steps,
        num_envs=s["num_envs"],
        rollout_len=s["rollout_len"],
        num_epochs=s["num_epochs"],
        num_minibatches=s["num_minibatches"],
        hidden=tuple(s["hidden"]),
        activation=s["activation"],
        anneal_lr=s["anneal_lr"],
        clip_value=s["clip_value"],
        normalize_obs=s["normalize_obs"],
        ortho_init=s["ortho_init"],
        num_evals=num_evals,
        num_eval_envs=eval_envs,
    )
    names = ("lr", "max_grad_norm", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef")
    hparams = ppo.SPEC.default_hparams(
        vf_clip_eps=s["clip_eps"], adam_eps=s["adam_eps"], **{k: s[k] for k in names}
    )
    return ppo.SPEC.make_train(config, env), hparams, env_steps(ppo.SPEC, config, env)


def jaxrl_ppo_train(
    total_steps: int, settings: dict[str, Any] = REJAX_CARTPOLE, num_evals: int | None = None
) -> tuple[Callable, Any]:
    """``jaxrl_ppo`` on ``cartpole`` with ``settings`` (keys as ``REJAX_CARTPOLE``):
    ``(train, hparams)``; ``num_evals`` overrides the settings' evaluation count."""
    from jaxrl import envs

    evals = settings["num_evals"] if num_evals is None else num_evals
    train, hparams, _ = jaxrl_ppo(
        envs.make("cartpole"), settings, total_steps, evals, settings["num_eval_envs"]
    )
    return train, hparams


def rejax_ppo(
    env: Any, params: Any, s: dict[str, Any], steps: int, num_evals: int, eval_envs: int
) -> Callable[[jax.Array], Any]:
    """rejax PPO on (gymnax-API) ``env`` with schema settings ``s``; ``num_evals``
    evaluations of ``eval_envs`` episodes (rejax's own ``make_act``)."""
    from rejax import PPO

    return rejax_trainer(
        PPO,
        env,
        params,
        steps,
        steps // num_evals,
        eval_envs,
        num_envs=s["num_envs"],
        num_steps=s["rollout_len"],
        num_epochs=s["num_epochs"],
        num_minibatches=s["num_minibatches"],
        learning_rate=s["lr"],
        max_grad_norm=s["max_grad_norm"],
        gamma=s["gamma"],
        gae_lambda=s["gae_lambda"],
        clip_eps=s["clip_eps"],
        ent_coef=s["ent_coef"],
        vf_coef=s["vf_coef"],
        normalize_observations=s["normalize_obs"],
        agent_kwargs={"activation": s["activation"], "hidden_layer_sizes": tuple(s["hidden"])},
    )


def rejax_trainer(
    cls: Any, env: Any, params: Any, steps: int, eval_freq: int, eval_envs: int, **settings: Any
) -> Callable[[jax.Array], Any]:
    """The ``train`` of rejax algorithm ``cls`` (``PPO``, ``DQN``, ...) on (gymnax-API)
    ``env`` for ``steps`` env steps with its own ``settings``: ``rejax_eval(eval_envs)``
    every ``eval_freq`` steps, none before training."""
    algo = cls.create(
        env=env,
        env_params=params,
        total_timesteps=steps,
        eval_freq=eval_freq,
        skip_initial_evaluation=True,
        **settings,
    )
    return algo.replace(eval_callback=rejax_eval(eval_envs)).train


def rejax_eval(episodes: int) -> Callable:
    """rejax's evaluation (its ``make_act``) with ``episodes`` episodes instead of 128."""
    from rejax.evaluate import evaluate

    def eval_callback(algo: Any, ts: Any, rng: jax.Array) -> Any:
        limit = algo.env_params.max_steps_in_episode
        return evaluate(algo.make_act(ts), rng, algo.env, algo.env_params, episodes, limit)

    return eval_callback


def rejax_ppo_train(
    total_steps: int, eval_every: int | None = None
) -> Callable[[jax.Array], tuple[Any, Any]]:
    """rejax PPO on gymnax CartPole-v1 with ``REJAX_CARTPOLE``; it evaluates every
    ``eval_every`` steps (default: once, at the end)."""
    import gymnax

    env, params = gymnax.make("CartPole-v1")
    num_evals = 1 if eval_every is None else total_steps // eval_every
    s = REJAX_CARTPOLE
    return rejax_ppo(
        harness.GuardedLegacyStep(env), params, s, total_steps, num_evals, s["num_eval_envs"]
    )


def jaxrl_final_return(metrics: Any) -> float:
    return float(np.asarray(metrics["eval_return"])[..., -1].mean())


def rejax_final_return(out: Any) -> float:
    _, (_, returns) = out
    return float(np.asarray(returns)[..., -1, :].mean())


def sb3_ppo(seed: int = 0) -> Any:
    """SB3 PPO on CartPole-v1 with ``SB3_ZOO_CARTPOLE`` (linear lr and clip-range decay)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    s = SB3_ZOO_CARTPOLE
    env = make_vec_env("CartPole-v1", n_envs=s["n_envs"], seed=seed)
    return PPO(
        "MlpPolicy",
        env,
        n_steps=s["n_steps"],
        batch_size=s["batch_size"],
        gae_lambda=s["gae_lambda"],
        gamma=s["gamma"],
        n_epochs=s["n_epochs"],
        ent_coef=s["ent_coef"],
        learning_rate=lambda remaining: remaining * 1e-3,
        clip_range=lambda remaining: remaining * 0.2,
        device="cpu",
        seed=seed,
        verbose=0,
    )


def sb3_ppo_run(total_steps: int, seed: int = 0) -> Callable[[], Any]:
    """A function that builds and trains ``sb3_ppo(seed)``; returns the model."""
    return harness.single_torch_thread(lambda: sb3_ppo(seed).learn(total_timesteps=total_steps))


def sb3_final_return(model: Any) -> float:
    import gymnasium as gym
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gym.make("CartPole-v1"))
    mean, _ = evaluate_policy(
        model, env, n_eval_episodes=SB3_ZOO_CARTPOLE["eval_episodes"], deterministic=True
    )
    return float(mean)


def _steady(runs: list[tuple], steps: int, final: Callable[[Any], float]) -> dict[str, Any]:
    seconds = [s for _, s in runs]
    return {
        "status": "ok",
        "run_seconds": seconds,
        "env_steps_per_second": harness.median([steps / s for s in seconds]),
        "final_return": final(runs[-1][0]),
    }


def _sps(runs: list[tuple], steps: int) -> list[float]:
    return [steps / s for _, s in runs]


# --- cases ------------------------------------------------------------------------------


def ppo_cartpole(budget: Budget, results: dict[str, Any]) -> dict[str, Any]:
    """PPO on CartPole: jaxrl vs rejax (gymnax) vs SB3 (Gymnasium), alternating rounds."""
    steps = budget.ppo_steps
    key = jax.random.PRNGKey(0)
    contenders: dict[str, Any] = {}
    runners: dict[str, Callable[[], Any]] = {}
    finals: dict[str, Callable[[Any], float]] = {}
    budgets: dict[str, int] = {}

    # Compile speed: ``budget.repeats`` alternating pairs of ahead-of-time compiles
    # (trace + lower + compile), each of a different budget so nothing is cached, after an
    # untimed pair that pays the process's one-time XLA/LLVM set-up.
    rejax_err = harness.try_import("rejax")[1]
    per_iter = REJAX_CARTPOLE["num_envs"] * REJAX_CARTPOLE["rollout_len"]
    compile_s: dict[str, list[float]] = {"jaxrl": [], "rejax": []}
    for i in range(budget.repeats + 1):
        n = steps + i * per_iter
        train, hparams = jaxrl_ppo_train(n)
        compiled, seconds = harness.timed(
            lambda t=train, h=hparams: jax.jit(t).lower(key, h).compile()
        )
        if i:
            compile_s["jaxrl"].append(seconds)
        if rejax_err is None:
            fn = rejax_ppo_train(n)
            rejax_exe, seconds = harness.timed(lambda f=fn: jax.jit(f).lower(key).compile())
            if i:
                compile_s["rejax"].append(seconds)
    # The last pair (budget ``steps + repeats * per_iter``) is the one that runs.
    steps = n
    contenders["jaxrl"] = {"compile_seconds": harness.median(compile_s["jaxrl"])}
    contenders["jaxrl"]["compile_seconds_each"] = compile_s["jaxrl"]
    runners["jaxrl"] = lambda: compiled(key, hparams)[1]
    finals["jaxrl"], budgets["jaxrl"] = jaxrl_final_return, steps
    if rejax_err is None:
        contenders["rejax"] = {
            "compile_seconds": harness.median(compile_s["rejax"]),
            "compile_seconds_each": compile_s["rejax"],
        }
        runners["rejax"] = lambda: rejax_exe(key)
        finals["rejax"], budgets["rejax"] = rejax_final_return, steps
    else:
        contenders["rejax"] = rejax_err

    if (err := harness.try_import("stable_baselines3")[1]) is None:
        contenders["sb3"] = {"compile_seconds": None}  # eager PyTorch: nothing to compile
        runners["sb3"] = sb3_ppo_run(budget.sb3_steps)
        finals["sb3"], budgets["sb3"] = sb3_final_return, budget.sb3_steps
    else:
        contenders["sb3"] = err

    runs = harness.alternate(runners, budget.repeats, warmup=1)
    for name, rs in runs.items():
        contenders[name].update(_steady(rs, budgets[name], finals[name]))
        contenders[name]["env_steps"] = budgets[name]
    record: dict[str, Any] = {
        "settings": {
            "jax_contenders": {"env": "cartpole / gymnax CartPole-v1", "steps": steps}
            | REJAX_CARTPOLE,
            "sb3": {"env": "gymnasium CartPole-v1", "steps": budget.sb3_steps} | SB3_ZOO_CARTPOLE,
            "repeats": budget.repeats,
            "notes": [
                "rejax: no lr annealing and value clipping, so jaxrl runs with anneal_lr=False, "
                "clip_value=True; rejax clips gradients element-wise (optax.clip), jaxrl by "
                "global norm",
                "compile_seconds: median of `repeats` ahead-of-time compiles (trace + lower + "
                "compile) per JAX library, alternating jaxrl/rejax, each of a budget one "
                "iteration longer than the last (no cache hits), after one untimed pair (the "
                "process's first XLA compile carries one-time costs); the ratio is the median "
                "of the paired ratios; the runs use the last pair's programs",
                "one untimed warm-up round (every contender) before the timed rounds",
                "SB3 timing covers env/model construction and learn(); final return from "
                "16 deterministic episodes after the run",
                "SB3 runs with torch.set_num_threads(1) (faster than torch's default on a "
                "loaded 2-core machine, so the comparison does not flatter jaxrl)",
            ],
        },
        "contenders": contenders,
    }
    for name in runs:
        if name != "jaxrl":
            record[f"ratio_steps_per_second_vs_{name}"] = harness.paired_ratio(
                _sps(runs["jaxrl"], steps), _sps(runs[name], budgets[name])
            )
    if "rejax" in runs:
        # Every ratio in bench.json reads "higher is better for jaxrl".
        record["ratio_compile_speedup_vs_rejax"] = harness.paired_ratio(
            compile_s["rejax"], compile_s["jaxrl"]
        )
    return record


def _live(last_obs: jax.Array, dones: jax.Array) -> jax.Array:
    """Folds the final observation and every step's done count into one output.

    Returning only rewards (constant 1 in CartPole) lets XLA drop the env dynamics.
    """
    return last_obs.sum() + dones.sum()


def jaxrl_random_rollout(num_envs: int, length: int) -> Callable[[jax.Array], jax.Array]:
    """Random actions in ``VmapWrapper(AutoReset(cartpole))`` under ``lax.scan``."""
    from jaxrl import envs

    env = envs.VmapWrapper(envs.AutoReset(envs.make("cartpole")), num_envs)

    def rollout(key: jax.Array) -> jax.Array:
        reset_key, key = jax.random.split(key)

        def body(state, k):
            state = env.step(state, jax.random.randint(k, (num_envs,), 0, 2))
            return state, state.done.sum()

        last, dones = jax.lax.scan(body, env.reset(reset_key), jax.random.split(key, length))
        return _live(last.obs, dones)

    return rollout


def gymnax_random_rollout(num_envs: int, length: int) -> Callable[[jax.Array], jax.Array]:
    """Random actions in vmapped gymnax CartPole-v1 (auto-resetting) under ``lax.scan``."""
    import gymnax

    env, params = gymnax.make("CartPole-v1")
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(key: jax.Array) -> jax.Array:
        reset_key, key = jax.random.split(key)
        init = reset(jax.random.split(reset_key, num_envs), params)

        def body(carry, k):
            step_key, act_key = jax.random.split(k)
            action = jax.random.randint(act_key, (num_envs,), 0, 2)
            obs, state, _, done, *_ = step(
                jax.random.split(step_key, num_envs), carry[1], action, params
            )
            return (obs, state), done.sum()

        (obs, _), dones = jax.lax.scan(body, init, jax.random.split(key, length))
        return _live(obs, dones)

    return rollout


def env_throughput(budget: Budget, results: dict[str, Any]) -> dict[str, Any]:
    """Raw random-action env steps/s at PPO's batch, and PPO's throughput as a fraction."""
    num_envs = REJAX_CARTPOLE["num_envs"]
    length = max(1, budget.raw_steps // num_envs)
    steps = length * num_envs
    key = jax.random.PRNGKey(0)
    runners, contenders = {}, {}
    for name, make in (("jaxrl", jaxrl_random_rollout), ("gymnax", gymnax_random_rollout)):
        compiled, compile_s = harness.timed(
            lambda make=make: jax.jit(make(num_envs, length)).lower(key).compile()
        )
        contenders[name] = {"compile_seconds": compile_s}
        runners[name] = lambda compiled=compiled: compiled(key)
    runs = harness.alternate(runners, budget.repeats, warmup=1)
    for name, rs in runs.items():
        sps = _sps(rs, steps)
        contenders[name].update(
            status="ok", run_seconds=[s for _, s in rs], env_steps_per_second=harness.median(sps)
        )
    record: dict[str, Any] = {
        "settings": {
            "envs": "jaxrl cartpole (VmapWrapper(AutoReset)) / gymnax CartPole-v1 (vmap)",
            "num_envs": num_envs,
            "steps": steps,
            "repeats": budget.repeats,
            "actions": "uniform random",
        },
        "contenders": contenders,
        "ratio_steps_per_second_vs_gymnax": harness.paired_ratio(
            _sps(runs["jaxrl"], steps), _sps(runs["gymnax"], steps)
        ),
    }
    ppo = results.get("ppo_cartpole", {}).get("contenders", {})
    for trainer, raw in (("jaxrl", "jaxrl"), ("rejax", "gymnax")):
        sps = ppo.get(trainer, {}).get("env_steps_per_second")
        key_name = f"{trainer}_ppo_fraction_of_raw"
        if sps is None:
            record[key_name] = {"status": "missing", "error": "ppo_cartpole not measured"}
        else:
            record[key_name] = sps / contenders[raw]["env_steps_per_second"]
    return record


def seed_scaling(budget: Budget, results: dict[str, Any]) -> dict[str, Any]:
    """jaxrl and rejax PPO on CartPole at several vmapped seed counts, alternating.

    jaxrl runs its seeds as users do, through ``sweep.over_seeds`` (sharded over one
    device per CPU core under the CLI, ``sweep.use_cpu_cores``); rejax through
    ``jit(vmap(train))`` on one device, its documented way. The same jaxrl program on one
    device, and why it scales no better there, is in ``experiments/seed_scaling.py``.
    Where ``ppo_cartpole_solve`` already ran every seed count on the same settings (quick),
    its programs and timed runs are reused instead of run a second time.
    """
    _, rejax_err = harness.try_import("rejax")
    shared = _solve_seed_runs(budget, results)
    if shared is not None:
        per_count, steps = shared
    else:
        steps = budget.seed_steps
        per_count = _own_seed_runs(budget, steps, rejax=rejax_err is None)
    contenders: dict[str, Any] = {}
    for name, counts in per_count.items():
        if not counts:
            contenders[name] = rejax_err
            continue
        one = counts[str(budget.seed_counts[0])]["median_seconds"] / budget.seed_counts[0]
        for n, c in counts.items():
            c["per_seed_relative"] = c["median_seconds"] / int(n) / one
            c["env_steps_per_second"] = steps * int(n) / c["median_seconds"]
        contenders[name] = {"status": "ok", "seeds": counts}
    record: dict[str, Any] = {
        "settings": {"steps_per_seed": steps, "seed_counts": list(budget.seed_counts)}
        | {"ppo": REJAX_CARTPOLE, "repeats": budget.seed_repeats}
        | {
            "devices": len(jax.devices()),
            "source": "ppo_cartpole_solve" if shared is not None else "seed_scaling",
            "notes": [
                "source ppo_cartpole_solve: every seed count was already run there on the same "
                "settings (jaxrl and rejax on REJAX_CARTPOLE, the same programs), so its "
                "compiles and timed runs are reused rather than run twice: runs of "
                "solve_steps with its evaluations, solve_rounds rounds at N seeds and repeats "
                "at 1 (warmup_seconds: the compile seconds there)",
                "per_seed_relative = (run seconds / seeds) / (run seconds of one seed)",
                "jaxrl: sweep.over_seeds, the seeds sharded over the devices (one per CPU "
                "core under the CLI); rejax: jit(vmap(train)) on one device (its documented "
                "way); jaxrl on one device: experiments/seed_scaling.py",
                "one XLA:CPU device runs a vmapped program on one core, and PPO's batched "
                "64x64 matmuls already run near one core's peak (experiments/seed_scaling.py)",
            ],
        },
        "contenders": contenders,
    }
    if contenders["rejax"].get("status") == "ok":
        # rejax's relative per-seed cost over jaxrl's: > 1 when jaxrl scales better.
        record["ratio_per_seed_scaling_vs_rejax"] = {
            str(n): contenders["rejax"]["seeds"][str(n)]["per_seed_relative"]
            / contenders["jaxrl"]["seeds"][str(n)]["per_seed_relative"]
            for n in budget.seed_counts
        }
    return record


def _own_seed_runs(budget: Budget, steps: int, rejax: bool) -> dict[str, dict[str, Any]]:
    """``seed_scaling``'s own runs: per library and seed count, compile + first run
    (``warmup_seconds``) and ``budget.seed_repeats`` alternating timed runs."""
    from jaxrl import sweep

    train, hparams = jaxrl_ppo_train(steps)
    rejax_train = rejax_ppo_train(steps) if rejax else None
    per_count: dict[str, dict[str, Any]] = {"jaxrl": {}, "rejax": {}}
    for n in budget.seed_counts:
        keys = sweep.seed_keys(0, n)
        runners: dict[str, Callable[[], Any]] = {}
        warm: dict[str, float] = {}
        compiled, compile_s = harness.timed(
            lambda keys=keys, n=n: sweep.over_seeds(train, n).lower(keys, hparams).compile()
        )
        runners["jaxrl"] = lambda c=compiled, keys=keys: c(keys, hparams)[1]
        _, first_s = harness.timed(runners["jaxrl"])  # like rejax's: its first run is untimed
        warm["jaxrl"] = compile_s + first_s
        if rejax_train is not None:
            fn = jax.jit(jax.vmap(rejax_train))
            _, warm["rejax"] = harness.timed(lambda fn=fn, keys=keys: fn(keys))
            runners["rejax"] = lambda fn=fn, keys=keys: fn(keys)
        for name, rs in harness.alternate(runners, budget.seed_repeats).items():
            seconds = [s for _, s in rs]
            per_count[name][str(n)] = {
                "warmup_seconds": warm[name],
                "run_seconds": seconds,
                "median_seconds": harness.median(seconds),
            }
    return per_count


def _solve_seed_runs(budget: Budget, results: dict[str, Any]) -> tuple[dict, int] | None:
    """``(per_count, steps)`` for ``seed_scaling`` from ``ppo_cartpole_solve``'s jaxrl and
    rejax runs on rejax's settings, when that case ran every one of ``budget.seed_counts``
    (1 and ``solve_seeds``) for both; otherwise None."""
    solved = results.get("ppo_cartpole_solve", {}).get("contenders", {})
    counts = {1, budget.solve_seeds}
    if not set(budget.seed_counts) <= counts:
        return None
    per_count: dict[str, dict[str, Any]] = {}
    for name in ("jaxrl", "rejax"):
        c = solved.get(name, {})
        if c.get("status") != "ok":
            return None
        per_count[name] = {}
        for n in budget.seed_counts:
            suffix = "" if n == 1 else f"_{n}_seeds"
            seconds = c[f"run_seconds{suffix}"]
            per_count[name][str(n)] = {
                "warmup_seconds": c[f"compile_seconds{suffix}"],
                "run_seconds": seconds,
                "median_seconds": harness.median(seconds),
            }
    return per_count, budget.solve_steps


CASES: dict[str, Callable[[Budget, dict[str, Any]], dict[str, Any]]] = {
    "ppo_cartpole": ppo_cartpole,
    "ppo_cartpole_solve": ppo_cartpole_solve,
    "env_throughput": env_throughput,
    "seed_scaling": seed_scaling,
    "sac_pendulum": sac_pendulum,
    "stream_cartpole": stream_cartpole,
    "value_cartpole": value_cartpole,
    "ppo_mjx": ppo_mjx,
    "drama_world_model": drama_world_model,
    "atari_throughput": atari_throughput,
}


def run_bench(
    budget: Budget, cases: list[str] | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Runs ``cases`` (default all) in order, with the persistent compilation cache off (every
    case times compiles); returns the bench.json object."""
    names = list(CASES) if cases is None else cases
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown bench case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with compile_cache.disabled():  # every case times compiles: keep them cold
        for name in names:
            log(f"bench: running {name} ({budget.mode})")
            results[name], seconds[name] = harness.timed(
                lambda name=name: CASES[name](budget, results)
            )
            log(f"bench: {name} took {seconds[name]:.0f} s")
    return {
        "meta": {
            "mode": budget.mode,
            "budget": dataclasses.asdict(budget),
            "versions": harness.versions(),
            "backend": jax.default_backend(),
            "devices": len(jax.devices()),
            "cpu_count": os.cpu_count(),
            "machine": platform.platform(),
            "case_seconds": seconds,
        },
        "cases": results,
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.3g}" if abs(x) < 100 else f"{x:,.0f}"
    return str(x)


def format_table(bench: dict[str, Any]) -> str:
    """A plain-text table of every case: contenders' figures, then the ratios."""
    header = ("case", "contender", "compile s", "env steps/s", "final return")
    rows: list[tuple[str, ...]] = [header]
    extra: list[str] = []
    for case, rec in bench["cases"].items():
        for name, c in rec["contenders"].items():
            if c.get("status") != "ok":
                rows.append((case, name, "missing", c.get("error", "")[:60], ""))
            elif "seeds" in c:
                rel = ", ".join(f"{n}: {v['per_seed_relative']:.2f}" for n, v in c["seeds"].items())
                extra.append(f"{case} {name} per-seed time relative to 1 seed: {rel}")
            else:
                rows.append(
                    (
                        case,
                        name,
                        _fmt(c.get("compile_seconds")),
                        _fmt(c["env_steps_per_second"]),
                        _fmt(c.get("final_return", "")),
                    )
                )
        for k, v in rec.items():
            if k.startswith(("ratio_", "per_step_cost_", "transformer_over_")) or k.endswith(
                "_fraction_of_raw"
            ):
                shown = (
                    ", ".join(f"{n}: {x:.2f}" for n, x in v.items())
                    if isinstance(v, dict) and "status" not in v
                    else _fmt(v)
                )
                extra.append(f"{case} {k}: {shown}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    rule = "-" * len(lines[0])
    return "\n".join([rule, lines[0], rule, *lines[1:], rule, *extra, *case_seconds_lines(bench)])


def case_seconds_lines(bench: dict[str, Any]) -> list[str]:
    """The wall seconds each case took (``meta.case_seconds``) and their sum, one line."""
    seconds = bench["meta"].get("case_seconds", {})
    if not seconds:
        return []
    each = ", ".join(f"{name} {s:.0f}" for name, s in seconds.items())
    return [f"wall seconds per case: {each}; cases total {sum(seconds.values()):.0f} s"]


__all__ = ["CASES", "Budget", "budget_for", "format_table", "run_bench"]
