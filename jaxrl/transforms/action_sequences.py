"""Decision-interval execution: an agent that decides every ``J`` env steps.

``with_action_sequences(agent, J, action_spec)`` turns a feed-forward continuous-action
agent into one that is queried only every ``J`` env steps and plays a sequence of ``J``
primitive actions open loop in between (SRL, Patel & Siegelmann 2024). A sequence
policy names its sequence ``[B, L, act]`` in ``act``'s info under ``SEQUENCE_KEY``: the
first ``J`` actions are played (the last one is held when ``L < J``). A single-action
policy's action is held for ``J`` steps (action repeat). The plan and the position in
it are the transformed agent's per-env carry (a recurrent agent in the library's
protocol), which ``act`` returns updated under ``info["carry"]``; the loops reset it at
episode ends, so every episode starts with a decision and truncation is untouched.
Transforming an agent this transform made re-times its inner policy (SRL trains at
interval ``J`` and is evaluated at every ``k``).

The evaluation at decision interval ``k`` (``evaluate_intervals``) is the one evaluation
routine (``jaxrl.loops.evaluate``) run on this transformed agent.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.core import Agent
from jaxrl.envs import Env, Spec
from jaxrl.loops.evaluate import CARRY_KEY, evaluate

#: The ``act`` info key under which a sequence policy returns its plan ``[B, L, act]``.
SEQUENCE_KEY = "action_sequence"


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


def with_action_sequences(agent: Agent, interval: int, action_spec: Spec) -> Agent:
    """``agent`` deciding every ``interval`` env steps (see the module docstring).

    Raises:
      ValueError: for a non-positive or non-integer ``interval``, a discrete action spec
        or an agent that is already recurrent.
    """
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f"decision interval must be a positive int, got {interval!r}")
    if action_spec.discrete:
        raise ValueError("with_action_sequences needs a continuous (Box) action spec")
    # An agent this transform already made is re-timed: its inner policy decides anew.
    agent = getattr(agent.act, "sequence_policy", agent)
    if agent.recurrent:
        raise ValueError("with_action_sequences needs a feed-forward agent (no carry)")
    act_shape = tuple(action_spec.shape)

    def initial_carry(batch_size: int) -> SequenceCarry:
        plan = jnp.zeros((batch_size, interval, *act_shape), jnp.float32)
        return SequenceCarry(plan, jnp.zeros((batch_size,), jnp.int32))

    def act(state, obs, key, explore=True, *, env_state=None, carry=None):
        if carry is None:
            carry = initial_carry(obs.shape[0])

        def decide():
            action, info = agent.act(state, obs, key, explore, env_state=env_state)
            seq = info.get(SEQUENCE_KEY, action[:, None])
            return fit_sequence(seq.astype(jnp.float32), interval)

        decide_now = carry.index == 0
        # Every env of a batch usually decides at the same step: then the policy is only
        # queried at decision points (a planner's cost falls by ``interval``).
        fresh = jax.lax.cond(jnp.any(decide_now), decide, lambda: carry.plan)
        plan = jnp.where(decide_now[:, None, None], fresh, carry.plan)
        action = plan[jnp.arange(plan.shape[0]), carry.index]
        nxt = SequenceCarry(plan, (carry.index + 1) % interval)
        return action, {SEQUENCE_KEY: plan, CARRY_KEY: nxt}

    def observe(state, carry, obs, action):
        del state, obs, action
        return carry  # ``act`` returned the next carry already

    act.sequence_policy = agent
    return Agent(agent.init, act, agent.update, initial_carry, observe)


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
