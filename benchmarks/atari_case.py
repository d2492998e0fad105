"""Bench case ``atari_throughput``: Atari frames per second, in the program and from Python.

Four ways to step Breakout (Atari100k protocol, frame skip 4, 84x84 grey, uniform random
actions unless a learner acts), ``budget.atari_steps`` agent steps each:

- ``jaxrl/env``: ``ale/Breakout`` alone inside one jitted ``lax.scan`` (``AutoReset``
  over ``VmapWrapper``, ``ATARI_ENVS`` emulators in one ale-py pool, XLA FFI calls);
- ``jaxrl/ppo``: PPO (Nature CNN, the ``ale`` preset's rollout at ``ATARI_ENVS`` envs)
  training on it for half the steps, one compiled program (its learner's cost included);
- ``gymnasium``: ale-py's ``AtariVectorEnv`` with the same pool size and settings,
  stepped from Python (``step`` per batch of actions, NumPy random actions);
- ``host``: the host env ``atari/Breakout`` (one emulator stepped from Python, as
  ``jaxrl.loops.host_sequences`` does for Drama, before any learner cost).

``env_steps_per_second`` counts agent steps; ``frames_per_second`` is 4x that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness

ATARI_ENVS = 8
GAME, ROM = "Breakout", "breakout"


def ale_random_rollout(num_envs: int, length: int) -> Callable[[jax.Array], jax.Array]:
    """``f(key) -> total reward``: ``length`` random steps of ``num_envs`` in-program envs."""
    from jaxrl import envs

    env = envs.make(f"ale/{GAME}")
    train_env = envs.AutoReset(envs.VmapWrapper(env, num_envs))
    n = env.action_spec.num_actions

    def rollout(key: jax.Array) -> jax.Array:
        def body(state, k):
            nxt = train_env.step(state, jax.random.randint(k, (num_envs,), 0, n))
            return nxt, nxt.reward

        keys = jax.random.split(key, length + 1)
        _, rewards = jax.lax.scan(body, train_env.reset(keys[0]), keys[1:])
        return jnp.sum(rewards)

    return rollout


def gymnasium_rollout(num_envs: int, length: int) -> Callable[[], float]:
    """``f() -> total reward``: the same pool in ale-py's ``AtariVectorEnv`` from Python."""
    from ale_py.vector_env import AtariVectorEnv

    pool = AtariVectorEnv(
        ROM, num_envs, noop_max=31, reward_clipping=False, use_fire_reset=False,
        episodic_life=False, repeat_action_probability=0.0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    n = pool.single_action_space.n

    def run() -> float:
        pool.reset(seed=0)
        total = 0.0
        for _ in range(length):
            actions = rng.integers(0, n, num_envs, dtype=np.int32)
            total += float(pool.step(actions)[1].sum())
        return total

    return run


def host_rollout(length: int) -> Callable[[], float]:
    """``f() -> total reward``: ``length`` random steps of the host env, resets included."""
    from jaxrl import envs

    env = envs.make(f"atari/{GAME}", size=84)
    rng = np.random.default_rng(0)
    n = env.action_spec.num_actions

    def run() -> float:
        env.reset()
        total = 0.0
        for _ in range(length):
            _, reward, terminated, truncated = env.step(int(rng.integers(n)))
            total += reward
            if terminated or truncated:
                env.reset()
        return total

    return run


def ppo_train(steps: int) -> tuple[Callable, Any, dict[str, Any]]:
    """PPO with the ``ale`` preset on ``ATARI_ENVS`` envs, one evaluation at the end."""
    from jaxrl import agents, envs

    spec = agents.get("ppo")
    env = envs.make(f"ale/{GAME}")
    rollout = 32 if steps < ATARI_ENVS * 128 else 128
    overrides = {"num_envs": ATARI_ENVS, "rollout_len": rollout, "num_evals": 1}
    config = spec.make_config(f"ale/{GAME}", total_steps=steps, num_eval_envs=2, **overrides)
    train = spec.make_train(config, env)
    settings = {k: v for k, v in config.__dict__.items() if not isinstance(v, tuple)}
    return train, spec.default_hparams(), settings


def _timed_runs(run: Callable[[], Any], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run())
        seconds.append(time.perf_counter() - t0)
    return seconds


def atari_throughput(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Agent steps and frames per second of Breakout in the four ways above."""
    del results
    length = max(1, budget.atari_steps // ATARI_ENVS)
    steps = length * ATARI_ENVS
    key = jax.random.PRNGKey(0)
    contenders: dict[str, dict[str, Any]] = {}

    def record(name: str, compile_s: float | None, seconds: list[float], n: int) -> None:
        sps = harness.median([n / s for s in seconds])
        contenders[name] = {
            "status": "ok",
            "compile_seconds": compile_s,
            "run_seconds": seconds,
            "env_steps_per_second": sps,
            "frames_per_second": 4 * sps,
        }

    compiled, compile_s = harness.timed(
        lambda: jax.jit(ale_random_rollout(ATARI_ENVS, length)).lower(key).compile()
    )
    _timed_runs(lambda: compiled(key), 1)  # warm-up: the pool's first reset
    record("jaxrl/env", compile_s, _timed_runs(lambda: compiled(key), budget.repeats), steps)

    ppo_steps = max(steps // 2, ATARI_ENVS * 32)  # the learner dominates: half the steps
    train, hparams, settings = ppo_train(ppo_steps)
    compiled_ppo, ppo_compile_s = harness.timed(
        lambda: jax.jit(train).lower(key, hparams).compile()
    )
    seconds = _timed_runs(lambda: compiled_ppo(key, hparams)[1], budget.repeats)
    record("jaxrl/ppo", ppo_compile_s, seconds, ppo_steps)

    try:
        gym_run = gymnasium_rollout(ATARI_ENVS, length)
        record("gymnasium", None, _timed_runs(gym_run, budget.repeats), steps)
        host_run = host_rollout(steps // ATARI_ENVS)
        record("host", None, _timed_runs(host_run, budget.repeats), steps // ATARI_ENVS)
    except ImportError as err:  # gymnasium missing: the in-program rows still stand
        contenders.setdefault("gymnasium", {"status": "missing", "error": str(err)})
        contenders.setdefault("host", {"status": "missing", "error": str(err)})

    env_sps = contenders["jaxrl/env"]["env_steps_per_second"]
    rec: dict[str, Any] = {
        "settings": {
            "game": GAME,
            "num_envs": ATARI_ENVS,
            "steps": steps,
            "repeats": budget.repeats,
            "protocol": "frame skip 4, max-pool, 84x84 grey, 4 stacked, no sticky actions, "
            "up to 30 no-ops, unclipped rewards (host env: 84x84 RGB, no stack)",
            "actions": "uniform random (jaxrl/ppo: the learner's)",
            "ppo": settings,
            "devices": len(jax.devices()),
            "notes": [
                "jaxrl/env and jaxrl/ppo: one untimed warm-up (pool creation, first reset)",
                "host: one emulator stepped from Python, resets included, no learner",
            ],
        },
        "contenders": contenders,
        "jaxrl_ppo_fraction_of_raw": contenders["jaxrl/ppo"]["env_steps_per_second"] / env_sps,
    }
    if contenders.get("gymnasium", {}).get("status") == "ok":
        gym_sps = contenders["gymnasium"]["env_steps_per_second"]
        rec["ratio_steps_per_second_vs_gymnasium"] = env_sps / gym_sps
    return rec
