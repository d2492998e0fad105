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
from typing import Any, NamedTuple

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
    # One PRNG call for every key of the evaluation: num_envs resets, then horizon steps.
    keys = jax.random.split(key, num_envs + horizon)
    state = eval_env.reset_each(keys[:num_envs])

    def body(carry, k):
        state, total, alive = carry
        action, _ = agent.act(agent_state, state.obs, k, explore=False)
        state = eval_env.step(state, action)
        total = total + jnp.where(alive, state.reward, 0.0)
        return (state, total, alive & ~state.done), None

    init = (state, jnp.zeros(num_envs), jnp.ones(num_envs, jnp.bool_))
    (_, returns, _), _ = jax.lax.scan(body, init, keys[num_envs:])
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
    eval_fn: Callable[[Any, Any, jax.Array], tuple[jax.Array, jax.Array]] | None = None,
    train_return_fn: Callable[[Any], jax.Array] | None = None,
) -> Trainer:
    """Shared outer structure: periods of iterations, each closed by an evaluation.

    ``init_carry(key, agent)`` builds the driver's carry, whose first element is the
    agent state and second the training env state. ``eval_fn(agent, carry, key) ->
    (mean, std)`` replaces the default ``evaluate`` and ``train_return_fn(carry)`` the
    default ``carry[1].info["last_return"]`` (the offline driver uses both).
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
            keys = jax.random.split(k, schedule.iters_per_eval + 1)  # iterations, then eval
            its = p * schedule.iters_per_eval + jnp.arange(schedule.iters_per_eval)
            carry, metrics = jax.lax.scan(inner, carry, (its, keys[:-1]))
            eval_key = keys[-1]
            metrics = _mean_metrics(metrics)
            agent_state, env_state = carry[0], carry[1]
            if eval_fn is None:
                ret_mean, ret_std = evaluate(agent, agent_state, env, eval_key, num_eval_envs)
            else:
                ret_mean, ret_std = eval_fn(agent, carry, eval_key)
            if train_return_fn is None:
                train_return = jnp.mean(env_state.info["last_return"])
            else:
                train_return = train_return_fn(carry)
            metrics.update(
                {
                    "env_steps": (p + 1) * schedule.iters_per_eval * schedule.steps_per_iter,
                    "eval_return": ret_mean,
                    "eval_return_std": ret_std,
                    "train_return": train_return,
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
        keys = jax.random.split(key, rollout_len + 1)  # one per step, then the update's

        def step(env_state, k):
            action, info = agent.act(agent_state, env_state.obs, k, explore=True)
            nxt = train_env.step(env_state, action)
            return nxt, _transition(env_state, action, nxt, info)

        env_state, batch = jax.lax.scan(step, env_state, keys[:-1])
        agent_state, metrics = agent.update(agent_state, batch, keys[-1])
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
    pass_train_return: bool = False,
) -> Trainer:
    """Replay driver (SAC and friends).

    Each iteration steps ``num_envs`` envs once and stores the ``[num_envs]``
    transitions in a replay buffer kept in the scan carry; once ``warmup_steps``
    env steps are stored (taken with uniformly random actions) it runs
    ``updates_per_iter`` updates on flat batches ``[batch_size, ...]``.
    Update-to-data ratio = ``updates_per_iter / num_envs``.
    With ``pass_train_return`` each batch's ``extras`` carry ``train_return`` (mean
    return of the training envs' last finished episodes, float32) and
    ``train_return_valid`` (every training env has finished one), for agents that
    score themselves by return (MENTOR's snapshots).
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

    def update_many(agent, agent_state, buffer, key, extras):
        def one(state, keys):  # keys [2]: sample key, update key
            batch = replay_sample(buffer, keys[0], batch_size)
            if extras:
                batch = batch.replace(extras=extras)
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
        extras = {}
        if pass_train_return:
            extras = {
                "train_return": jnp.mean(nxt.info["last_return"]).astype(jnp.float32),
                "train_return_valid": jnp.all(nxt.info["last_length"] > 0),
            }
        metrics_shape = jax.eval_shape(
            lambda: update_many(agent, agent_state, buffer, update_key, extras)[1]
        )
        agent_state, metrics = jax.lax.cond(
            it + 1 >= warmup_iters,
            lambda: update_many(agent, agent_state, buffer, update_key, extras),
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


def offline(
    make_agent: MakeAgent,
    env: Env,
    *,
    prepare: Callable[[jax.Array, Any], Any],
    sample: Callable[[Any, jax.Array], Any],
    total_steps: int,
    num_evals: int = 10,
    num_eval_envs: int = 16,
    evaluate_fn: Callable[..., tuple[jax.Array, jax.Array]] | None = None,
    data_return: Callable[[Any], jax.Array] | None = None,
    data_metrics: Callable[[Any], Metrics] | None = None,
    progress: Progress | None = None,
) -> Trainer:
    """Offline driver: learn from a fixed dataset only, evaluate in the real env.

    ``prepare(key, hparams) -> data`` builds the training data once, inside ``init``
    (load or generate a dataset; MBRCSL also trains its model and rolls it out here).
    Each iteration is one gradient step: ``agent.update(state, sample(data, key), key)``.
    So ``total_steps`` and the metrics' ``env_steps`` count gradient steps, not env steps.
    ``evaluate_fn(agent, agent_state, data, key) -> (mean, std)`` replaces the default
    deterministic evaluation (return-conditioned policies read their target from
    ``data``); ``train_return`` in the metrics is ``data_return(data)`` (the mean return
    of the training trajectories), and ``data_metrics(data)`` adds constant metrics.
    """
    schedule = make_schedule(total_steps, 1, num_evals)

    def with_hparams(hparams):
        return make_agent(hparams), hparams

    def init_carry(key, agent_hp):
        agent, hparams = agent_hp
        agent_key, data_key = jax.random.split(key)
        return agent.init(agent_key), prepare(data_key, hparams)

    def iteration(carry, agent_hp, key):
        agent, _ = agent_hp
        agent_state, data = carry
        sample_key, update_key = jax.random.split(key)
        agent_state, metrics = agent.update(agent_state, sample(data, sample_key), update_key)
        if data_metrics is not None:
            metrics = {**metrics, **data_metrics(data)}
        return (agent_state, data), metrics

    def eval_fn(agent_hp, carry, key):
        agent, _ = agent_hp
        if evaluate_fn is None:
            return evaluate(agent, carry[0], env, key, num_eval_envs)
        return evaluate_fn(agent, carry[0], carry[1], key)

    def train_return_fn(carry):
        if data_return is None:
            return jnp.zeros((), jnp.float32)
        return data_return(carry[1])

    return _run(
        schedule,
        with_hparams,
        init_carry,
        iteration,
        env,
        num_eval_envs,
        progress,
        _progress_every(schedule),
        eval_fn=eval_fn,
        train_return_fn=train_return_fn,
    )


class RecurrentAgent(NamedTuple):
    """An agent that acts from a belief carried across env steps (model-based agents).

    init(key) -> state
    initial_carry(batch) -> carry                         # belief at an episode start
    act(state, carry, obs, key, explore) -> (action, info) # obs [B, ...]
    observe(state, carry, obs, action) -> carry            # belief after obs and action
    update(state, (wm_sequences, contexts), key) -> (state, metrics)
    imagine(params, contexts, key) -> rollout              # for tests and inspection
    """

    init: Callable[[jax.Array], Any]
    act: Callable[..., tuple[jax.Array, dict]]
    update: Callable[[Any, Any, jax.Array], tuple[Any, Metrics]]
    initial_carry: Callable[[int], Any]
    observe: Callable[[Any, Any, jax.Array, jax.Array], Any]
    imagine: Callable[..., Any] | None = None


def _reset_where(done: jax.Array, fresh: Any, carry: Any) -> Any:
    """``carry`` with the rows of finished envs (``done [B]``) replaced by ``fresh``."""

    def pick(f, c):
        return jnp.where(done.reshape((-1,) + (1,) * (c.ndim - 1)), f, c)

    return jax.tree.map(pick, fresh, carry)


def evaluate_recurrent(
    agent: RecurrentAgent, agent_state: Any, env: Env, key: jax.Array, num_envs: int
) -> tuple[jax.Array, jax.Array]:
    """``evaluate`` for a ``RecurrentAgent``: the belief is carried through each episode."""
    horizon = env.max_episode_steps
    if horizon is None:
        raise ValueError("evaluation needs an env with an episode limit (max_episode_steps)")
    eval_env = VmapWrapper(env, num_envs)
    reset_key, act_key = jax.random.split(key)
    state = eval_env.reset(reset_key)

    def body(carry, k):
        state, belief, total, alive = carry
        action, _ = agent.act(agent_state, belief, state.obs, k, explore=False)
        belief = agent.observe(agent_state, belief, state.obs, action)
        state = eval_env.step(state, action)
        total = total + jnp.where(alive, state.reward, 0.0)
        return (state, belief, total, alive & ~state.done), None

    init = (
        state,
        agent.initial_carry(num_envs),
        jnp.zeros(num_envs),
        jnp.ones(num_envs, jnp.bool_),
    )
    (_, _, returns, _), _ = jax.lax.scan(body, init, jax.random.split(act_key, horizon))
    return jnp.mean(returns), jnp.std(returns)


def dfs_updates(
    agent: RecurrentAgent,
    agent_state: Any,
    buffer: Any,
    key: jax.Array,
    *,
    updates: int,
    wm_batch: int,
    wm_seq_len: int,
    img_batch: int,
    context_len: int,
    dfs: bool,
    dfs_temperature: float,
) -> tuple[Any, Any, Metrics]:
    """``updates`` agent updates, each on world-model sequences and imagination contexts
    drawn from ``buffer`` (a ``SequenceReplay``) by DFS; the draw counters are updated.

    Returns ``(agent_state, buffer, metrics averaged over the updates)``.
    """
    from jaxrl import replay_dfs

    def one(carry, k):
        state, buffer = carry
        wm_key, img_key, update_key = jax.random.split(k, 3)
        valid = replay_dfs.valid_starts(buffer, wm_seq_len)
        logits = replay_dfs.wm_logits(buffer.wm_counts, valid, dfs_temperature, dfs)
        wm_seqs, wm_starts = replay_dfs.sample_sequences(
            buffer, wm_key, logits, wm_batch, wm_seq_len
        )
        buffer = buffer.replace(wm_counts=replay_dfs.count_draws(buffer.wm_counts, wm_starts))
        valid = replay_dfs.valid_starts(buffer, context_len)
        logits = replay_dfs.imagination_logits(
            buffer.wm_counts, buffer.img_counts, valid, dfs_temperature, dfs
        )
        contexts, img_starts = replay_dfs.sample_sequences(
            buffer, img_key, logits, img_batch, context_len
        )
        buffer = buffer.replace(img_counts=replay_dfs.count_draws(buffer.img_counts, img_starts))
        state, metrics = agent.update(state, (wm_seqs, contexts), update_key)
        return (state, buffer), metrics

    keys = jax.random.split(key, updates)
    (agent_state, buffer), metrics = jax.lax.scan(one, (agent_state, buffer), keys)
    return agent_state, buffer, _mean_metrics(metrics)


def model_based(
    make_agent: Callable[[Any], RecurrentAgent],
    env: Env,
    *,
    total_steps: int,
    num_envs: int,
    train_every: int,
    warmup_steps: int,
    updates_per_iter: int,
    wm_batch: int,
    wm_seq_len: int,
    img_batch: int,
    context_len: int,
    dfs: bool = True,
    dfs_temperature: float = 10.0,
    num_evals: int = 10,
    num_eval_envs: int = 16,
    progress: Progress | None = None,
) -> Trainer:
    """Model-based driver (Drama): real steps feed a sequence buffer, the agent's update
    trains its world model on replayed sequences and learns from imagination.

    Each iteration steps ``num_envs`` envs ``train_every`` times with the agent's belief
    carried per env (reset at episode ends) and appends the steps to a
    ``jaxrl.replay_dfs.SequenceReplay`` sized for the whole run. Actions are uniformly
    random for the first ``warmup_steps`` env steps; after that, each iteration runs
    ``updates_per_iter`` updates, each on ``wm_batch`` sequences of ``wm_seq_len`` steps
    and ``img_batch`` contexts of ``context_len`` steps, drawn by dynamic
    frequency-based sampling (``dfs``, temperature ``dfs_temperature``) or uniformly.
    Sequence leaves are ``[batch, length, ...]``: ``obs, action, reward, terminated``.
    """
    from jaxrl import replay_dfs

    if updates_per_iter <= 0:
        raise ValueError(f"updates_per_iter must be positive, got {updates_per_iter}")
    schedule = make_schedule(total_steps, num_envs * train_every, num_evals)
    train_env = AutoReset(VmapWrapper(env, num_envs))
    capacity = schedule.num_iters * train_every
    first_update = max(warmup_steps // num_envs, wm_seq_len, context_len)

    def init_carry(key, agent):
        agent_key, env_key = jax.random.split(key)
        env_state = train_env.reset(env_key)
        example = {
            "obs": env_state.obs,
            "action": jnp.zeros((num_envs,), jnp.int32),
            "reward": env_state.reward,
            "terminated": env_state.terminated,
        }
        buffer = replay_dfs.sequence_replay_init(example, capacity)
        belief = agent.initial_carry(num_envs)
        return agent.init(agent_key), env_state, buffer, belief, jnp.zeros((), jnp.int32)

    def collect(agent, agent_state, env_state, belief, it, key):
        def step(carry, k):
            env_state, belief, t = carry
            act_key, rand_key = jax.random.split(k)
            action, _ = agent.act(agent_state, belief, env_state.obs, act_key, explore=True)
            random = jax.vmap(env.action_spec.sample)(jax.random.split(rand_key, num_envs))
            action = jnp.where(t * num_envs < warmup_steps, random, action).astype(jnp.int32)
            belief = agent.observe(agent_state, belief, env_state.obs, action)
            nxt = train_env.step(env_state, action)
            belief = _reset_where(nxt.done, agent.initial_carry(num_envs), belief)
            row = {
                "obs": env_state.obs,
                "action": action,
                "reward": nxt.reward,
                "terminated": nxt.terminated,
            }
            return (nxt, belief, t + 1), row

        keys = jax.random.split(key, train_every)
        (env_state, belief, _), rows = jax.lax.scan(
            step, (env_state, belief, it * train_every), keys
        )
        return env_state, belief, rows

    def update_many(agent, agent_state, buffer, key):
        return dfs_updates(
            agent,
            agent_state,
            buffer,
            key,
            updates=updates_per_iter,
            wm_batch=wm_batch,
            wm_seq_len=wm_seq_len,
            img_batch=img_batch,
            context_len=context_len,
            dfs=dfs,
            dfs_temperature=dfs_temperature,
        )

    def iteration(carry, agent, key):
        agent_state, env_state, buffer, belief, it = carry
        collect_key, update_key = jax.random.split(key)
        env_state, belief, rows = collect(agent, agent_state, env_state, belief, it, collect_key)
        buffer = replay_dfs.sequence_replay_add(buffer, rows)
        shape = jax.eval_shape(lambda: update_many(agent, agent_state, buffer, update_key)[2])
        agent_state, buffer, metrics = jax.lax.cond(
            buffer.size >= first_update,
            lambda: update_many(agent, agent_state, buffer, update_key),
            lambda: (
                agent_state,
                buffer,
                jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape),
            ),
        )
        return (agent_state, env_state, buffer, belief, it + 1), metrics

    def eval_fn(agent, carry, key):
        return evaluate_recurrent(agent, carry[0], env, key, num_eval_envs)

    return _run(
        schedule,
        make_agent,
        init_carry,
        iteration,
        env,
        num_eval_envs,
        progress,
        _progress_every(schedule),
        eval_fn=eval_fn,
    )
