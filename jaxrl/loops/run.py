"""The outer structure every loop shares: evaluation periods of training iterations.

A run is one ``lax.scan`` over evaluation periods, each a ``lax.scan`` over training
iterations followed by a deterministic evaluation, so the whole run (env, collection,
updates, evaluation) compiles into one function. Metrics come out stacked with a
leading ``[num_evals]`` axis. A loop returns a ``Trainer``: callable as that one
function, and also runnable in chunks of periods (``init`` then ``run_periods``) that
equal the one-shot run bitwise, which checkpoints build on.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.core import Agent, LoopContext, Metrics, mean_metrics, tree_finite
from jaxrl.envs import Env
from jaxrl.loops.evaluate import EVAL_MAX_STEPS, evaluate

Progress = Callable[[jax.Array], None]
#: ``eval_progress(env_steps, dependency, finished=...)``: a host callback as each
#: evaluation starts (``finished=False``) and ends (``True``); ``dependency`` is an array
#: the evaluation's start or end produced, so the call waits for it.
EvalProgress = Callable[..., None]
#: ``make_agent(hparams, schedule) -> Agent``: hparams may be traced (sweeps vmap them).
MakeAgent = Callable[[Any, "Schedule"], Agent]


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


class LoopCarry(struct.PyTreeNode):
    """What a loop carries from one iteration to the next (what a checkpoint saves).

    Attributes:
      agent_state: the agent's state.
      env_state: the training envs' ``EnvState`` (leaves ``[B, ...]``); ``None`` offline.
      data: the loop's data store: a replay or sequence buffer, or an offline dataset;
        ``None`` for loops without one.
      belief: a recurrent agent's carry per training env; ``None`` for feed-forward agents.
      iteration: int32, iterations done.
    """

    agent_state: Any
    env_state: Any = None
    data: Any = None
    belief: Any = None
    iteration: jax.Array = struct.field(default_factory=lambda: jnp.zeros((), jnp.int32))


class RunState(struct.PyTreeNode):
    """Everything a run carries between evaluation periods.

    Attributes:
      carry: the loop's ``LoopCarry``.
      period_keys: ``[num_evals, 2]`` keys, one per evaluation period, split once from
        the run's key so that a run in chunks draws the same randomness as in one go.
      next_period: int32 scalar, the index of the next period to run.
    """

    carry: LoopCarry
    period_keys: jax.Array
    next_period: jax.Array

    @property
    def agent_state(self) -> Any:
        return self.carry.agent_state


@dataclasses.dataclass(frozen=True)
class Trainer:
    """A training run: call it as ``train(key, hparams) -> (agent_state, metrics)``.

    The same run also comes in chunks: ``init(key, hparams) -> RunState``, then
    ``run_periods(state, hparams, num) -> (state, metrics)`` runs the next ``num``
    evaluation periods (``num`` static; metrics ``[num]``; keep ``next_period + num <=
    num_evals``, which a jitted call cannot check). Chunks run back to back equal the
    one-shot call bitwise, so a run can stop, checkpoint and resume.
    ``evaluate(carry, hparams, key, num_envs) -> (mean, std)`` is the loop's evaluation
    of a ``LoopCarry`` with ``num_envs`` episodes (``None`` for a wrapped trainer).
    """

    schedule: Schedule
    init: Callable[[jax.Array, Any], RunState]
    run_periods: Callable[[RunState, Any, int], tuple[RunState, Metrics]]
    evaluate: Callable[[LoopCarry, Any, jax.Array, int], tuple[jax.Array, jax.Array]] | None = None

    def __call__(self, key: jax.Array, hparams: Any) -> tuple[Any, Metrics]:
        state = self.init(key, hparams)
        state, metrics = self.run_periods(state, hparams, self.schedule.num_evals)
        return state.agent_state, metrics


class LoopSetup(NamedTuple):
    """What every loop is built from besides its data declaration.

    ``make_agent(hparams, schedule) -> Agent``; ``env``: the (unbatched) env, also used for
    evaluation with ``num_eval_envs`` episodes of at most ``eval_max_steps`` steps;
    ``progress(env_steps)``, ``eval_progress``: host callbacks (``Progress``, ``EvalProgress``).
    """

    make_agent: MakeAgent
    env: Env
    schedule: Schedule
    num_eval_envs: int
    progress: Progress | None = None
    eval_max_steps: int | None = EVAL_MAX_STEPS
    eval_progress: EvalProgress | None = None


def env_context(env_state: Any, env_step: jax.Array) -> LoopContext:
    """The ``LoopContext`` of a loop over auto-resetting training envs ``[B]``."""
    return LoopContext(
        env_step=jnp.asarray(env_step, jnp.int32),
        train_return=jnp.mean(env_state.info["last_return"]).astype(jnp.float32),
        train_return_valid=jnp.all(env_state.info["last_length"] > 0),
    )


def zeros_like_shape(tree: Any) -> Any:
    """Zeros shaped like ``tree`` (a pytree of ``ShapeDtypeStruct``s)."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)


