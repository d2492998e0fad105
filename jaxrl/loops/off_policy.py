"""Replay loop (SAC and friends): a replay buffer lives in the loop carry."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.core import Transition, mean_metrics
from jaxrl.data.replay import (
    replay_add,
    replay_init,
    replay_sample,
    replay_sample_sequences,
)
from jaxrl.envs import AutoReset, VmapWrapper
from jaxrl.loops.carry import first_carry, next_carry, silent_info
from jaxrl.loops.data import Replay
from jaxrl.loops.on_policy import transition
from jaxrl.loops.run import (
    LoopCarry,
    LoopSetup,
    Trainer,
    env_context,
    run_loop,
    zeros_like_shape,
)


def off_policy(data: Replay, setup: LoopSetup) -> Trainer:
    """Each iteration steps ``num_envs`` envs once and stores the ``[num_envs]`` transitions
    (with the declared ``extras`` of ``act``'s info); once ``warmup_steps`` env steps are
    stored (taken with uniformly random actions, zero extras) it runs
    ``updates_per_iter`` updates on flat batches ``[batch_size, ...]``.
    Update-to-data ratio = ``updates_per_iter / num_envs``. With ``sequence_len = n > 1``
    batches are runs of ``n`` consecutive steps of one env, ``[n, batch_size, ...]`` (the
    buffer's capacity is then a whole number of ``num_envs`` rows, and updates wait for
    ``n`` stored rows). A recurrent agent's carry moves by ``next_carry`` each step; a
    warm-up step's ``observe`` sees the random action and ``silent_info`` (the agent is
    not asked).
    """
    env, schedule = setup.env, setup.schedule
    if data.updates_per_iter <= 0:
        raise ValueError(f"updates_per_iter must be positive, got {data.updates_per_iter}")
    if data.sequence_len < 1:
        raise ValueError(f"sequence_len must be >= 1, got {data.sequence_len}")
    num_envs, seq_len = data.num_envs, data.sequence_len
    capacity = min(data.buffer_size, schedule.total_steps)
    if seq_len > 1:  # whole rows of num_envs, so that an env's steps sit num_envs apart
        capacity = max(capacity // num_envs, seq_len) * num_envs
    train_env = AutoReset(VmapWrapper(env, num_envs))
    warmup_iters = -(-data.warmup_steps // num_envs)
    first_update = warmup_iters if seq_len == 1 else max(warmup_iters, seq_len)

    def kept(info: dict) -> dict:
        missing = [k for k in data.extras if k not in info]
        if missing:
            raise ValueError(
                f"replay keeps act-time extras {missing}, which act's info does not have "
                f"(it has: {sorted(info)})"
            )
        return {k: info[k] for k in data.extras}

    def init_carry(key, agent, hparams):
        agent_key, env_key = jax.random.split(key)
        agent_state = agent.init(agent_key)
        env_state = train_env.reset(env_key)
        belief = first_carry(agent, num_envs)
        info = silent_info(agent, agent_state, env_state.obs, belief, env_state)
        example = Transition(
            obs=env_state.obs[0],
            action=env.action_spec.sample(jax.random.PRNGKey(0)),
            reward=env_state.reward[0],
            terminated=env_state.terminated[0],
            truncated=env_state.truncated[0],
            next_obs=env_state.obs[0],
            extras={k: jnp.zeros(x.shape[1:], x.dtype) for k, x in kept(info).items()},
        )
        buffer = replay_init(example, capacity)
        return LoopCarry(agent_state, env_state, buffer, belief)

    def update_many(agent, agent_state, buffer, key, context):
        def one(state, keys):  # keys [2]: sample key, update key
            if seq_len == 1:
                batch = replay_sample(buffer, keys[0], data.batch_size)
            else:
                batch = replay_sample_sequences(buffer, keys[0], data.batch_size, seq_len, num_envs)
            batch = batch.replace(context=context)
            return agent.update(state, batch, keys[1])

        keys = jax.random.split(key, (data.updates_per_iter, 2))  # one PRNG call for all
        if data.updates_per_iter == 1:
            return one(agent_state, keys[0])
        state, metrics = jax.lax.scan(one, agent_state, keys)
        return state, mean_metrics(metrics)

    def iteration(carry: LoopCarry, agent, hparams, key):
        agent_state, env_state, it = carry.agent_state, carry.env_state, carry.iteration
        act_key, update_key = jax.random.split(key)

        belief = carry.belief

        def policy_action():
            return agent.act(
                agent_state, env_state.obs, act_key, True, env_state=env_state, carry=belief
            )

        def random_action():
            keys = jax.random.split(act_key, num_envs)
            action = jax.vmap(env.action_spec.sample)(keys)
            dtype = jax.eval_shape(policy_action)[0].dtype
            info = silent_info(agent, agent_state, env_state.obs, belief, env_state)
            return action.astype(dtype), info

        # A cond, not a select: only one of the two is computed each step.
        action, info = jax.lax.cond(it < warmup_iters, random_action, policy_action)
        nxt = train_env.step(env_state, action)
        belief = next_carry(agent, agent_state, belief, env_state.obs, action, info, nxt.done)
        buffer = replay_add(carry.data, transition(env_state, action, nxt, kept(info)))
        context = env_context(nxt, (it + 1) * num_envs)
        metrics_shape = jax.eval_shape(
            lambda: update_many(agent, agent_state, buffer, update_key, context)[1]
        )
        agent_state, metrics = jax.lax.cond(
            it + 1 >= first_update,
            lambda: update_many(agent, agent_state, buffer, update_key, context),
            lambda: (agent_state, zeros_like_shape(metrics_shape)),
        )
        return LoopCarry(agent_state, nxt, buffer, belief, it + 1), metrics

    return run_loop(setup, init_carry, iteration)
