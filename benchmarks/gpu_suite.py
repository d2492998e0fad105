"""GPU bench suite (``jaxrl bench --suite gpu``): the field's published GPU figures as cases.

Each case takes a published GPU result, runs the publisher's settings with jaxrl and,
where it installs, with the publisher's own library on the same machine, and keeps the
published figure beside the measurement (``record["published"]``, with its source; it
is hardware of its own, so no ratio is taken against it):

* ``purejaxrl_cartpole``: PPO on CartPole-v1 with PureJaxRL's config at 1, 256 and
  2048 vmapped seeds: jaxrl against rejax (PureJaxRL is not a package).
* ``rejax_hopper``: PPO and SAC on Brax hopper with rejax's tuned configs: jaxrl
  against rejax.
* ``brax_playground``: PPO on Playground's ``CartpoleBalance`` with Playground's
  published Brax PPO settings: jaxrl against ``brax.training.agents.ppo.train``.

Timing. Both contenders are compiled ahead of time (``lower().compile()``, reported as
``compile_seconds``), then run in alternating rounds (A B A B; ``harness.alternate``);
``env_steps_per_second`` is the median over rounds and ``ratio_steps_per_second_vs_X``
the median of the paired jaxrl / X ratios (above 1: jaxrl faster).
``ratio_compile_speedup_vs_X`` is X's compile seconds over jaxrl's. Brax's trainer
compiles inside its call, so ``brax_playground`` pairs rounds inside it as the CPU
suite's ``ppo_mjx`` does (``mjx_case.Rounds``).

Sizes: ``gpu`` (the suite; sized to about 8 minutes on one H100/H200/A100, an
estimate not yet checked on such a machine) and ``tiny`` (the same code paths with
tiny budgets and Brax's physics-free ``fast`` env, for tests on a CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax

from benchmarks import cases, harness, mjx_case
from jaxrl import compile_cache

# --- published settings -----------------------------------------------------------------

PUREJAXRL_SOURCE = (
    "github.com/luchris429/purejaxrl, purejaxrl/ppo.py (the __main__ config; network, value "
    "clipping, Adam eps 1e-5 and orthogonal init from the same file)"
)
#: PureJaxRL's CartPole-v1 PPO config, as published (its own key names).
PUREJAXRL_CONFIG: dict[str, Any] = {
    "LR": 2.5e-4,
    "NUM_ENVS": 4,
    "NUM_STEPS": 128,
    "TOTAL_TIMESTEPS": 5e5,
    "UPDATE_EPOCHS": 4,
    "NUM_MINIBATCHES": 4,
    "GAMMA": 0.99,
    "GAE_LAMBDA": 0.95,
    "CLIP_EPS": 0.2,
    "ENT_COEF": 0.01,
    "VF_COEF": 0.5,
    "MAX_GRAD_NORM": 0.5,
    "ACTIVATION": "tanh",
    "ENV_NAME": "CartPole-v1",
    "ANNEAL_LR": True,
}

REJAX_SOURCE = "github.com/keraJLi/rejax, configs/brax/hopper.yaml (entries 'ppo' and 'sac')"
#: rejax's tuned brax/hopper configs, as published (its own key names).
REJAX_HOPPER: dict[str, dict[str, Any]] = {
    "ppo": {
        "env": "brax/hopper",
        "agent_kwargs": {"activation": "tanh"},
        "num_envs": 32,
        "num_steps": 32,
        "num_epochs": 9,
        "num_minibatches": 2,
        "learning_rate": 0.00025674088686342003,
        "max_grad_norm": 1,
        "total_timesteps": 5242880,
        "eval_freq": 32768,
        "gamma": 0.995,
        "gae_lambda": 0.95,
        "clip_eps": 0.2,
        "ent_coef": 0.01,
        "vf_coef": 0.5,
        "normalize_observations": True,
    },
    "sac": {
        "env": "brax/hopper",
        "agent_kwargs": {"activation": "tanh"},
        "num_envs": 128,
        "buffer_size": 1_000_000,
        "fill_buffer": 10_000,
        "batch_size": 128,
        "learning_rate": 0.0005720796166976961,
        "num_epochs": 128,
        "total_timesteps": 5242880,
        "eval_freq": 32768,
        "gamma": 0.995,
        "polyak": 0.95,
        "target_entropy_ratio": 0,
        "normalize_observations": True,
    },
}

PLAYGROUND_SOURCE = (
    "mujoco_playground.config.dm_control_suite_params.brax_ppo_config('CartpoleBalance') "
    "(playground 0.2.0; github.com/google-deepmind/mujoco_playground)"
)

#: Published GPU figures, one entry per case (``record["published"]``).
PUBLISHED: dict[str, dict[str, dict[str, Any]]] = {
    "purejaxrl_cartpole": {
        "purejaxrl": {
            "source": "github.com/luchris429/purejaxrl README 'Performance' "
            "(docs/cartpole_plot_parallel.png); blog chrislu.page/blog/meta-disco",
            "hardware": "NVIDIA A100",
            "settings": "PUREJAXRL_CONFIG (5e5 env steps per agent)",
            "agents": 2048,
            "seconds": 98.0,
            "single_agent_seconds": 25.0,
            "env_steps_per_second": 2048 * 5e5 / 98.0,
            "note": "seconds read off the plot (about 98 s for 2048 agents, about 25 s for "
            "one); the README states 2048 agents train in half the time of one CleanRL "
            "PyTorch agent; whether compilation is included is not stated",
        },
    },
    "rejax_hopper": {
        "rejax_ppo": {
            "source": "github.com/keraJLi/rejax README (img/speedup_brax.png, 'Training "
            "speedup for 1m steps on brax/hopper')",
            "hardware": "NVIDIA A100 80G",
            "settings": "cleanRL's default PPO hyperparameters (README), not the tuned yaml",
            "env_steps": 1_000_000,
            "seconds_one_agent": 133.8,
            "seconds_per_agent_at_300": 0.8,
            "env_steps_per_second": 1e6 / 133.8,
            "cleanrl_seconds_per_agent": 3199.1,
        },
        "rejax_sac": {
            "source": "github.com/keraJLi/rejax README (img/speedup_brax.png)",
            "hardware": "NVIDIA A100 80G",
            "settings": "cleanRL's default SAC hyperparameters (README), not the tuned yaml",
            "env_steps": 1_000_000,
            "seconds_one_agent": 476.5,
            "seconds_per_agent_at_300": 8.7,
            "env_steps_per_second": 1e6 / 476.5,
            "cleanrl_seconds_per_agent": 26465.5,
        },
    },
    "brax_playground": {
        "playground_ppo": {
            "source": PLAYGROUND_SOURCE,
            "hardware": None,
            "settings": "the published PPO settings (recorded under settings.brax)",
            "note": "Playground publishes these settings; no per-task GPU timing was verified "
            "in this session, so no published speed is recorded",
        },
    },
}

# --- budgets ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GpuBudget:
    """Step budgets of one GPU-suite size (env steps per agent unless stated)."""

    mode: str  # "gpu" or "tiny"
    repeats: int  # timed rounds per contender (alternating)
    cartpole_steps: int
    seed_counts: tuple[int, ...]
    cartpole_eval_envs: int  # evaluation episodes per seed, once at the end
    hopper_task: str  # Brax env for rejax_hopper ("fast": physics-free stand-in)
    hopper_ppo_steps: int
    hopper_sac_steps: int
    hopper_evals: int  # evaluations per run (rejax's eval_freq = steps / evals)
    hopper_eval_envs: int
    sac_overrides: tuple[tuple[str, Any], ...]  # changes to rejax's SAC config (tiny only)
    playground_task: str  # Playground task for brax_playground ("fast": Brax stand-in)
    playground_steps: int
    playground_overrides: tuple[tuple[str, Any], ...]  # changes to the published settings


def gpu_budget(size: str) -> GpuBudget:
    """``gpu`` (the suite, about 8 minutes on one modern GPU) or ``tiny`` (CPU tests)."""
    budgets = {
        "gpu": GpuBudget(
            "gpu",
            repeats=1,
            cartpole_steps=int(PUREJAXRL_CONFIG["TOTAL_TIMESTEPS"]),
            seed_counts=(1, 256, 2048),
            cartpole_eval_envs=16,
            hopper_task="hopper",
            hopper_ppo_steps=1_048_576,
            hopper_sac_steps=65_536,
            hopper_evals=4,
            hopper_eval_envs=16,
            sac_overrides=(),
            playground_task="CartpoleBalance",
            # 3 epochs of 2 iterations of 983,040 steps (Brax compiles in the first two).
            playground_steps=6 * 983_040,
            playground_overrides=(("num_evals", 4),),
        ),
        "tiny": GpuBudget(
            "tiny",
            repeats=1,
            cartpole_steps=2_048,
            seed_counts=(2,),
            cartpole_eval_envs=2,
            hopper_task="fast",
            hopper_ppo_steps=2_048,
            hopper_sac_steps=256,
            hopper_evals=2,
            hopper_eval_envs=2,
            sac_overrides=(
                ("num_envs", 8),
                ("num_epochs", 8),
                ("batch_size", 16),
                ("buffer_size", 256),
                ("fill_buffer", 64),
            ),
            playground_task="fast",
            playground_steps=2_000,
            playground_overrides=tuple(mjx_case.MODE_OVERRIDES["tiny"].items())
            + (("num_evals", 4),),
        ),
    }
    if size not in budgets:
        raise ValueError(f"unknown gpu suite size {size!r}; known: {', '.join(budgets)}")
    return budgets[size]


# --- settings in one schema ---------------------------------------------------------------


def ppo_from_purejaxrl(c: dict[str, Any]) -> dict[str, Any]:
    """PureJaxRL's config in the PPO schema both builders read (fixed code choices added)."""
    return {
        "num_envs": c["NUM_ENVS"],
        "rollout_len": c["NUM_STEPS"],
        "num_epochs": c["UPDATE_EPOCHS"],
        "num_minibatches": c["NUM_MINIBATCHES"],
        "lr": c["LR"],
        "max_grad_norm": c["MAX_GRAD_NORM"],
        "gamma": c["GAMMA"],
        "gae_lambda": c["GAE_LAMBDA"],
        "clip_eps": c["CLIP_EPS"],
        "ent_coef": c["ENT_COEF"],
        "vf_coef": c["VF_COEF"],
        "activation": c["ACTIVATION"],
        "anneal_lr": c["ANNEAL_LR"],
        "hidden": [64, 64],  # ActorCritic in ppo.py
        "clip_value": True,  # value loss clipped with CLIP_EPS
        "ortho_init": True,
        "adam_eps": 1e-5,
        "normalize_obs": False,
    }


