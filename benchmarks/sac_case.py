"""Bench case ``sac_pendulum``: SAC on Pendulum, jaxrl vs rejax, SBX and Stable-Baselines3,
and TD3 on Pendulum, jaxrl (``jaxrl_td3``) vs rejax (``rejax_td3``).

Every contender runs SAC with the settings in ``SAC_PENDULUM`` (network sizes, batch,
update-to-data ratio 1, learning starts, learning rates, gamma, tau, initial
temperature, target entropy) and the same evaluation schedule: every
``eval_every`` env steps, the mean return of ``eval_episodes`` deterministic
(tanh of the mean action) episodes. jaxrl and rejax run ``budget.sac_steps`` env
steps in their speed rounds.

Speed: jaxrl and rejax, median steady-state env steps per second over alternating
rounds, compilation and warm-up done before them (and reported apart), their
(vectorised, in-graph) evaluations included. SBX and SB3 (hundreds of steps per second
on CPU) are timed once, in their time-to-solve runs below (no second, shorter run of the
same settings): env steps run over seconds, the seconds spent inside their evaluations
excluded.

Time to -200 (``budget.sac_threshold``): seconds, compile included, until an evaluation
first reaches it, at one seed and at ``budget.solve_seeds`` vmapped seeds, as defined in
``benchmarks.solve`` (``ratio_time_to_solve[_N_seeds]_vs_<contender>``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks import harness, solve

#: Settings shared by every contender.
SAC_PENDULUM: dict[str, Any] = {
    "hidden": [64, 64],
    "activation": "relu",
    "batch_size": 256,
    "num_envs": 1,
    "utd_ratio": 1,
    "learning_starts": 100,  # SB3's and SBX's default
    "lr": 3e-4,
    "gamma": 0.99,
    "tau": 0.005,
    "init_alpha": 1.0,
    "target_entropy": "-action_dim",
    "eval_episodes": 8,
}

#: TD3's own settings (the paper's), shared by both TD3 contenders; the rest as SAC's.
TD3_PENDULUM: dict[str, Any] = {
    "explore_noise": 0.1,  # rejax: exploration_noise
    "target_noise": 0.2,
    "target_noise_clip": 0.5,
    "policy_delay": 2,
}


def _eval_every(budget: Any) -> int:
    """Evaluation period in env steps, the same for every contender: a tenth of the JAX
    speed runs, at most 500 steps (so the time to -200 is resolved to 500 steps)."""
    return max(1, min(500, budget.sac_steps // 10))


def _settings(budget: Any) -> dict[str, Any]:
    """``SAC_PENDULUM``, with learning starts cut to half the smaller budget (tiny mode)."""
    starts = min(SAC_PENDULUM["learning_starts"], budget.sac_solve_torch_steps // 2)
    return SAC_PENDULUM | {"learning_starts": starts}


def jaxrl_train(algo: str, s: dict[str, Any], steps: int, eval_every: int) -> tuple[Callable, Any]:
    """jaxrl ``algo`` (``"sac"`` or ``"td3"``) on ``pendulum`` with the shared settings ``s``
    (and ``TD3_PENDULUM`` for TD3): ``(train, hparams)``."""
    from jaxrl import agents, envs

    spec = agents.get(algo)
    extra, hp = {}, {"actor_lr": s["lr"], "critic_lr": s["lr"], "gamma": s["gamma"]}
    if algo == "sac":
        hp.update(alpha_lr=s["lr"], init_alpha=s["init_alpha"])
    else:
        extra["policy_delay"] = TD3_PENDULUM["policy_delay"]
        hp.update(
            explore_noise=TD3_PENDULUM["explore_noise"],
            policy_noise=TD3_PENDULUM["target_noise"],
            noise_clip=TD3_PENDULUM["target_noise_clip"],
        )
    config = spec.config(
        total_steps=steps,
        num_envs=s["num_envs"],
        batch_size=s["batch_size"],
        buffer_size=steps,
        warmup_steps=s["learning_starts"],
        utd_ratio=s["utd_ratio"],
        hidden=tuple(s["hidden"]),
        activation=s["activation"],
        num_evals=max(1, steps // eval_every),
        num_eval_envs=s["eval_episodes"],
        **extra,
    )
    hparams = spec.default_hparams(tau=s["tau"], **hp)
    return spec.make_train(config, envs.make("pendulum")), hparams


def jaxrl_curve(metrics: Any) -> tuple[list[int], list[float]]:
    return [int(x) for x in np.asarray(metrics["env_steps"])], [
        float(x) for x in np.asarray(metrics["eval_return"])
    ]


def rejax_train(
    algo: str, s: dict[str, Any], steps: int, eval_every: int
) -> Callable[[jax.Array], Any]:
    """rejax ``algo`` (``"sac"`` or ``"td3"``) on gymnax Pendulum-v1 with the shared settings
    ``s`` (and ``TD3_PENDULUM``); deterministic evaluations of ``eval_episodes`` episodes."""
    import gymnax
    import jax.numpy as jnp
    from rejax import SAC, TD3
    from rejax.evaluate import evaluate

    env, params = gymnax.make("Pendulum-v1")
    env = harness.GuardedLegacyStep(env)
    if algo == "sac":
        cls, kwargs = (
            SAC,
            {
                "target_update_freq": 1,
                "agent_kwargs": {"activation": s["activation"]},
                "hidden_layer_sizes": tuple(s["hidden"]),
            },
        )
    else:
        if list(s["hidden"]) != [64, 64]:
            raise ValueError("rejax's TD3 builds 64x64 networks; the shared sizes must match")
        net = {"activation": s["activation"]}
        td3 = {k: v for k, v in TD3_PENDULUM.items() if k != "explore_noise"}
        td3["exploration_noise"] = TD3_PENDULUM["explore_noise"]
        cls, kwargs = TD3, {"actor_kwargs": net, "critic_kwargs": dict(net), **td3}
    agent = cls.create(
        env=env,
        env_params=params,
        total_timesteps=steps,
        eval_freq=eval_every,
        skip_initial_evaluation=True,
        num_envs=s["num_envs"],
        num_epochs=s["utd_ratio"],
        buffer_size=steps,
        fill_buffer=s["learning_starts"],
        batch_size=s["batch_size"],
        learning_rate=s["lr"],
        gamma=s["gamma"],
        polyak=1.0 - s["tau"],
        **kwargs,
    )
    episodes = s["eval_episodes"]

    def sac_act(algo, ts):
        actor = algo.actor

        def act(obs, _rng):
            dist = actor.apply(ts.actor_ts.params, obs[None], method="_action_dist")
            return jnp.squeeze(actor.action_loc + jnp.tanh(dist.mean()) * actor.action_scale, 0)

        return act

    def eval_callback(algo, ts, rng):
        act = sac_act(algo, ts) if cls is SAC else algo.make_act(ts)
        return evaluate(act, rng, env, params, episodes, params.max_steps_in_episode)

    return agent.replace(eval_callback=eval_callback).train


def rejax_curve(out: Any, eval_every: int) -> tuple[list[int], list[float]]:
    _, (_, returns) = out
    means = np.asarray(returns).mean(axis=-1)
    return [eval_every * (i + 1) for i in range(len(means))], [float(x) for x in means]


def torch_sac_run(
    lib: str,
    s: dict[str, Any],
    steps: int,
    eval_every: int,
    seed: int = 0,
    stop_at: float | None = None,
) -> Callable[[], Any]:
    """Builds and trains SBX (``lib="sbx"``) or SB3 SAC; returns ``(curve, eval_seconds)``.

    With ``stop_at``, training stops at the first evaluation whose mean return reaches it.
    """
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    if lib == "sbx":
        from sbx import SAC

        extra: dict[str, Any] = {}
    else:
        from stable_baselines3 import SAC

        extra = {"device": "cpu"}

    class Evaluations(BaseCallback):
        """Evaluates every ``eval_every`` steps and keeps the seconds spent doing it."""

        def __init__(self) -> None:
            super().__init__()
            self.env = gym.make("Pendulum-v1")
            self.steps: list[int] = []
            self.returns: list[float] = []
            self.seconds = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                t0 = time.perf_counter()
                mean, _ = evaluate_policy(
                    self.model, self.env, n_eval_episodes=s["eval_episodes"], deterministic=True
                )
                self.seconds += time.perf_counter() - t0
                self.steps.append(self.num_timesteps)
                self.returns.append(float(mean))
                return stop_at is None or mean < stop_at
            return True

    def train() -> Any:
        model = SAC(
            "MlpPolicy",
            gym.make("Pendulum-v1"),
            learning_rate=s["lr"],
            buffer_size=steps,
            learning_starts=s["learning_starts"],
            batch_size=s["batch_size"],
            tau=s["tau"],
            gamma=s["gamma"],
            train_freq=1,
            gradient_steps=s["utd_ratio"],
            ent_coef=f"auto_{s['init_alpha']}",
            policy_kwargs={"net_arch": list(s["hidden"])},
            seed=seed,
            verbose=0,
            **extra,
        )
        callback = Evaluations()
        model.learn(total_timesteps=steps, callback=callback)
        return (callback.steps, callback.returns), callback.seconds

    return harness.single_torch_thread(train)


def sac_pendulum(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """SAC on Pendulum: jaxrl vs rejax vs SBX vs SB3, alternating rounds."""
    steps = budget.sac_steps
    eval_every, settings = _eval_every(budget), _settings(budget)
    key = jax.random.PRNGKey(0)
    contenders: dict[str, Any] = {}
    runners: dict[str, Callable[[], Any]] = {}
    # Per contender: the run's output -> (learning curve, seconds to leave out of timing).
    readers: dict[str, Callable[[Any], tuple[tuple[list[int], list[float]], float]]] = {}
    budgets: dict[str, int] = {}

    for algo, suffix in (("sac", ""), ("td3", "_td3")):
        ours, theirs = f"jaxrl{suffix}", f"rejax{suffix}"
        train, hparams = jaxrl_train(algo, settings, steps, eval_every)
        compiled, compile_s = harness.timed(
            lambda t=train, h=hparams: jax.jit(t).lower(key, h).compile()
        )
        contenders[ours] = {"compile_seconds": compile_s}
        runners[ours] = lambda c=compiled, h=hparams: c(key, h)[1]
        readers[ours], budgets[ours] = (lambda m: (jaxrl_curve(m), 0.0)), steps
        if (err := harness.try_import("rejax")[1]) is None:
            rejax_fn = jax.jit(rejax_train(algo, settings, steps, eval_every))
            _, first_s = harness.timed(lambda f=rejax_fn: f(key))
            contenders[theirs] = {"first_call_seconds": first_s}
            runners[theirs] = lambda f=rejax_fn: f(key)
            readers[theirs] = lambda out: (rejax_curve(out, eval_every), 0.0)
            budgets[theirs] = steps
        else:
            contenders[theirs] = err

    for name, module in (("sbx", "sbx"), ("sb3", "stable_baselines3")):
        if (err := harness.try_import(module)[1]) is None:
            contenders[name] = {"compile_seconds": None}  # SB3: eager PyTorch
            if name == "sbx":
                # SBX jit-compiles its update on the first gradient step: a short run first.
                cap = budget.sac_solve_torch_steps
                warm = torch_sac_run(name, settings, settings["learning_starts"] + 2, cap)
                contenders[name]["warmup_seconds"] = harness.timed(warm)[1]
        else:
            contenders[name] = err

    runs = harness.alternate(runners, budget.repeats)
    many = _vmapped_runs(budget, settings, budget.sac_solve_steps, eval_every)
    sps: dict[str, list[float]] = {}
    for name, rs in runs.items():
        read = [readers[name](out) for out, _ in rs]
        seconds = [s - excluded for (_, excluded), (_, s) in zip(read, rs, strict=True)]
        sps[name] = [budgets[name] / s for s in seconds]
        curve = read[-1][0]
        contenders[name].update(
            status="ok",
            env_steps=budgets[name],
            run_seconds=seconds,
            env_steps_per_second=harness.median(sps[name]),
            final_return=curve[1][-1],
            eval_steps=curve[0],
            eval_returns=curve[1],
        )
    for name in ("rejax", "rejax_td3"):
        if name in runs:
            rejax = contenders[name]
            rejax["compile_seconds"] = rejax["first_call_seconds"] - harness.median(
                rejax["run_seconds"]
            )
    n = budget.sac_solve_seeds
    torch_libs = [name for name in ("sbx", "sb3") if "status" not in contenders[name]]
    for name in torch_libs:  # their speed and time to solve from the same runs
        c = contenders[name]
        c.update(_torch_solve(name, settings, budget, eval_every, c.get("warmup_seconds", 0)))
        sps[name] = [c["env_steps_per_second"]]
    for name in runs:
        c = contenders[name]
        if name in many:  # SAC: each seed's first step from the vmapped run's curves
            total, curves = budget.sac_solve_steps, many[name]["returns"]
            grid = [eval_every * (i + 1) for i in range(curves.shape[1])]
            compile_s = {1: c["compile_seconds"], n: many[name]["compile_seconds"]}
            # one seed: its measured rate, over the vmapped run's length
            run_s = {1: [r * total / steps for r in c["run_seconds"]]}
            run_s[n] = many[name]["run_seconds"]
        else:  # TD3: from the single seed's curve
            total, curves, grid = steps, [c["eval_returns"]], c["eval_steps"]
            compile_s, run_s = {1: c["compile_seconds"]}, {1: c["run_seconds"]}
        per_seed = solve.first_steps(grid, curves, budget.sac_threshold)
        figures = solve.jax_figures(per_seed, compile_s, run_s, total, c["final_return"])
        c.update({k: v for k, v in figures.items() if k not in c})
    record: dict[str, Any] = {
        "settings": {
            "envs": "jaxrl pendulum / gymnax Pendulum-v1 (rejax) / gymnasium Pendulum-v1 (SBX/SB3)",
            "steps": {
                "jaxrl": steps,
                "rejax": steps,
                **{name: contenders[name].get("env_steps") for name in ("sbx", "sb3")},
                "jaxrl_td3": steps,
                "rejax_td3": steps,
            },
            "td3": TD3_PENDULUM,
            "eval_every": eval_every,
            "threshold": budget.sac_threshold,
            "repeats": budget.repeats,
            **settings,
            "notes": [
                "identical for all: hidden sizes, batch 256, UTD 1 (one gradient step per env "
                "step, one env), learning starts, Adam lr 3e-4 for actor, critics and "
                "temperature, gamma, tau (rejax polyak = 1 - tau), initial temperature 1, "
                "target entropy -action_dim, buffer = the whole run",
                "before learning starts jaxrl, SBX and SB3 act uniformly at random; rejax "
                "always acts with its policy",
                "rejax treats Pendulum's time limit as termination, the others bootstrap "
                "through truncation; rejax clips log-std to [-10, 2], jaxrl squashes to [-5, 2]",
                "warm-up before the timed rounds: jaxrl compiles ahead of time, rejax's first "
                "call compiles (compile_seconds = first call - median steady run), SBX runs "
                "learning_starts + 2 steps to compile its update (warmup_seconds)",
                "speed covers whole runs, the random-action steps before learning starts "
                "included; SBX/SB3 speed from their time-to-solve runs (env steps run / "
                "seconds, evaluations excluded, one run per seed), so their ratios are "
                "jaxrl's median rate over theirs, not paired rounds",
                "jaxrl/rejax timings include their in-graph evaluations; SBX/SB3 timings "
                "exclude the seconds spent in evaluation callbacks and include model "
                "construction",
                "SBX/SB3 run with torch.set_num_threads(1): with torch's default (one thread "
                "per core) SB3 SAC ran ~10x slower on a shared 2-core machine (thread "
                "contention), which would flatter jaxrl",
                "time to solve (solve.py): seconds to a -200 evaluation, compile included; "
                "jaxrl/rejax SAC from the median seed of a vmapped run of sac_solve_seeds seeds "
                "over sac_solve_steps (compile + run * median steps / steps); at 1 seed the "
                "run seconds are the timed rounds' scaled to sac_solve_steps; "
                "TD3 from its single seed; SBX/SB3 measured directly, one seed at a time, "
                "stopped at -200, SBX's warm-up (its compile) included, evaluations excluded; "
                "their N seeds = N x the median seed",
                "TD3 (jaxrl_td3, rejax_td3): the same shared settings (no temperature) plus "
                "td3's exploration noise 0.1, target noise 0.2 clipped at 0.5, policy delay 2; "
                "rejax runs policy_delay critic updates per policy update in one iteration",
            ],
        },
        "contenders": contenders,
    }
    for name in [*runs, *torch_libs]:
        if name in ("jaxrl", "jaxrl_td3"):
            continue
        mine = "jaxrl_td3" if name == "rejax_td3" else "jaxrl"
        record[f"ratio_steps_per_second_vs_{name}"] = (
            harness.paired_ratio(sps[mine], sps[name])
            if name in runs  # paired rounds; SBX/SB3: jaxrl's median over their one rate
            else harness.median(sps[mine]) / sps[name][0]
        )
        solve.ratios(record, mine, name, name, n)
    return record


def _vmapped_runs(
    budget: Any, settings: dict[str, Any], steps: int, eval_every: int
) -> dict[str, dict[str, Any]]:
    """jaxrl (``sweep.over_seeds``) and rejax (``jit(vmap)``) SAC on ``budget.sac_solve_seeds``
    seeds, ``budget.solve_rounds`` alternating rounds: per library its ``compile_seconds``,
    ``run_seconds`` and evaluation ``returns [seeds, E]``."""
    from jaxrl import sweep

    n = budget.sac_solve_seeds
    keys = sweep.seed_keys(0, n)
    train, hparams = jaxrl_train("sac", settings, steps, eval_every)
    compiled, compile_s = harness.timed(
        lambda: sweep.over_seeds(train, n).lower(keys, hparams).compile()
    )
    out = {"jaxrl": {"compile_seconds": compile_s}}
    runners = {"jaxrl": lambda: compiled(keys, hparams)[1]}
    if harness.try_import("rejax")[1] is None:
        fn = jax.jit(jax.vmap(rejax_train("sac", settings, steps, eval_every)))
        rejax, rejax_compile = harness.timed(lambda: fn.lower(keys).compile())
        out["rejax"] = {"compile_seconds": rejax_compile}
        runners["rejax"] = lambda: rejax(keys)
    for name, rs in harness.alternate(runners, budget.solve_rounds).items():
        out[name]["run_seconds"] = [s for _, s in rs]
        if name == "jaxrl":
            out[name]["returns"] = np.asarray(rs[-1][0]["eval_return"])
        else:
            _, (_, returns) = rs[-1][0]
            out[name]["returns"] = np.asarray(returns).mean(axis=-1)
    return out


def _torch_solve(
    lib: str, settings: dict[str, Any], budget: Any, eval_every: int, compile_s: float
) -> dict[str, Any]:
    """SBX or SB3 SAC trained until -200 (or ``budget.sac_solve_torch_steps``), one seed at a
    time: time-to-solve figures, and env steps per second (median over seeds; model
    construction included, evaluations excluded) from the same runs."""
    seconds, steps, rates, run_s, ran = [], [], [], [], 0
    curve: tuple[list[int], list[float]] = ([], [])
    for seed in range(budget.sac_solve_torch_seeds):
        run = torch_sac_run(
            lib,
            settings,
            budget.sac_solve_torch_steps,
            eval_every,
            seed,
            stop_at=budget.sac_threshold,
        )
        (curve, eval_s), total_s = harness.timed(run)
        first = solve.first_steps(curve[0], [curve[1]], budget.sac_threshold)[0]
        steps.append(first)
        seconds.append(None if first is None else compile_s + total_s - eval_s)
        done = budget.sac_solve_torch_steps if first is None else first
        ran += done
        run_s.append(total_s - eval_s)
        rates.append(done / run_s[-1])
    figures = solve.sequential_figures(seconds, steps, budget.sac_solve_seeds)
    return figures | {
        "env_steps": ran,
        "run_seconds": run_s,
        "env_steps_per_second": harness.median(rates),
        "final_return": curve[1][-1],
        "eval_steps": curve[0],
        "eval_returns": curve[1],
    }
