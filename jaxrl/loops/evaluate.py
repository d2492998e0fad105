"""The one evaluation routine: deterministic episodes in a batch of envs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core import Agent
from jaxrl.envs import Env, EnvState, VmapWrapper

#: A recurrent agent may return its next carry in ``act``'s info under this key (the
#: loops then skip ``observe``): ``with_action_sequences`` does, for its plan.
CARRY_KEY = "carry"


class Conditioning(NamedTuple):
    """An evaluation hook for policies conditioned on a per-env quantity ``c [B]``
    that the loop, not the agent, tracks (RCSL's return-to-go).

    ``init(num_envs) -> c``; the agent acts on ``obs(obs, c)``; after each step
    ``c <- step(c, reward)`` (rewards of finished episodes are zeroed first).
    """

    init: Callable[[int], Any]
    obs: Callable[[jax.Array, Any], jax.Array]
    step: Callable[[Any, jax.Array], Any]


def reset_where(done: jax.Array, fresh: Any, carry: Any) -> Any:
    """``carry`` with the rows of finished envs (``done [B]``) replaced by ``fresh``."""

    def pick(f, c):
        return jnp.where(done.reshape((-1,) + (1,) * (c.ndim - 1)), f, c)

    return jax.tree.map(pick, fresh, carry)


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
    ``belief`` observes the step and restarts where an episode ended; for a feed-forward
    agent it stays ``None``. An agent whose ``act`` returns ``info[CARRY_KEY]`` gives its
    next belief that way instead of through ``observe``.
    """
    x = env_state.obs if obs is None else obs
    action, info = agent.act(agent_state, x, key, explore, env_state=env_state, carry=belief)
    nxt = env.step(env_state, action)
    if agent.recurrent:
        if CARRY_KEY in info:
            info = dict(info)
            belief = info.pop(CARRY_KEY)
        else:
            belief = agent.observe(agent_state, belief, x, action)
        belief = reset_where(nxt.done, agent.initial_carry(action.shape[0]), belief)
    return action, info, nxt, belief


def evaluate(
    agent: Agent,
    agent_state: Any,
    env: Env,
    key: jax.Array,
    num_envs: int,
    conditioning: Conditioning | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Deterministic return of one episode in each of ``num_envs`` envs (actions sampled
    instead for an env with ``eval_explore``, Atari).

    ``env`` must carry an episode limit (``max_episode_steps``). Recurrent agents carry
    their belief through each episode; ``conditioning`` feeds a loop-tracked input.
    (To evaluate at a decision interval, evaluate the agent
    ``jaxrl.transforms.with_action_sequences`` makes: ``action_sequences.evaluate_intervals``.)
    Stops as soon as every episode has ended (at most ``max_episode_steps`` steps).
    Returns ``(mean, std)`` over the episodes, float32 scalars.
    """
    horizon = env.max_episode_steps
    if horizon is None:
        raise ValueError("evaluation needs an env with an episode limit (max_episode_steps)")
    eval_env = VmapWrapper(env, num_envs)
    explore = bool(getattr(env, "eval_explore", False))
    # One PRNG call for every key of the evaluation: num_envs resets, then horizon steps.
    keys = jax.random.split(key, num_envs + horizon)
    state = eval_env.reset_each(keys[:num_envs])
    belief = agent.initial_carry(num_envs) if agent.recurrent else None
    cond = conditioning.init(num_envs) if conditioning is not None else None

    def body(carry):
        t, state, belief, cond, total, alive = carry
        obs = None if conditioning is None else conditioning.obs(state.obs, cond)
        k = keys[num_envs + t]
        _, _, state, belief = act_step(
            agent, agent_state, eval_env, state, belief, k, explore=explore, obs=obs
        )
        reward = jnp.where(alive, state.reward, 0.0)
        if conditioning is not None:
            cond = conditioning.step(cond, reward)
        return (t + 1, state, belief, cond, total + reward, alive & ~state.done)

    def running(carry) -> jax.Array:
        return (carry[0] < horizon) & jnp.any(carry[-1])

    # Stops once every episode has ended (an Atari horizon is 27k steps).
    t0 = jnp.zeros((), jnp.int32)
    init = (t0, state, belief, cond, jnp.zeros(num_envs), jnp.ones(num_envs, jnp.bool_))
    *_, returns, _ = jax.lax.while_loop(running, body, init)
    return jnp.mean(returns), jnp.std(returns)
