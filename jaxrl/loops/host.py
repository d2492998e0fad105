"""The sequence loop for host envs (ALE through ``jaxrl.envs.atari``): Python steps the
env, every agent computation (acting, belief update, buffer writes, updates) is jitted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core import Agent
from jaxrl.data.sequences import sequence_replay_add, sequence_replay_init
from jaxrl.loops.data import Sequences
from jaxrl.loops.sequences import sequence_updates


def host_sequences(
    data: Sequences,
    agent: Agent,
    env: Any,
    key: jax.Array,
    total_steps: int,
    log: Callable[[int, float], None] | None = None,
) -> tuple[Any, list[float]]:
    """``total_steps`` steps of one host env with a recurrent ``agent`` on ``data``'s
    sequence replay (``data.num_envs`` is ignored: one env).

    ``env`` has ``reset() -> obs``, ``step(a) -> (obs, reward, terminated, truncated)``,
    ``observation_spec`` and ``action_spec`` (discrete). Observations are divided by 255
    when the spec's ``high`` is above 1 (uint8 frames). The first ``data.warmup_steps``
    actions are uniformly random; updates run every ``data.train_every`` steps once
    ``data.first_update`` steps are stored. ``log(step, episode_return)`` is called at each
    episode end. Returns the final agent state and every finished episode's return.
    """
    key, init_key = jax.random.split(key)
    state = agent.init(init_key)
    obs_shape = tuple(env.observation_spec.shape)
    example = {
        "obs": jnp.zeros((1, *obs_shape), jnp.float32),
        "action": jnp.zeros((1,), jnp.int32),
        "reward": jnp.zeros((1,), jnp.float32),
        "terminated": jnp.zeros((1,), jnp.bool_),
    }
    buffer = sequence_replay_init(example, total_steps)

    @jax.jit
    def act(state, belief, obs, key):
        action, _ = agent.act(state, obs, key, True, carry=belief)
        return action, agent.observe(state, belief, obs, action)

    observe = jax.jit(agent.observe)
    add = jax.jit(sequence_replay_add)
    updates = jax.jit(
        lambda state, buffer, key: sequence_updates(
            agent, state, buffer, data.sampler, key, data.updates_per_iter
        )
    )
    # uint8 frames (Box high 255) enter the model in [0, 1].
    scale = 255.0 if float(np.max(env.observation_spec.high)) > 1.0 else 1.0
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    obs = env.reset()
    belief = agent.initial_carry(1)
    returns, episode_return = [], 0.0
    for t in range(total_steps):
        key, act_key, update_key = jax.random.split(key, 3)
        obs_in = jnp.asarray(obs, jnp.float32)[None] / scale
        if t < data.warmup_steps:
            action = jnp.asarray([rng.integers(env.action_spec.num_actions)], jnp.int32)
            belief = observe(state, belief, obs_in, action)
        else:
            action, belief = act(state, belief, obs_in, act_key)
        next_obs, reward, terminated, truncated = env.step(int(action[0]))
        row = {
            "obs": obs_in[None],
            "action": action[None],
            "reward": jnp.asarray([[reward]], jnp.float32),
            "terminated": jnp.asarray([[terminated]]),
        }
        buffer = add(buffer, row)
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            if log is not None:
                log(t + 1, episode_return)
            obs, belief, episode_return = env.reset(), agent.initial_carry(1), 0.0
        if t + 1 >= data.first_update and (t + 1) % data.train_every == 0:
            state, buffer, _ = updates(state, buffer, update_key)
    return state, returns
