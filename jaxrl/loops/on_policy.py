"""Rollout-then-update loop (PPO and friends)."""

from __future__ import annotations

import jax

from jaxrl.core import Transition
from jaxrl.envs import AutoReset, EnvState, VmapWrapper
from jaxrl.loops.carry import first_carry
from jaxrl.loops.data import Rollout
from jaxrl.loops.evaluate import act_step
from jaxrl.loops.run import LoopCarry, LoopSetup, Trainer, env_context, run_loop


def transition(state: EnvState, action: jax.Array, nxt: EnvState, extras: dict) -> Transition:
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


def on_policy(data: Rollout, setup: LoopSetup) -> Trainer:
    """Each iteration collects ``rollout_len`` steps from ``num_envs`` auto-resetting envs
    into a ``Transition`` of leaves ``[rollout_len, num_envs, ...]`` (``extras`` from
    ``agent.act``) and calls ``agent.update`` once on it."""
    env, schedule = setup.env, setup.schedule
    train_env = AutoReset(VmapWrapper(env, data.num_envs))

    def init_carry(key, agent, hparams):
        agent_key, env_key = jax.random.split(key)
        belief = first_carry(agent, data.num_envs)
        return LoopCarry(agent.init(agent_key), train_env.reset(env_key), belief=belief)

    def iteration(carry: LoopCarry, agent, hparams, key):
        agent_state = carry.agent_state
        keys = jax.random.split(key, data.rollout_len + 1)  # one per step, then the update's

        def step(state, k):
            env_state, belief = state
            action, info, nxt, belief = act_step(
                agent, agent_state, train_env, env_state, belief, k, explore=True
            )
            return (nxt, belief), transition(env_state, action, nxt, info)

        (env_state, belief), batch = jax.lax.scan(step, (carry.env_state, carry.belief), keys[:-1])
        it = carry.iteration + 1
        batch = batch.replace(context=env_context(env_state, it * schedule.steps_per_iter))
        agent_state, metrics = agent.update(agent_state, batch, keys[-1])
        return LoopCarry(agent_state, env_state, None, belief, it), metrics

    return run_loop(setup, init_carry, iteration)
