"""Training drivers. Each returns ``train(key, hparams) -> (agent_state, metrics)``.

A run is one ``lax.scan`` over evaluation periods, each a ``lax.scan`` over
training iterations followed by a deterministic evaluation, so the whole run
(env, collection, updates, evaluation) compiles into one function. Metrics come
out stacked with a leading ``[num_evals]`` axis.

Algorithms pass ``make_agent(hparams) -> Agent`` (hyperparameters may be traced,
so sweeps vmap over them without recompiling) and choose a loop; they do not
write one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.core import Agent, Metrics, Transition, tree_finite
from jaxrl.envs import AutoReset, Env, EnvState, VmapWrapper
from jaxrl.replay import replay_add, replay_init, replay_sample

MakeAgent = Callable[[Any], Agent]
Progress = Callable[[jax.Array], None]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How a run's env steps split into iterations and evaluation periods."""

    steps_per_iter: int
    iters_per_eval: int
    num_evals: int

    @property
    def num_iters(self) -> int:
        return self.iters_per_eval * self.num_evals

    @property
    def total_steps(self) -> int:
        return self.num_iters * self.steps_per_iter


def make_schedule(total_steps: int, steps_per_iter: int, num_evals: int) -> Schedule:
    """Rounds ``total_steps`` down to whole iterations, split into ``num_evals`` periods.

    Raises:
      ValueError: when the budget does not allow one iteration per period.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if num_evals <= 0:
        raise ValueError(f"num_evals must be positive, got {num_evals}")
    iters = total_steps // steps_per_iter
    if iters < num_evals:
        raise ValueError(
            f"total_steps={total_steps} gives {iters} iterations of {steps_per_iter} steps, "
            f"fewer than num_evals={num_evals}; raise total_steps or lower num_evals"
        )
    return Schedule(steps_per_iter, iters // num_evals, num_evals)


def evaluate(
    agent: Agent, agent_state: Any, env: Env, key: jax.Array, num_envs: int
) -> tuple[jax.Array, jax.Array]:
    """Deterministic return of one episode in each of ``num_envs`` envs.

    ``env`` must carry an episode limit (``max_episode_steps``). Returns
    ``(mean, std)`` over the episodes, float32 scalars.
    """
    horizon = env.max_episode_steps
    if horizon is None:
        raise ValueError("evaluation needs an env with an episode limit (max_episode_steps)")
    eval_env = VmapWrapper(env, num_envs)
    reset_key, act_key = jax.random.split(key)
    state = eval_env.reset(reset_key)

    def body(carry, k):
        state, total, alive = carry
        action, _ = agent.act(agent_state, state.obs, k, explore=False)
        state = eval_env.step(state, action)
        total = total + jnp.where(alive, state.reward, 0.0)
        return (state, total, alive & ~state.done), None

    init = (state, jnp.zeros(num_envs), jnp.ones(num_envs, jnp.bool_))
    (_, returns, _), _ = jax.lax.scan(body, init, jax.random.split(act_key, horizon))
    return jnp.mean(returns), jnp.std(returns)


def _mean_metrics(metrics: Metrics) -> Metrics:
    return jax.tree.map(lambda x: jnp.mean(x.astype(jnp.float32), axis=0), metrics)


def _run(
    schedule: Schedule,
    init_carry: Callable[[jax.Array, Any], tuple[Any, Agent]],
    iteration: Callable[[Any, Agent, jax.Array], tuple[Any, Metrics]],
    env: Env,
    num_eval_envs: int,
    progress: Progress | None,
    progress_every: int,
) -> Callable[[jax.Array, Any], tuple[Any, Metrics]]:
    """Shared outer structure: periods of iterations, each closed by an evaluation."""

    def train(key: jax.Array, hparams: Any) -> tuple[Any, Metrics]:
        key, init_key = jax.random.split(key)
        carry, agent = init_carry(init_key, hparams)

        def inner(carry, xs):
            it, k = xs
            carry, metrics = iteration(carry, agent, k)
            if progress is not None:
                jax.lax.cond(
                    (it + 1) % progress_every == 0,
                    lambda: jax.debug.callback(progress, (it + 1) * schedule.steps_per_iter),
                    lambda: None,
                )
            return carry, metrics

        def period(carry, xs):
            p, k = xs
            train_key, eval_key = jax.random.split(k)
            its = p * schedule.iters_per_eval + jnp.arange(schedule.iters_per_eval)
            carry, metrics = jax.lax.scan(
                inner, carry, (its, jax.random.split(train_key, schedule.iters_per_eval))
            )
            metrics = _mean_metrics(metrics)
            agent_state, env_state = carry[0], carry[1]
            ret_mean, ret_std = evaluate(agent, agent_state, env, eval_key, num_eval_envs)
            metrics.update(
                {
                    "env_steps": (p + 1) * schedule.iters_per_eval * schedule.steps_per_iter,
                    "eval_return": ret_mean,
                    "eval_return_std": ret_std,
                    "train_return": jnp.mean(env_state.info["last_return"]),
                    "finite": tree_finite(agent_state) & tree_finite(metrics),
                }
            )
            return carry, metrics

        periods = jnp.arange(schedule.num_evals)
        carry, metrics = jax.lax.scan(
            period, carry, (periods, jax.random.split(key, schedule.num_evals))
        )
        return carry[0], metrics

    return train


def _transition(state: EnvState, action: jax.Array, nxt: EnvState, extras: dict) -> Transition:
    """The transition from ``state`` under ``action`` to ``nxt`` (an ``AutoReset`` state)."""
    return Transition(
        obs=state.obs,
        action=action,
        reward=nxt.reward,
        terminated=nxt.terminated,
        truncated=nxt.truncated,
        next_obs=nxt.info["final_obs"],
        extras=extras,
    )


def _progress_every(schedule: Schedule, points: int = 100) -> int:
    return max(1, schedule.num_iters // points)


def on_policy(
    make_agent: MakeAgent,
    env: Env,
    *,
    total_steps: int,
    num_envs: int,
    rollout_len: int,
    num_evals: int = 20,
    num_eval_envs: int = 16,
    progress: Progress | None = None,
) -> Callable[[jax.Array, Any], tuple[Any, Metrics]]:
    """Rollout-then-update driver (PPO and friends).

    Each iteration collects ``rollout_len`` steps from ``num_envs`` auto-resetting
    envs into a ``Transition`` of leaves ``[rollout_len, num_envs, ...]`` (with
    ``extras`` from ``agent.act``) and calls ``agent.update`` once on it.
    ``progress(env_steps)`` is called on the host about 100 times per run.
    """
    schedule = make_schedule(total_steps, num_envs * rollout_len, num_evals)
    train_env = VmapWrapper(AutoReset(env), num_envs)

    def init_carry(key, hparams):
        agent = make_agent(hparams)
        agent_key, env_key = jax.random.split(key)
        return (agent.init(agent_key), train_env.reset(env_key)), agent

    def iteration(carry, agent, key):
        agent_state, env_state = carry
        rollout_key, update_key = jax.random.split(key)

        def step(env_state, k):
            action, info = agent.act(agent_state, env_state.obs, k, explore=True)
            nxt = train_env.step(env_state, action)
            return nxt, _transition(env_state, action, nxt, info)

        env_state, batch = jax.lax.scan(step, env_state, jax.random.split(rollout_key, rollout_len))
        agent_state, metrics = agent.update(agent_state, batch, update_key)
        return (agent_state, env_state), metrics

    return _run(
        schedule, init_carry, iteration, env, num_eval_envs, progress, _progress_every(schedule)
    )


def off_policy(
    make_agent: MakeAgent,
    env: Env,
    *,
    total_steps: int,
    num_envs: int,
    batch_size: int,
    buffer_size: int,
    warmup_steps: int,
    updates_per_iter: int,
    num_evals: int = 20,
    num_eval_envs: int = 16,
    progress: Progress | None = None,
) -> Callable[[jax.Array, Any], tuple[Any, Metrics]]:
    """Replay driver (SAC and friends).

    Each iteration steps ``num_envs`` envs once and stores the ``[num_envs]``
    transitions in a replay buffer kept in the scan carry; once ``warmup_steps``
    env steps are stored (taken with uniformly random actions) it runs
    ``updates_per_iter`` updates on flat batches ``[batch_size, ...]``.
    Update-to-data ratio = ``updates_per_iter / num_envs``.
    """
    if updates_per_iter <= 0:
        raise ValueError(f"updates_per_iter must be positive, got {updates_per_iter}")
    schedule = make_schedule(total_steps, num_envs, num_evals)
    train_env = VmapWrapper(AutoReset(env), num_envs)
    warmup_iters = -(-warmup_steps // num_envs)

    def init_carry(key, hparams):
        agent = make_agent(hparams)
        agent_key, env_key = jax.random.split(key)
        agent_state = agent.init(agent_key)
        env_state = train_env.reset(env_key)
        example = Transition(
            obs=env_state.obs[0],
            action=env.action_spec.sample(jax.random.PRNGKey(0)),
            reward=env_state.reward[0],
            terminated=env_state.terminated[0],
            truncated=env_state.truncated[0],
            next_obs=env_state.obs[0],
        )
        buffer = replay_init(example, min(buffer_size, schedule.total_steps))
        return (agent_state, env_state, buffer, jnp.zeros((), jnp.int32)), agent

    def update_many(agent, agent_state, buffer, key):
        def one(state, k):
            sample_key, update_key = jax.random.split(k)
            batch = replay_sample(buffer, sample_key, batch_size)
            return agent.update(state, batch, update_key)

        state, metrics = jax.lax.scan(one, agent_state, jax.random.split(key, updates_per_iter))
        return state, _mean_metrics(metrics)

    def iteration(carry, agent, key):
        agent_state, env_state, buffer, it = carry
        act_key, rand_key, update_key = jax.random.split(key, 3)
        policy_action, _ = agent.act(agent_state, env_state.obs, act_key, explore=True)
        random_action = jax.vmap(env.action_spec.sample)(jax.random.split(rand_key, num_envs))
        action = jnp.where(
            it < warmup_iters, random_action.astype(policy_action.dtype), policy_action
        )
        nxt = train_env.step(env_state, action)
        buffer = replay_add(buffer, _transition(env_state, action, nxt, {}))
        metrics_shape = jax.eval_shape(
            lambda: update_many(agent, agent_state, buffer, update_key)[1]
        )
        agent_state, metrics = jax.lax.cond(
            it + 1 >= warmup_iters,
            lambda: update_many(agent, agent_state, buffer, update_key),
            lambda: (
                agent_state,
                jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics_shape),
            ),
        )
        return (agent_state, nxt, buffer, it + 1), metrics

    return _run(
        schedule, init_carry, iteration, env, num_eval_envs, progress, _progress_every(schedule)
    )
