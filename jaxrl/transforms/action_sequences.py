"""Decision-interval execution: an agent that decides every ``J`` env steps.

``with_action_sequences(agent, J, action_spec)`` turns a feed-forward continuous-action
agent into one that is queried only every ``J`` env steps and plays a sequence of ``J``
primitive actions open loop in between (SRL, Patel & Siegelmann 2024). A sequence
policy names its sequence ``[B, L, act]`` in ``act``'s info under ``SEQUENCE_KEY``: the
first ``J`` actions are played (the last one is held when ``L < J``). A single-action
policy's action is held for ``J`` steps (action repeat).

The transformed agent is recurrent in the library's one carry protocol: its carry is the
plan and the position in it (``SequenceCarry``); ``act`` reads it and returns the plan in
its info, ``observe`` (run by every loop through ``jaxrl.loops.next_carry``) keeps the
plan and advances the position, and the loops restart it at episode ends, so every
episode starts with a decision and truncation is untouched. Where a loop plays an action
of its own (a warm-up), ``observe`` sees zeros for the info and the next step decides
afresh, in every loop alike.

The transform is data: its ``act`` is an ``ActionSequences`` record holding the inner
policy and the interval, so transforming an agent this transform made (or a wrapper of
one that keeps its ``act``) re-times the inner policy (SRL trains at interval ``J`` and
is evaluated at every ``k``). The evaluation at decision interval ``k``
(``evaluate_intervals``) is the one evaluation routine (``jaxrl.loops.evaluate``) run on
this transformed agent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.core import Agent
from jaxrl.envs import Env, Spec
from jaxrl.loops.evaluate import evaluate

#: The ``act`` info key under which a sequence policy returns its plan ``[B, L, act]``.
SEQUENCE_KEY = "action_sequence"
#: The transformed agent's ``act`` info holds True ``[B]`` here; the zeros a loop hands to
#: ``observe`` for an action of its own read False.
PLAYED_KEY = "sequence_played"


class SequenceCarry(struct.PyTreeNode):
    """Per-env state of an agent acting every ``J`` steps.

    Attributes:
      plan: ``[B, J, act]`` the actions of the current decision.
      index: ``[B]`` int32, the position in ``plan`` of the next action; 0 = decide.
    """

    plan: jax.Array
    index: jax.Array


def fit_sequence(seq: jax.Array, length: int) -> jax.Array:
    """``seq [B, L, act]`` cut to ``length`` actions, or padded by holding its last one."""
    have = seq.shape[1]
    if have >= length:
        return seq[:, :length]
    pad = jnp.repeat(seq[:, -1:], length - have, axis=1)
    return jnp.concatenate([seq, pad], axis=1)


@dataclasses.dataclass(frozen=True)
class ActionSequences:
    """The ``act`` of an agent deciding every ``interval`` env steps, as data.

    Called like any ``act``; its ``initial_carry`` and ``observe`` are the agent's carry
    functions.

    Attributes:
      policy: the inner feed-forward agent whose ``act`` decides.
      interval: J, env steps per decision.
      act_shape: the shape of one primitive action.
    """

    policy: Agent
    interval: int
    act_shape: tuple[int, ...]

    def initial_carry(self, batch_size: int) -> SequenceCarry:
        """An empty plan at position 0: the first step decides."""
        plan = jnp.zeros((batch_size, self.interval, *self.act_shape), jnp.float32)
        return SequenceCarry(plan, jnp.zeros((batch_size,), jnp.int32))

    def __call__(
        self,
        state: Any,
        obs: jax.Array,
        key: jax.Array,
        explore: bool = True,
        *,
        env_state: Any = None,
        carry: SequenceCarry | None = None,
    ) -> tuple[jax.Array, dict]:
        """``obs [B, ...] -> (action [B, act], info)``: the plan's action at ``carry.index``,
        the policy asked for a new plan where the index is 0. ``info`` holds the plan
        ``[B, J, act]`` (``SEQUENCE_KEY``) and ``PLAYED_KEY``."""
        if carry is None:
            carry = self.initial_carry(obs.shape[0])

        def decide():
            action, info = self.policy.act(state, obs, key, explore, env_state=env_state)
            seq = info.get(SEQUENCE_KEY, action[:, None])
            return fit_sequence(seq.astype(jnp.float32), self.interval)

        decide_now = carry.index == 0
        # Every env of a batch usually decides at the same step: then the policy is only
        # queried at decision points (a planner's cost falls by ``interval``).
        fresh = jax.lax.cond(jnp.any(decide_now), decide, lambda: carry.plan)
        plan = jnp.where(decide_now[:, None, None], fresh, carry.plan)
        action = plan[jnp.arange(plan.shape[0]), carry.index]
        played = jnp.ones(decide_now.shape, jnp.bool_)
        return action, {SEQUENCE_KEY: plan, PLAYED_KEY: played}

    def observe(
        self, state: Any, carry: SequenceCarry, obs: jax.Array, action: jax.Array, info: dict
    ) -> SequenceCarry:
        """The plan ``act`` returned, one position on (0 after ``J`` actions, or where the
        loop played an action of its own: ``info[PLAYED_KEY]`` False)."""
        del state, obs, action
        step = (carry.index + 1) % self.interval
        return SequenceCarry(info[SEQUENCE_KEY], jnp.where(info[PLAYED_KEY], step, 0))


def sequence_policy(agent: Agent) -> Agent:
    """``agent`` itself, or the feed-forward agent inside it if ``with_action_sequences``
    made it (found in its ``act``, so a wrapper that keeps ``act`` keeps it), with the
    outer ``init`` and ``update``."""
    if isinstance(agent.act, ActionSequences):
        return agent._replace(act=agent.act.policy.act, initial_carry=None, observe=None)
    return agent


def with_action_sequences(agent: Agent, interval: int, action_spec: Spec) -> Agent:
    """``agent`` deciding every ``interval`` env steps (see the module docstring); an agent
    this transform made is re-timed (``sequence_policy``).

    Raises:
      ValueError: for a non-positive or non-integer ``interval``, a discrete action spec
        or an agent that is (otherwise) recurrent.
    """
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f"decision interval must be a positive int, got {interval!r}")
    if action_spec.discrete:
        raise ValueError("with_action_sequences needs a continuous (Box) action spec")
    agent = sequence_policy(agent)
    if agent.recurrent:
        raise ValueError("with_action_sequences needs a feed-forward agent (no carry)")
    act = ActionSequences(agent, interval, tuple(action_spec.shape))
    return agent._replace(act=act, initial_carry=act.initial_carry, observe=act.observe)


def evaluate_intervals(
    agent: Agent,
    agent_state: Any,
    env: Env,
    key: jax.Array,
    num_envs: int,
    intervals: tuple[int, ...],
) -> jax.Array:
    """``[len(intervals)]`` mean deterministic returns of ``agent`` deciding every ``k``
    steps for each ``k`` in ``intervals`` (the same ``key`` for each, so the intervals
    see the same initial states). A feed-forward continuous-action agent's sequence
    (``info[SEQUENCE_KEY]``) is played, a single action held; an agent this transform
    made (SRL acting every ``J`` steps) is re-timed to ``k``."""

    def at(k: int) -> jax.Array:
        timed = with_action_sequences(agent, k, env.action_spec)
        return evaluate(timed, agent_state, env, key, num_envs)[0]

    return jnp.stack([at(k) for k in intervals])