def ppo_from_rejax(c: dict[str, Any]) -> dict[str, Any]:
    """rejax's PPO config in the same schema (rejax's fixed code choices added)."""
    return {
        "num_envs": c["num_envs"],
        "rollout_len": c["num_steps"],
        "num_epochs": c["num_epochs"],
        "num_minibatches": c["num_minibatches"],
        "lr": c["learning_rate"],
        "max_grad_norm": float(c["max_grad_norm"]),
        "gamma": c["gamma"],
        "gae_lambda": c["gae_lambda"],
        "clip_eps": c["clip_eps"],
        "ent_coef": c["ent_coef"],
        "vf_coef": c["vf_coef"],
        "activation": c["agent_kwargs"]["activation"],
        "anneal_lr": False,
        "hidden": [64, 64],  # rejax's default hidden_layer_sizes
        "clip_value": True,
        "ortho_init": False,  # flax's lecun_normal
        "adam_eps": 1e-8,  # optax.adam's default
        "normalize_obs": c["normalize_observations"],
    }


def sac_from_rejax(c: dict[str, Any], overrides: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """rejax's SAC config (with a size's ``overrides``) in the SAC schema."""
    c = {**c, **dict(overrides)}
    return {
        "num_envs": c["num_envs"],
        "batch_size": c["batch_size"],
        "buffer_size": c["buffer_size"],
        "fill_buffer": c["fill_buffer"],
        "grad_steps_per_iter": c["num_epochs"],
        "lr": c["learning_rate"],
        "gamma": c["gamma"],
        "polyak": c["polyak"],
        "activation": c["agent_kwargs"]["activation"],
        "hidden": [64, 64],  # rejax's default hidden_layer_sizes
        "init_alpha": 1.0,  # rejax: log_alpha starts at 0
        "normalize_obs": c["normalize_observations"],
    }


# --- builders -----------------------------------------------------------------------------


def jaxrl_sac(
    env: Any, s: dict[str, Any], steps: int, num_evals: int, eval_envs: int
) -> tuple[Callable, Any, int]:
    """jaxrl SAC on ``env`` with SAC-schema settings ``s``: ``(train, hparams, env_steps)``.

    rejax averages its target critics once per iteration (``polyak`` after all of that
    iteration's gradient steps); jaxrl averages after every gradient step, so
    ``tau = 1 - polyak ** (1 / grad_steps_per_iter)`` gives the same decay per iteration.
    """
    from jaxrl import agents

    spec = agents.get("sac")
    config = spec.config(
        total_steps=steps,
        num_envs=s["num_envs"],
        batch_size=s["batch_size"],
        buffer_size=s["buffer_size"],
        warmup_steps=s["fill_buffer"],
        utd_ratio=s["grad_steps_per_iter"] / s["num_envs"],
        hidden=tuple(s["hidden"]),
        activation=s["activation"],
        num_evals=num_evals,
        num_eval_envs=eval_envs,
    )
    lr = s["lr"]
    hparams = spec.default_hparams(
        actor_lr=lr,
        critic_lr=lr,
        alpha_lr=lr,
        gamma=s["gamma"],
        tau=1.0 - s["polyak"] ** (1.0 / s["grad_steps_per_iter"]),
        init_alpha=s["init_alpha"],
    )
    return spec.make_train(config, env), hparams, cases.env_steps(spec, config, env)


def rejax_sac(
    env: Any, params: Any, s: dict[str, Any], steps: int, num_evals: int, eval_envs: int
) -> Callable[[jax.Array], Any]:
    """rejax SAC on (gymnax-API) ``env`` with SAC-schema settings ``s``."""
    from rejax import SAC

    return cases.rejax_trainer(
        SAC,
        env,
        params,
        steps,
        steps // num_evals,
        eval_envs,
        num_envs=s["num_envs"],
        buffer_size=s["buffer_size"],
        fill_buffer=s["fill_buffer"],
        batch_size=s["batch_size"],
        num_epochs=s["grad_steps_per_iter"],
        learning_rate=s["lr"],
        gamma=s["gamma"],
        polyak=s["polyak"],
        normalize_observations=s["normalize_obs"],
        hidden_layer_sizes=tuple(s["hidden"]),
        agent_kwargs={"activation": s["activation"]},
    )


# --- measuring ----------------------------------------------------------------------------

#: ``(compile, run, final_return)``: ``compile()`` returns an executable, ``run(exe)``
#: one whole training run, ``final_return(run's output)`` a float.
Program = tuple[Callable[[], Any], Callable[[Any], Any], Callable[[Any], float]]


def measure(
    programs: dict[str, Program], steps: int, repeats: int, reference: str
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Compiles every program, then times ``repeats`` alternating rounds.

    Returns ``(records, ratios)``: a contender record per program (``steps`` env steps
    per run, all agents together) and, for every program but ``reference``,
    ``ratio_steps_per_second_vs_<name>`` and ``ratio_compile_speedup_vs_<name>``.
    """
    records: dict[str, dict[str, Any]] = {}
    runners: dict[str, Callable[[], Any]] = {}
    for name, (compile_fn, run, _) in programs.items():
        exe, seconds = harness.timed(compile_fn)
        records[name] = {"compile_seconds": seconds}
        runners[name] = functools.partial(run, exe)
    with harness.CompileLog() as compiles:
        runs = harness.alternate(runners, repeats)
    sps = {name: [steps / s for _, s in rs] for name, rs in runs.items()}
    for name, rs in runs.items():
        records[name].update(
            status="ok",
            env_steps=steps,
            run_seconds=[s for _, s in rs],
            env_steps_per_second=harness.median(sps[name]),
            final_return=programs[name][2](rs[-1][0]),
            compilations_during_runs=compiles.count,
        )
    ratios: dict[str, float] = {}
    for name in runs:
        if name != reference:
            ratios[f"ratio_steps_per_second_vs_{name}"] = harness.paired_ratio(
                sps[reference], sps[name]
            )
            ratios[f"ratio_compile_speedup_vs_{name}"] = (
                records[name]["compile_seconds"] / records[reference]["compile_seconds"]
            )
    return records, ratios


def _jaxrl_program(train: Callable, hparams: Any, key: jax.Array, vmapped: int = 0) -> Program:
    """jaxrl's program: one seed (``vmapped=0``) or ``vmapped`` seeds via ``over_seeds``."""
    from jaxrl import sweep

    fn = sweep.over_seeds(train, vmapped) if vmapped else jax.jit(train)
    return (
        lambda: fn.lower(key, hparams).compile(),
        lambda exe: exe(key, hparams)[1],
        cases.jaxrl_final_return,
    )


def _rejax_program(train: Callable, key: jax.Array, vmapped: bool = False) -> Program:
    fn = jax.jit(jax.vmap(train) if vmapped else train)
    return lambda: fn.lower(key).compile(), lambda exe: exe(key), cases.rejax_final_return


# --- cases --------------------------------------------------------------------------------


def purejaxrl_cartpole(budget: GpuBudget, results: dict[str, Any]) -> dict[str, Any]:
    """PPO on CartPole-v1 with PureJaxRL's config at each seed count: jaxrl vs rejax."""
    import gymnax

    from jaxrl import envs, sweep

    s = ppo_from_purejaxrl(PUREJAXRL_CONFIG)
    train, hparams, steps = cases.jaxrl_ppo(
        envs.make("cartpole"), s, budget.cartpole_steps, 1, budget.cartpole_eval_envs
    )
    rejax_module, rejax_missing = harness.try_import("rejax")
    rejax_train = None
    if rejax_module is not None:
        env, params = gymnax.make("CartPole-v1")
        env = harness.GuardedLegacyStep(env)
        rejax_train = cases.rejax_ppo(env, params, s, steps, 1, budget.cartpole_eval_envs)
    contenders: dict[str, Any] = {}
    ratios: dict[str, dict[str, float]] = {}
    for n in budget.seed_counts:
        keys = sweep.seed_keys(0, n)
        programs = {"jaxrl": _jaxrl_program(train, hparams, keys, vmapped=n)}
        if rejax_train is not None:
            programs["rejax"] = _rejax_program(rejax_train, keys, vmapped=True)
        records, pair = measure(programs, steps * n, budget.repeats, "jaxrl")
        for name, rec in records.items():
            contenders[f"{name}/{n}"] = rec | {"num_seeds": n, "steps_per_seed": steps}
        for key, value in pair.items():
            ratios.setdefault(key, {})[str(n)] = value
    if rejax_missing is not None:
        contenders["rejax"] = rejax_missing
    return {
        "settings": {
            "source": PUREJAXRL_SOURCE,
            "purejaxrl_config": PUREJAXRL_CONFIG,
            "both": s,
            "env": "jaxrl cartpole / gymnax CartPole-v1 (rejax)",
            "steps_per_seed": steps,
            "seed_counts": list(budget.seed_counts),
            "eval_episodes_per_seed": budget.cartpole_eval_envs,
            "repeats": budget.repeats,
            "notes": CARTPOLE_NOTES,
        },
        "contenders": contenders,
        "published": PUBLISHED["purejaxrl_cartpole"],
        **ratios,
    }


CARTPOLE_NOTES = [
    "contender names are <library>/<seeds>; env_steps_per_second counts all seeds together",
    "jaxrl runs PureJaxRL's settings exactly (64x64 tanh, orthogonal init, value clipping, "
    "global-norm clipping 0.5, Adam eps 1e-5, linear LR annealing; jaxrl anneals per "
    "gradient step, PureJaxRL per update of 16 gradient steps)",
    "rejax cannot express some of them: no LR annealing, element-wise gradient clipping "
    "(optax.clip), Adam eps 1e-8, lecun_normal init; the rest is identical",
    "steps_per_seed: whole iterations of 4 x 128 steps (976 iterations for 5e5, as PureJaxRL's "
    "NUM_UPDATES), the same for both",
    "one evaluation at the end (deterministic for jaxrl, rejax's sampling make_act); "
    "PureJaxRL itself logs training returns only",
    "seeds vmapped: jaxrl via jaxrl.sweep.over_seeds, rejax via jax.jit(jax.vmap(train))",
    "both compiled ahead of time; compilations_during_runs counts XLA compilations in the "
    "timed rounds (0 expected)",
    "PureJaxRL is not pip-installable: its figure is kept as published, on its hardware",
]


def hopper_envs(task: str) -> tuple[Any, tuple[Any, Any] | None]:
    """``(jaxrl env, rejax (env, params) or None)`` for ``task``, both on MJX.

    ``fast`` (Brax's physics-free test env) stands in for hopper in tiny runs.
    """
    from jaxrl import envs
    from jaxrl.envs.brax_env import BraxEnv

    if task == "fast":
        ours = envs.EpisodeLimit(BraxEnv(mjx_case.brax_env("fast")), BraxEnv.max_episode_steps)
    else:
        ours = envs.make(f"brax/{task}")
    if harness.try_import("rejax")[1] is not None:
        return ours, None
    kwargs = {} if task == "fast" else {"backend": "mjx"}
    return ours, harness.rejax_brax_env(task, **kwargs)


def rejax_hopper(budget: GpuBudget, results: dict[str, Any]) -> dict[str, Any]:
    """PPO and SAC on Brax hopper with rejax's tuned configs: jaxrl vs rejax."""
    key = jax.random.PRNGKey(0)
    ours, theirs = hopper_envs(budget.hopper_task)
    ppo_s = ppo_from_rejax(REJAX_HOPPER["ppo"])
    sac_s = sac_from_rejax(REJAX_HOPPER["sac"], budget.sac_overrides)
    evals, episodes = budget.hopper_evals, budget.hopper_eval_envs
    contenders: dict[str, Any] = {}
    record: dict[str, Any] = {}
    steps_taken: dict[str, int] = {}
    for algo, s, steps, build_ours, build_theirs in (
        ("ppo", ppo_s, budget.hopper_ppo_steps, cases.jaxrl_ppo, cases.rejax_ppo),
        ("sac", sac_s, budget.hopper_sac_steps, jaxrl_sac, rejax_sac),
    ):
        train, hparams, taken = build_ours(ours, s, steps, evals, episodes)
        programs = {f"jaxrl_{algo}": _jaxrl_program(train, hparams, key)}
        if theirs is not None:
            rejax_train = build_theirs(*theirs, s, taken, evals, episodes)
            programs[f"rejax_{algo}"] = _rejax_program(rejax_train, key)
        else:
            contenders[f"rejax_{algo}"] = harness.try_import("rejax")[1]
        records, ratios = measure(programs, taken, budget.repeats, f"jaxrl_{algo}")
        contenders.update(records)
        record.update(ratios)
        steps_taken[algo] = taken
    record["settings"] = {
        "source": REJAX_SOURCE,
        "rejax_configs": REJAX_HOPPER,
        "ppo": ppo_s,
        "sac": sac_s,
        "env": f"brax/{budget.hopper_task} (MJX backend for both; rejax through its own "
        "rejax.compat Brax wrapper)",
        "env_steps": steps_taken,
        "evaluations": evals,
        "eval_episodes": episodes,
        "repeats": budget.repeats,
        "notes": HOPPER_NOTES,
    }
    record["contenders"] = contenders
    record["published"] = PUBLISHED["rejax_hopper"]
    return record


HOPPER_NOTES = [
    "one agent each; budgets cut from the configs' 5,242,880 steps to fit the suite "
    "(settings.env_steps)",
    "both on the MJX backend: jaxrl's brax/hopper is MJX; rejax's wrapper calls "
    "brax.envs.create, whose hopper default is the 'generalized' backend, so backend='mjx' "
    "is passed (the published figure used rejax's default)",
    "rejax 0.1.3's Brax wrapper reads state.time under gymnax 1.0 (missing on Brax states): "
    "harness.rejax_brax_env reports no gymnax truncation, rejax's pre-1.0 behaviour",
    "rejax's published seconds are for cleanRL's default hyperparameters (README), the "
    "measured runs use rejax's tuned yaml: compare the published figure with care",
    "evaluations: settings.evaluations per run, settings.eval_episodes episodes each "
    "(rejax's config: every 32,768 steps with 128 episodes); jaxrl deterministic, rejax "
    "its sampling make_act",
    "PPO differences not removable: rejax clips gradients element-wise, jaxrl by global "
    "norm (both 1.0); rejax normalises observations before storing them (statistics "
    "updated every step), jaxrl after each update; rejax treats the 1000-step limit as "
    "termination, jaxrl bootstraps; jaxrl PPO uses Adam eps 1e-8 and lecun init as rejax",
    "SAC: 128 envs and 128 gradient steps per iteration (update-to-data 1), batch 128, "
    "10,000 steps before updates (jaxrl acts uniformly at random then, rejax with its "
    "policy), buffer 1M, one lr for actor, critics and temperature, initial temperature 1, "
    "target entropy -action_dim; rejax's polyak 0.95 once per iteration is jaxrl's tau = "
    "1 - 0.95^(1/128) per gradient step",
    "SAC differences not removable: jaxrl's SAC has no observation normalisation (rejax's "
    "config normalises); rejax clips log-std to [-10, 2]",
]


def playground_settings(budget: GpuBudget) -> dict[str, Any]:
    """Playground's published PPO settings, Brax's defaults, the size's overrides."""
    from mujoco_playground.config import dm_control_suite_params

    task = "CartpoleBalance"  # the published row; the tiny stand-in env uses it too
    published = dict(dm_control_suite_params.brax_ppo_config(task))
    s = {**published, **mjx_case.BRAX_DEFAULTS, **dict(budget.playground_overrides)}
    s["num_timesteps"] = budget.playground_steps
    return s


def playground_env(task: str) -> tuple[Any, Callable | None]:
    """``(env, wrap_env_fn)``: the Playground task (MJX-JAX) with Playground's Brax
    training wrapper, or Brax's physics-free ``fast`` env with Brax's default one."""
    if task == "fast":
        return mjx_case.brax_env("fast"), None
    from mujoco_playground import wrapper

    from jaxrl.envs import playground_env as adapter

    return adapter.make(task).env, wrapper.wrap_for_brax_training


def brax_playground(budget: GpuBudget, results: dict[str, Any]) -> dict[str, Any]:
    """PPO on Playground CartpoleBalance: jaxrl vs Brax's trainer, Playground's settings."""
    key = jax.random.PRNGKey(0)
    s = playground_settings(budget)
    raw_env, wrap_env_fn = playground_env(budget.playground_task)
    steps_per_iter, iters, epochs = mjx_case.schedule(s)
    epoch_steps = steps_per_iter * iters
    steps = epoch_steps * epochs
    train, hparams, jaxrl_settings = mjx_case.jaxrl_train(raw_env, s)
    with harness.CompileLog() as compiles:
        exe, compile_s = harness.timed(lambda: jax.jit(train).lower(key, hparams).compile())
    xla = {"xla_compile_seconds": compiles.seconds}

    def run_jaxrl() -> tuple:
        return harness.timed(lambda: exe(key, hparams)[1])

    contenders: dict[str, Any] = {}
    record: dict[str, Any] = {}
    brax_ppo, brax_missing = harness.try_import("brax.training.agents.ppo.train")
    if brax_missing is not None:
        runs = [run_jaxrl() for _ in range(budget.repeats)]
        contenders["jaxrl"] = mjx_case.jaxrl_record(compile_s, runs, steps) | xla
        contenders["brax"] = brax_missing
    else:
        print(harness.restore_device_put_replicated())
        kwargs = mjx_case.brax_kwargs(s)
        if wrap_env_fn is not None:
            kwargs["wrap_env_fn"] = wrap_env_fn
        with harness.CompileLog() as compiles:
            rounds = mjx_case.Rounds(run_jaxrl, budget.repeats, compiles)
            _, call_s = harness.timed(lambda: brax_ppo.train(raw_env, progress_fn=rounds, **kwargs))
        steady = bool(rounds.pairs)
        if not steady:  # too few epochs for a compile-free one: pair the last
            rounds.pairs.append((rounds.epochs[-1][0], run_jaxrl()))
        brax_seconds = [b for b, _ in rounds.pairs]
        jaxrl_runs = [r for _, r in rounds.pairs]
        contenders["jaxrl"] = mjx_case.jaxrl_record(compile_s, jaxrl_runs, steps) | xla
        contenders["brax"] = mjx_case.brax_record(
            rounds, compiles, call_s, steady, steps, epoch_steps
        )
        record["ratio_steps_per_second_vs_brax"] = harness.paired_ratio(
            [steps / r[1] for r in jaxrl_runs], [epoch_steps / b for b in brax_seconds]
        )
        record["ratio_compile_speedup_vs_brax"] = compiles.seconds / compile_s
    record["settings"] = {
        "source": PLAYGROUND_SOURCE,
        "task": budget.playground_task,
        "brax": s,
        "jaxrl": jaxrl_settings,
        "env_steps": steps,
        "network": {**mjx_case.NETWORK, "hidden": list(mjx_case.NETWORK["hidden"])},
        "repeats": budget.repeats,
        "notes": PLAYGROUND_NOTES + mjx_case.NOTES,
    }
    record["contenders"] = contenders
    record["published"] = PUBLISHED["brax_playground"]
    return record


PLAYGROUND_NOTES = [
    "Playground's published row for CartpoleBalance (60M steps, 10 evaluations) cut to "
    "settings.env_steps and num_evals 4 (Brax's initial evaluation, two epochs that "
    "compile, one steady epoch); everything else as published",
    "the same env object for both: Playground's CartpoleBalance with impl='jax' (MJX-JAX; "
    "Playground's default 'warp' is not traceable by jaxrl); Brax's trainer wraps it with "
    "Playground's wrap_for_brax_training (as Playground trains), jaxrl reads it through "
    "its Brax adapter (the same reset/step/State protocol) with a 1000-step limit",
    "the published settings name no network: both use the ppo_mjx network below (Brax's "
    "default policy torso for actor and critic; Brax's default critic is 5x256)",
    "ratio_compile_speedup_vs_brax: Brax's XLA compile seconds during its call over jaxrl's "
    "lower+compile seconds",
    "tiny size: Brax's physics-free 'fast' env with Brax's default wrapper stands in",
    "notes that follow are ppo_mjx's, which this case shares",
]


GPU_CASES: dict[str, Callable[[GpuBudget, dict[str, Any]], dict[str, Any]]] = {
    "purejaxrl_cartpole": purejaxrl_cartpole,
    "rejax_hopper": rejax_hopper,
    "brax_playground": brax_playground,
}


def run_gpu_bench(
    size: str | GpuBudget, cases: list[str] | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Runs ``cases`` (default all of ``GPU_CASES``) at ``size``; returns the bench.json object
    (``cases.run_bench``'s shape, ``meta["suite"] == "gpu"``); the persistent compilation
    cache is off, as in ``cases.run_bench``."""
    budget = gpu_budget(size) if isinstance(size, str) else size
    names = list(GPU_CASES) if cases is None else cases
    unknown = [n for n in names if n not in GPU_CASES]
    if unknown:
        raise ValueError(
            f"unknown gpu bench case(s) {', '.join(unknown)}; known: {', '.join(GPU_CASES)}"
        )
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with compile_cache.disabled():  # every case times compiles: keep them cold
        for name in names:
            log(f"bench: running {name} (gpu suite, {budget.mode})")
            t0 = time.perf_counter()
            results[name] = GPU_CASES[name](budget, results)
            seconds[name] = time.perf_counter() - t0
    devices = jax.devices()
    return {
        "meta": {
            "suite": "gpu",
            "mode": budget.mode,
            "budget": dataclasses.asdict(budget),
            "versions": harness.versions("playground"),
            "backend": jax.default_backend(),
            "devices": len(devices),
            "device_kind": devices[0].device_kind,
            "cpu_count": os.cpu_count(),
            "machine": platform.platform(),
            "case_seconds": seconds,
        },
        "cases": results,
    }


def format_published(bench: dict[str, Any]) -> str:
    """One line per published figure: case, entry, speed (or none), hardware, source."""
    lines = ["published figures (their hardware; not measured here):"]
    for case, rec in bench["cases"].items():
        for name, p in rec.get("published", {}).items():
            sps = p.get("env_steps_per_second")
            speed = "no timing" if sps is None else f"{sps:,.0f} env steps/s"
            if sps is not None and p.get("hardware"):
                speed += f" on {p['hardware']}"
            lines.append(f"{case} {name}: {speed}; source: {p['source']}")
    return "\n".join(lines)


__all__ = ["GPU_CASES", "GpuBudget", "format_published", "gpu_budget", "run_gpu_bench"]
