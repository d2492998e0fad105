"""Sequence loop (model-based agents such as Drama): real steps feed a per-env sequence
buffer; updates draw sequence batches from it through the declared sampler."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.core import Agent, Metrics, mean_metrics
from jaxrl.data.sequences import SequenceBatch, sequence_replay_add, sequence_replay_init
from jaxrl.envs import AutoReset, VmapWrapper
from jaxrl.loops.carry import first_carry, next_carry, silenced
from jaxrl.loops.data import Sequences
from jaxrl.loops.run import (
    LoopCarry,
    LoopSetup,
    Trainer,
    env_context,
    run_loop,
    zeros_like_shape,
)


def sequence_updates(
    agent: Agent,
    agent_state: Any,
    buffer: Any,
    sampler: Any,
    key: jax.Array,
    updates: int,
    context: Any = None,
) -> tuple[Any, Any, Metrics]:
    """``updates`` agent updates, each on a ``SequenceBatch`` drawn by ``sampler`` (which
    also updates the buffer's draw counters). Returns ``(agent_state, buffer, metrics
    averaged over the updates)``."""

    def one(carry, k):
        state, buffer = carry
        keys = jax.random.split(k, 3)  # the sampler's two draws, then the update's
        batch, buffer = sampler.sample(buffer, keys[:2])
        state, metrics = agent.update(state, batch.replace(context=context), keys[2])
        return (state, buffer), metrics

    keys = jax.random.split(key, updates)
    (agent_state, buffer), metrics = jax.lax.scan(one, (agent_state, buffer), keys)
    return agent_state, buffer, mean_metrics(metrics)


def sequences(data: Sequences, setup: LoopSetup) -> Trainer:
    """Each iteration steps ``num_envs`` envs ``train_every`` times (a recurrent agent's
    belief moved by ``next_carry``) and appends the steps
    (``obs, action, reward, terminated``, leaves ``[train_every, num_envs, ...]``) to a
    sequence buffer sized for the whole run. Actions are uniformly random for the first
    ``warmup_steps`` env steps; once ``first_update`` steps per env are stored, each
    iteration runs ``updates_per_iter`` updates on sampled ``SequenceBatch``es.
    """
    env, schedule = setup.env, setup.schedule
    if data.updates_per_iter <= 0:
        raise ValueError(f"updates_per_iter must be positive, got {data.updates_per_iter}")
    num_envs = data.num_envs
    train_env = AutoReset(VmapWrapper(env, num_envs))
    capacity = schedule.num_iters * data.train_every

    def init_carry(key, agent, hparams):
        agent_key, env_key = jax.random.split(key)
        env_state = train_env.reset(env_key)
        example = {
            "obs": env_state.obs,
            "action": jax.vmap(env.action_spec.sample)(jax.random.split(key, num_envs)),
            "reward": env_state.reward,
            "terminated": env_state.terminated,
        }
        buffer = sequence_replay_init(example, capacity)
        belief = first_carry(agent, num_envs)
        return LoopCarry(agent.init(agent_key), env_state, buffer, belief)

    def collect(agent, carry: LoopCarry, key):
        agent_state = carry.agent_state

        def step(state, k):
            env_state, belief, t = state
            act_key, rand_key = jax.random.split(k)
            action, info = agent.act(
                agent_state, env_state.obs, act_key, True, env_state=env_state, carry=belief
            )
            random = jax.vmap(env.action_spec.sample)(jax.random.split(rand_key, num_envs))
            warm = t * num_envs < data.warmup_steps
            action = jnp.where(warm, random, action).astype(random.dtype)
            info = silenced(info, warm)
            nxt = train_env.step(env_state, action)
            belief = next_carry(agent, agent_state, belief, env_state.obs, action, info, nxt.done)
            row = {
                "obs": env_state.obs,
                "action": action,
                "reward": nxt.reward,
                "terminated": nxt.terminated,
            }
            return (nxt, belief, t + 1), row

        keys = jax.random.split(key, data.train_every)
        start = (carry.env_state, carry.belief, carry.iteration * data.train_every)
        (env_state, belief, _), rows = jax.lax.scan(step, start, keys)
        return env_state, belief, rows

    def iteration(carry: LoopCarry, agent, hparams, key):
        collect_key, update_key = jax.random.split(key)
        env_state, belief, rows = collect(agent, carry, collect_key)
        buffer = sequence_replay_add(carry.data, rows)
        it = carry.iteration + 1
        context = env_context(env_state, it * schedule.steps_per_iter)

        def update_many():
            return sequence_updates(
                agent,
                carry.agent_state,
                buffer,
                data.sampler,
                update_key,
                data.updates_per_iter,
                context,
            )

        shape = jax.eval_shape(update_many)[2]
        agent_state, buffer, metrics = jax.lax.cond(
            buffer.size >= data.first_update,
            update_many,
            lambda: (carry.agent_state, buffer, zeros_like_shape(shape)),
        )
        return LoopCarry(agent_state, env_state, buffer, belief, it), metrics

    return run_loop(setup, init_carry, iteration)


__all__ = ["SequenceBatch", "sequence_updates", "sequences"]
