"""The one evaluation routine: deterministic episodes in a batch of envs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core import Agent
from jaxrl.envs import Env, EnvState, VmapWrapper
from jaxrl.loops.carry import first_carry, next_carry

#: The default cap on an evaluation episode's length in the loops (``eval_max_steps``):
#: the longest classic-control (500), Brax and Playground (1000) and MinAtar (1000) limits,
#: so their evaluations run whole episodes, while a long-episode env (Craftax: 10,000
#: steps) does not spend a run evaluating.
EVAL_MAX_STEPS = 1000


class Conditioning(NamedTuple):
    """An evaluation hook for policies conditioned on a per-env quantity ``c [B]``
    that the loop, not the agent, tracks (RCSL's return-to-go).

    ``init(num_envs) -> c``; the agent acts on ``obs(obs, c)``; after each step
    ``c <- step(c, reward)`` (rewards of finished episodes are zeroed first).
    """

    init: Callable[[int], Any]
    obs: Callable[[jax.Array, Any], jax.Array]
    step: Callable[[Any, jax.Array], Any]


def act_step(
    agent: Agent,
    agent_state: Any,
    env: Env,
    env_state: EnvState,
    belief: Any,
    key: jax.Array,
    *,
    explore: bool,
    obs: jax.Array | None = None,
) -> tuple[jax.Array, dict, EnvState, Any]:
    """The agent acts in ``env_state`` (batched), the env steps: ``(action, info, next, belief)``.

    ``obs`` replaces ``env_state.obs`` as the policy input when given. A recurrent agent's
    ``belief`` moves by ``next_carry`` (it observes the step and restarts where an episode
    ended); for a feed-forward agent it stays ``None``.
    """
    x = env_state.obs if obs is None else obs
    action, info = agent.act(agent_state, x, key, explore, env_state=env_state, carry=belief)
    nxt = env.step(env_state, action)
    belief = next_carry(agent, agent_state, belief, x, action, info, nxt.done)
    return action, info, nxt, belief


def episode_limit(env: Env, max_steps: int | None = None) -> int:
    """The steps an evaluation episode in ``env`` may last: the env's episode limit
    (``max_episode_steps``), capped at ``max_steps`` when given.

    Raises:
      ValueError: when the env has no episode limit, or ``max_steps`` is not positive.
    """
    horizon = env.max_episode_steps
    if horizon is None:
        raise ValueError("evaluation needs an env with an episode limit (max_episode_steps)")
    if max_steps is None:
        return int(horizon)
    if max_steps <= 0:
        raise ValueError(f"eval_max_steps must be positive, got {max_steps}")
    return int(min(horizon, max_steps))


def evaluate(
    agent: Agent,
    agent_state: Any,
    env: Env,
    key: jax.Array,
    num_envs: int,
    conditioning: Conditioning | None = None,
    max_steps: int | None = None,
    explore: bool | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Deterministic return of one episode in each of ``num_envs`` envs (actions sampled
    instead for an env with ``eval_explore``, Atari, or with ``explore=True``;
    ``explore=False`` takes the policy's mode even there).

    ``env`` must carry an episode limit (``max_episode_steps``); ``max_steps`` caps the
    episodes at fewer steps (``episode_limit``): an episode still running then counts the
    return of its first ``max_steps`` steps. The evaluation stops as soon as every episode
    has ended (a ``lax.while_loop`` over keys split up front, so the result equals running
    all ``episode_limit`` steps). Recurrent agents carry their belief through each
    episode; ``conditioning`` feeds a loop-tracked input.
    (To evaluate at a decision interval, evaluate the agent
    ``jaxrl.transforms.with_action_sequences`` makes: ``action_sequences.evaluate_intervals``.)
    Returns ``(mean, std)`` over the episodes, float32 scalars.
    """
    horizon = episode_limit(env, max_steps)
    eval_env = VmapWrapper(env, num_envs)
    if explore is None:
        explore = bool(getattr(env, "eval_explore", False))
    # One PRNG call for every key of the evaluation: num_envs resets, then horizon steps.
    keys = jax.random.split(key, num_envs + horizon)
    step_keys = keys[num_envs:]
    state = eval_env.reset_each(keys[:num_envs])
    belief = first_carry(agent, num_envs)
    cond = conditioning.init(num_envs) if conditioning is not None else None

    def running(carry):
        t, *_, alive = carry
        return (t < horizon) & jnp.any(alive)

    def body(carry):
        t, state, belief, cond, total, alive = carry
        k = jax.lax.dynamic_index_in_dim(step_keys, t, keepdims=False)
        obs = None if conditioning is None else conditioning.obs(state.obs, cond)
        _, _, state, belief = act_step(
            agent, agent_state, eval_env, state, belief, k, explore=explore, obs=obs
        )
        reward = jnp.where(alive, state.reward, 0.0)
        if conditioning is not None:
            cond = conditioning.step(cond, reward)
        return t + 1, state, belief, cond, total + reward, alive & ~state.done

    t0 = jnp.zeros((), jnp.int32)
    init = (t0, state, belief, cond, jnp.zeros(num_envs), jnp.ones(num_envs, jnp.bool_))
    *_, returns, _ = jax.lax.while_loop(running, body, init)
    return jnp.mean(returns), jnp.std(returns)