#: ``init_carry(key, agent, hparams) -> LoopCarry``.
InitCarry = Callable[[jax.Array, Agent, Any], LoopCarry]
#: ``iteration(carry, agent, hparams, key) -> (carry, metrics)``.
Iteration = Callable[[LoopCarry, Agent, Any, jax.Array], tuple[LoopCarry, Metrics]]
#: ``evaluate(agent, carry, key, num_envs) -> (mean return, std)`` over ``num_envs`` episodes.
EvalFn = Callable[[Agent, LoopCarry, jax.Array, int], tuple[jax.Array, jax.Array]]
#: ``train_return(carry) -> float32``, reported with each evaluation.
TrainReturnFn = Callable[[LoopCarry], jax.Array]


def train_return_of_envs(carry: LoopCarry) -> jax.Array:
    """Mean return of the training envs' last finished episodes."""
    return jnp.mean(carry.env_state.info["last_return"])


def run_loop(
    setup: LoopSetup,
    init_carry: InitCarry,
    iteration: Iteration,
    *,
    eval_fn: EvalFn | None = None,
    train_return: TrainReturnFn = train_return_of_envs,
    progress_points: int = 100,
) -> Trainer:
    """Periods of iterations, each closed by an evaluation; the shared outer structure.

    ``eval_fn`` defaults to ``evaluate`` in ``setup.env`` (episodes capped at
    ``setup.eval_max_steps``); ``setup.progress(env_steps)`` is
    called on the host about ``progress_points`` times a run, ``setup.eval_progress`` as
    each evaluation starts and ends.
    """
    schedule, make_agent, progress = setup.schedule, setup.make_agent, setup.progress
    eval_progress = setup.eval_progress
    progress_every = max(1, schedule.num_iters // progress_points)
    if eval_fn is None:

        def eval_fn(agent, carry, key, num_envs):
            return evaluate(
                agent, carry.agent_state, setup.env, key, num_envs, max_steps=setup.eval_max_steps
            )

    def init(key: jax.Array, hparams: Any) -> RunState:
        key, init_key = jax.random.split(key)
        carry = init_carry(init_key, make_agent(hparams, schedule), hparams)
        period_keys = jax.random.split(key, schedule.num_evals)
        return RunState(carry, period_keys, jnp.zeros((), jnp.int32))

    def run_periods(state: RunState, hparams: Any, num: int) -> tuple[RunState, Metrics]:
        agent = make_agent(hparams, schedule)

        def inner(carry, xs):
            it, k = xs
            carry, metrics = iteration(carry, agent, hparams, k)
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
            metrics = mean_metrics(metrics)
            env_steps = (p + 1) * schedule.iters_per_eval * schedule.steps_per_iter
            if eval_progress is not None:
                started = functools.partial(eval_progress, finished=False)
                jax.debug.callback(started, env_steps, carry.iteration)
            ret_mean, ret_std = eval_fn(agent, carry, keys[-1], setup.num_eval_envs)
            if eval_progress is not None:
                ended = functools.partial(eval_progress, finished=True)
                jax.debug.callback(ended, env_steps, ret_mean)
            metrics.update(
                {
                    "env_steps": env_steps,
                    "eval_return": ret_mean,
                    "eval_return_std": ret_std,
                    "train_return": train_return(carry),
                    "finite": tree_finite(carry.agent_state) & tree_finite(metrics),
                }
            )
            return carry, metrics

        first = state.next_period
        periods = first + jnp.arange(num, dtype=jnp.int32)
        keys = jax.lax.dynamic_slice_in_dim(state.period_keys, first, num)
        carry, metrics = jax.lax.scan(period, state.carry, (periods, keys))
        return state.replace(carry=carry, next_period=first + num), metrics

    def evaluate_carry(carry: LoopCarry, hparams: Any, key: jax.Array, num_envs: int):
        return eval_fn(make_agent(hparams, schedule), carry, key, num_envs)

    return Trainer(schedule, init, run_periods, evaluate_carry)
