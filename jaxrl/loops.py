"""Training drivers. Each returns ``train(key, hparams) -> (agent_state, metrics)``.

A run is one ``lax.scan`` over evaluation periods, each a ``lax.scan`` over
training iterations followed by a deterministic evaluation, so the whole run
(env, collection, updates, evaluation) compiles into one function. Metrics come
out stacked with a leading ``[num_evals]`` axis. A driver returns a ``Trainer``: callable
as that one function, and also runnable in chunks of periods (``init`` then
``run_periods``) that equal the one-shot run bitwise, which checkpoints build on.

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
from flax import struct

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


class RunState(struct.PyTreeNode):
    """Everything a run carries between evaluation periods (what a checkpoint saves).

    Attributes:
      carry: the driver's scan carry; ``carry[0]`` is the agent state.
      period_keys: ``[num_evals, 2]`` keys, one per evaluation period, split once from
        the run's key so that a run in chunks draws the same randomness as in one go.
      next_period: int32 scalar, the index of the next period to run.
    """

    carry: Any
    period_keys: jax.Array
    next_period: jax.Array

    @property
    def agent_state(self) -> Any:
        return self.carry[0]


@dataclasses.dataclass(frozen=True)
class Trainer:
    """A training run: call it as ``train(key, hparams) -> (agent_state, metrics)``.

    The same run also comes in chunks: ``init(key, hparams) -> RunState``, then
    ``run_periods(state, hparams, num) -> (state, metrics)`` runs the next ``num``
    evaluation periods (``num`` static; metrics ``[num]``; keep ``next_period + num <=
    num_evals``, which a jitted call cannot check). Chunks run back to back equal the
    one-shot call bitwise, so a run can stop, checkpoint and resume.
    """

    schedule: Schedule
    init: Callable[[jax.Array, Any], RunState]
    run_periods: Callable[[RunState, Any, int], tuple[RunState, Metrics]]

    def __call__(self, key: jax.Array, hparams: Any) -> tuple[Any, Metrics]:
        state = self.init(key, hparams)
        state, metrics = self.run_periods(state, hparams, self.schedule.num_evals)
        return state.agent_state, metrics


def _run(
    schedule: Schedule,
    make_agent: MakeAgent,
    init_carry: Callable[[jax.Array, Agent], Any],
    iteration: Callable[[Any, Agent, jax.Array], tuple[Any, Metrics]],
    env: Env,
    num_eval_envs: int,
    progress: Progress | None,
    progress_every: int,
) -> Trainer:
    """Shared outer structure: periods of iterations, each closed by an evaluation.

    ``init_carry(key, agent)`` builds the driver's carry, whose first element is the
    agent state and second the training env state.
    """

    def init(key: jax.Array, hparams: Any) -> RunState:
        key, init_key = jax.random.split(key)
        carry = init_carry(init_key, make_agent(hparams))
        period_keys = jax.random.split(key, schedule.num_evals)
        return RunState(carry, period_keys, jnp.zeros((), jnp.int32))

    def run_periods(state: RunState, hparams: Any, num: int) -> tuple[RunState, Metrics]:
        agent = make_agent(hparams)

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

        first = state.next_period
        periods = first + jnp.arange(num, dtype=jnp.int32)
        keys = jax.lax.dynamic_slice_in_dim(state.period_keys, first, num)
        carry, metrics = jax.lax.scan(period, state.carry, (periods, keys))
        return state.replace(carry=carry, next_period=first + num), metrics

    return Trainer(schedule, init, run_periods)


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
) -> Trainer:
    """Rollout-then-update driver (PPO and friends).

    Each iteration collects ``rollout_len`` steps from ``num_envs`` auto-resetting
    envs into a ``Transition`` of leaves ``[rollout_len, num_envs, ...]`` (with
    ``extras`` from ``agent.act``) and calls ``agent.update`` once on it.
    ``progress(env_steps)`` is called on the host about 100 times per run.
    """
    schedule = make_schedule(total_steps, num_envs * rollout_len, num_evals)
    train_env = AutoReset(VmapWrapper(env, num_envs))

    def init_carry(key, agent):
        agent_key, env_key = jax.random.split(key)
        return agent.init(agent_key), train_env.reset(env_key)

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
        schedule,
        make_agent,
        init_carry,
        iteration,
        env,
        num_eval_envs,
        progress,
        _progress_every(schedule),
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
) -> Trainer:
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
    train_env = AutoReset(VmapWrapper(env, num_envs))
    warmup_iters = -(-warmup_steps // num_envs)

    def init_carry(key, agent):
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
        return agent_state, env_state, buffer, jnp.zeros((), jnp.int32)

    def update_many(agent, agent_state, buffer, key):
        def one(state, keys):  # keys [2]: sample key, update key
            batch = replay_sample(buffer, keys[0], batch_size)
            return agent.update(state, batch, keys[1])

        keys = jax.random.split(key, (updates_per_iter, 2))  # one PRNG call for all
        if updates_per_iter == 1:
            return one(agent_state, keys[0])
        state, metrics = jax.lax.scan(one, agent_state, keys)
        return state, _mean_metrics(metrics)

    def iteration(carry, agent, key):
        agent_state, env_state, buffer, it = carry
        act_key, update_key = jax.random.split(key)

        def policy_action():
            return agent.act(agent_state, env_state.obs, act_key, explore=True)[0]

        def random_action():
            keys = jax.random.split(act_key, num_envs)
            action = jax.vmap(env.action_spec.sample)(keys)
            return action.astype(jax.eval_shape(policy_action).dtype)

        # A cond, not a select: only one of the two is computed each step.
        action = jax.lax.cond(it < warmup_iters, random_action, policy_action)
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
        schedule,
        make_agent,
        init_carry,
        iteration,
        env,
        num_eval_envs,
        progress,
        _progress_every(schedule),
    )


def _learners(agent: Agent, num_learners: int) -> Agent:
    """``num_learners`` independent copies of ``agent``; state leaves gain ``[num_learners]``.

    ``act`` takes ``obs [num_learners * k, ...]`` and gives each learner its own ``k``
    consecutive rows (``k = 1`` while training, ``num_eval_envs / num_learners`` in
    evaluation); ``update`` takes one transition per learner (leaves ``[num_learners, ...]``)
    and returns metrics averaged over the learners.
    """

    def init(key: jax.Array) -> Any:
        return jax.vmap(agent.init)(jax.random.split(key, num_learners))

    def act(states: Any, obs: jax.Array, key: jax.Array, explore: bool = True):
        grouped = obs.reshape((num_learners, -1, *obs.shape[1:]))
        keys = jax.random.split(key, num_learners)
        out = jax.vmap(lambda s, o, k: agent.act(s, o, k, explore=explore))(states, grouped, keys)
        return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), out)

    def update(states: Any, batch: Transition, key: jax.Array):
        keys = jax.random.split(key, num_learners)
        states, metrics = jax.vmap(agent.update)(states, batch, keys)
        return states, _mean_metrics(metrics)

    return Agent(init=init, act=act, update=update)


def streaming(
    make_agent: MakeAgent,
    env: Env,
    *,
    total_steps: int,
    num_envs: int = 1,
    num_evals: int = 20,
    num_eval_envs: int = 16,
    progress: Progress | None = None,
) -> Trainer:
    """Streaming driver (stream-x learners): one transition, one update, no buffer.

    ``num_envs`` independent learners, each with its own auto-resetting env and its own
    agent state (state leaves gain a leading ``[num_envs]`` axis). Each iteration every
    learner acts once on its obs (``agent.act`` sees ``[1, *obs_shape]``), its env steps
    once, and it calls ``agent.update`` on that single transition (unbatched leaves, with
    ``extras`` from ``act``). Evaluation gives each learner ``num_eval_envs / num_envs``
    of the evaluation episodes. ``total_steps`` counts env steps over all learners.
    """
    if num_envs <= 0:
        raise ValueError(f"num_envs must be positive, got {num_envs}")
    if num_eval_envs % num_envs:
        raise ValueError(
            f"num_eval_envs={num_eval_envs} must be a multiple of num_envs={num_envs} "
            "(each learner evaluates the same number of episodes)"
        )
    schedule = make_schedule(total_steps, num_envs, num_evals)
    train_env = AutoReset(VmapWrapper(env, num_envs))

    def learners(hparams):
        return _learners(make_agent(hparams), num_envs)

    def init_carry(key, agent):
        agent_key, env_key = jax.random.split(key)
        return agent.init(agent_key), train_env.reset(env_key)

    def iteration(carry, agent, key):
        agent_state, env_state = carry
        act_key, update_key = jax.random.split(key)
        action, info = agent.act(agent_state, env_state.obs, act_key, explore=True)
        nxt = train_env.step(env_state, action)
        batch = _transition(env_state, action, nxt, info)
        agent_state, metrics = agent.update(agent_state, batch, update_key)
        return (agent_state, nxt), metrics

    return _run(
        schedule,
        learners,
        init_carry,
        iteration,
        env,
        num_eval_envs,
        progress,
        _progress_every(schedule),
    )
