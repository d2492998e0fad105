"""The sequence loop for host envs (ALE through ``jaxrl.envs.atari``): Python steps the
env, every agent computation (acting, belief update, buffer writes, updates) is jitted.

A host env has ``reset() -> obs``, ``step(a) -> (obs, reward, terminated, truncated)``,
``observation_spec`` and an ``action_spec`` (``a`` an int for a discrete spec, a float32
array for a box). It cannot run inside the jitted loops, so it has its own evaluation
(``host_evaluate``: the same rule as ``jaxrl.loops.evaluate``, deterministic actions, one
episode at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core import Agent
from jaxrl.data.sequences import sequence_replay_add, sequence_replay_init
from jaxrl.loops.carry import first_carry, next_carry, silent_info
from jaxrl.loops.data import Sequences
from jaxrl.loops.sequences import sequence_updates


def _obs_scale(env: Any) -> float:
    """uint8 frames (a Box with ``high`` above 1) enter the model in [0, 1]."""
    return 255.0 if float(np.max(env.observation_spec.high)) > 1.0 else 1.0


def _host_action(spec: Any, action: jax.Array) -> Any:
    """The row of ``action [1, ...]`` as a host env takes it (int, or float32 array)."""
    return int(action[0]) if spec.discrete else np.asarray(action[0], np.float32)


def _random_action(spec: Any, rng: np.random.Generator) -> jax.Array:
    """A uniformly random action ``[1, ...]``: the host's NumPy generator draws a discrete
    one itself and seeds ``spec.sample`` for a box."""
    if spec.discrete:
        return jnp.asarray([rng.integers(spec.num_actions)], jnp.int32)
    return spec.sample(jax.random.PRNGKey(int(rng.integers(2**31 - 1))))[None]


def _acting(agent: Agent) -> tuple[Callable, Callable]:
    """Jitted ``act(state, belief, obs [1, ...], key, explore) -> (action [1], belief)`` and
    ``observe(state, belief, obs, action) -> belief`` for an action the loop chose (the
    agent is not asked: ``silent_info``). Both move the belief by ``next_carry``; each
    episode starts from ``first_carry``."""

    def act(state, belief, obs, key, explore):
        action, info = agent.act(state, obs, key, explore, carry=belief)
        return action, next_carry(agent, state, belief, obs, action, info)

    def observe(state, belief, obs, action):
        info = silent_info(agent, state, obs, belief)
        return next_carry(agent, state, belief, obs, action, info)

    return jax.jit(act, static_argnums=4), jax.jit(observe)


def host_evaluate(
    agent: Agent,
    state: Any,
    env: Any,
    key: jax.Array,
    episodes: int,
    max_steps: int | None = None,
) -> tuple[float, float]:
    """``(mean, std)`` undiscounted return of ``episodes`` episodes of ``env`` with
    deterministic actions (``explore=False``); each episode runs to the env's own end, or
    for at most ``max_steps`` steps when given."""
    return _evaluate(_acting(agent)[0], agent, state, env, key, episodes, max_steps)


def _evaluate(
    act: Callable,
    agent: Agent,
    state: Any,
    env: Any,
    key: jax.Array,
    episodes: int,
    max_steps: int | None = None,
) -> tuple[float, float]:
    scale = _obs_scale(env)
    returns = []
    limit = float("inf") if max_steps is None else max_steps
    for _ in range(episodes):
        obs, belief, total, done = env.reset(), first_carry(agent, 1), 0.0, False
        steps = 0
        while not done and steps < limit:
            steps += 1
            key, act_key = jax.random.split(key)
            x = jnp.asarray(obs, jnp.float32)[None] / scale
            action, belief = act(state, belief, x, act_key, False)
            obs, reward, terminated, truncated = env.step(_host_action(env.action_spec, action))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))


def _frames_update(agent: Agent, scale: float) -> Agent:
    """``agent`` whose ``update`` takes replayed observations as stored (uint8 frames, 4x
    smaller in the buffer than float32) and scales them to the [0, 1] the model sees."""

    def scaled(batch: Any) -> Any:
        return {**batch, "obs": batch["obs"].astype(jnp.float32) / scale}

    def update(state, batch, key):
        return agent.update(state, batch.replace(wm=scaled(batch.wm), img=scaled(batch.img)), key)

    return agent._replace(update=update)


def _finite(tree: Any) -> bool:
    return all(bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree.leaves(tree))


def host_sequences(
    data: Sequences,
    agent: Agent,
    env: Any,
    key: jax.Array,
    total_steps: int,
    *,
    num_evals: int = 1,
    eval_env: Any = None,
    eval_episodes: int = 1,
    eval_max_steps: int | None = None,
    progress: Callable[[int], None] | None = None,
    log: Callable[[int, float], None] | None = None,
) -> tuple[Any, dict[str, np.ndarray], float]:
    """``total_steps`` steps of one host env with ``agent`` (its carry, if any, moved by
    ``next_carry``) on ``data``'s sequence replay (``data.num_envs`` is ignored: one env).

    The first ``data.warmup_steps`` actions are uniformly random; updates run every
    ``data.train_every`` steps once ``data.first_update`` steps are stored. At the end of
    each of ``num_evals`` equal periods the agent is evaluated for ``eval_episodes``
    episodes of at most ``eval_max_steps`` steps (``None``: whole episodes) on ``eval_env``
    (a second instance, so the training episode is not cut).
    ``log(step, episode_return)`` is called at each training episode's end and
    ``progress(step)`` every 100 steps.

    Returns ``(agent_state, metrics, first_call_seconds)``: ``metrics`` maps to ``[num_evals]``
    arrays ``env_steps``, ``eval_return``, ``eval_return_std``, ``train_return`` (mean of
    the training episodes that ended in the period; NaN if none), ``episodes`` and
    ``finite`` (every state leaf finite); ``first_call_seconds`` is the wall time of the
    first act and first update (compile-dominated).
    """
    if num_evals < 1 or num_evals > total_steps:
        raise ValueError(f"num_evals must be in [1, total_steps], got {num_evals}")
    key, init_key = jax.random.split(key)
    state = agent.init(init_key)
    scale = _obs_scale(env)
    frames = jnp.uint8 if scale == 255.0 else jnp.float32
    obs_shape = tuple(env.observation_spec.shape)
    example = {
        "obs": jnp.zeros((1, *obs_shape), frames),
        "action": jnp.zeros((1, *env.action_spec.shape), env.action_spec.dtype),
        "reward": jnp.zeros((1,), jnp.float32),
        "terminated": jnp.zeros((1,), jnp.bool_),
    }
    # Built under jit so that no two leaves share a device buffer (they are donated).
    buffer = jax.jit(sequence_replay_init, static_argnums=1)(example, total_steps)
    act, observe = _acting(agent)
    learner = _frames_update(agent, scale) if scale == 255.0 else agent
    # The buffer holds the whole run: donated, so each write updates it in place.
    add = jax.jit(sequence_replay_add, donate_argnums=0)
    updates = jax.jit(
        lambda state, buffer, key: sequence_updates(
            learner, state, buffer, data.sampler, key, data.updates_per_iter
        ),
        donate_argnums=1,
    )
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    ends = {total_steps * (p + 1) // num_evals for p in range(num_evals)}
    rows: list[dict[str, float]] = []
    period_returns: list[float] = []
    first_call, timed = 0.0, {"act": False, "update": False}
    obs = env.reset()
    belief = first_carry(agent, 1)
    episode_return = 0.0
    for t in range(total_steps):
        key, act_key, update_key, eval_key = jax.random.split(key, 4)
        obs_in = jnp.asarray(obs, jnp.float32)[None] / scale
        if t < data.warmup_steps:
            action = _random_action(env.action_spec, rng)
            belief = observe(state, belief, obs_in, action)
        else:
            start = time.perf_counter()
            action, belief = act(state, belief, obs_in, act_key, True)
            if not timed["act"]:
                jax.block_until_ready(action)
                first_call += time.perf_counter() - start
                timed["act"] = True
        next_obs, reward, terminated, truncated = env.step(_host_action(env.action_spec, action))
        row = {
            "obs": jnp.asarray(obs, frames)[None, None],
            "action": action[None],
            "reward": jnp.asarray([[reward]], jnp.float32),
            "terminated": jnp.asarray([[terminated]]),
        }
        buffer = add(buffer, row)
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            period_returns.append(episode_return)
            if log is not None:
                log(t + 1, episode_return)
            obs, belief, episode_return = env.reset(), first_carry(agent, 1), 0.0
        if t + 1 >= data.first_update and (t + 1) % data.train_every == 0:
            start = time.perf_counter()
            state, buffer, _ = updates(state, buffer, update_key)
            if not timed["update"]:
                jax.block_until_ready(state)
                first_call += time.perf_counter() - start
                timed["update"] = True
        if progress is not None and ((t + 1) % 100 == 0 or t + 1 == total_steps):
            progress(t + 1)
        if t + 1 in ends:
            mean, std = (
                _evaluate(act, agent, state, eval_env, eval_key, eval_episodes, eval_max_steps)
                if eval_env is not None
                else (float("nan"), float("nan"))
            )
            rows.append(
                {
                    "env_steps": t + 1,
                    "eval_return": mean,
                    "eval_return_std": std,
                    "train_return": float(np.mean(period_returns)) if period_returns else np.nan,
                    "episodes": len(period_returns),
                    "finite": _finite(state),
                }
            )
            period_returns = []
    metrics = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    return state, metrics, first_call
