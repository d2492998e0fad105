"""The one carry channel, as every loop uses it.

A recurrent agent's carry (``Agent.initial_carry`` / ``Agent.observe``) moves one way
only: after each env step the loop calls ``next_carry``, which runs ``observe`` on the
step (the obs the action was taken in, the action played and ``act``'s info) and
restarts the rows whose episode ended. For a feed-forward agent every helper returns
``None``, so a loop's code is the same for both.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.core import Agent, Carry


def reset_where(done: jax.Array, fresh: Any, carry: Any) -> Any:
    """``carry`` with the rows of finished envs (``done [B]``) replaced by ``fresh``."""

    def pick(f, c):
        return jnp.where(done.reshape((-1,) + (1,) * (c.ndim - 1)), f, c)

    return jax.tree.map(pick, fresh, carry)


def first_carry(agent: Agent, batch_size: int) -> Carry:
    """The carry of ``batch_size`` envs at an episode start (``None``: feed-forward)."""
    return agent.initial_carry(batch_size) if agent.recurrent else None


def next_carry(
    agent: Agent,
    agent_state: Any,
    carry: Carry,
    obs: jax.Array,
    action: jax.Array,
    info: dict,
    done: jax.Array | None = None,
) -> Carry:
    """The carry after one step of ``[B]`` envs: ``observe(state, carry, obs, action, info)``,
    then the rows where ``done [B]`` restarted from ``initial_carry`` (``done=None``: a
    loop that starts each episode with ``first_carry`` itself). ``None`` for a
    feed-forward agent.

    ``info`` is what ``act`` returned for the action played, or zeros of that structure
    where the loop played an action of its own (a warm-up's random action: ``silent_info``
    when the agent was not asked, ``silenced`` when its answer was overridden).
    """
    if not agent.recurrent:
        return None
    carry = agent.observe(agent_state, carry, obs, action, info)
    if done is not None:
        carry = reset_where(done, agent.initial_carry(action.shape[0]), carry)
    return carry


def silent_info(
    agent: Agent, agent_state: Any, obs: jax.Array, carry: Carry, env_state: Any = None
) -> dict:
    """Zeros shaped like ``act``'s info on ``obs [B, ...]``: the info ``observe`` sees for an
    action the loop chose itself. Nothing is computed (the shapes come from tracing)."""
    shapes = jax.eval_shape(
        lambda: agent.act(
            agent_state, obs, jax.random.PRNGKey(0), True, env_state=env_state, carry=carry
        )[1]
    )
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def silenced(info: dict, loop_chose: jax.Array) -> dict:
    """``info`` as zeros where ``loop_chose`` (a bool scalar: the loop played an action of
    its own instead of the agent's), so that ``observe`` sees what ``silent_info`` gives."""
    return jax.tree.map(lambda x: jnp.where(loop_chose, jnp.zeros_like(x), x), info)
