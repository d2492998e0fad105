"""Streaming loop (stream-x learners): one transition, one update, no buffer."""

from __future__ import annotations

from typing import Any

import jax

from jaxrl.core import Agent, Transition, mean_metrics
from jaxrl.envs import AutoReset, VmapWrapper
from jaxrl.loops.carry import first_carry
from jaxrl.loops.data import Stream
from jaxrl.loops.evaluate import act_step
from jaxrl.loops.on_policy import transition
from jaxrl.loops.run import LoopCarry, LoopSetup, Trainer, env_context, run_loop


def learners(agent: Agent, num_learners: int) -> Agent:
    """``num_learners`` independent copies of ``agent``; state leaves gain ``[num_learners]``.

    ``act`` takes ``obs [num_learners * k, ...]`` (and an env state and belief with the
    same leading axis) and gives each learner its own ``k`` consecutive rows (``k = 1``
    while training, ``num_eval_envs / num_learners`` in evaluation); ``update`` takes one
    transition per learner (leaves ``[num_learners, ...]``, the context shared) and
    returns metrics averaged over the learners.
    """

    def group(tree: Any) -> Any:
        # The row count is explicit (not -1): env states can hold zero-size leaves
        # (brax's empty contact arrays), which ``reshape`` cannot infer a -1 for.
        return jax.tree.map(
            lambda x: x.reshape((num_learners, x.shape[0] // num_learners, *x.shape[1:])), tree
        )

    def ungroup(x: jax.Array) -> jax.Array:
        return x.reshape((x.shape[0] * x.shape[1], *x.shape[2:]))

    def init(key: jax.Array) -> Any:
        return jax.vmap(agent.init)(jax.random.split(key, num_learners))

    def act(states, obs, key, explore=True, *, env_state=None, carry=None):
        keys = jax.random.split(key, num_learners)

        def one(s, o, k, e, c):
            return agent.act(s, o, k, explore, env_state=e, carry=c)

        out = jax.vmap(one)(states, group(obs), keys, group(env_state), group(carry))
        return jax.tree.map(ungroup, out)

    def update(states: Any, batch: Transition, key: jax.Array):
        keys = jax.random.split(key, num_learners)
        context = batch.context
        states, metrics = jax.vmap(lambda s, b, k: agent.update(s, b.replace(context=context), k))(
            states, batch.replace(context=None), keys
        )
        return states, mean_metrics(metrics)

    def observe(states, carry, obs, action, info):
        grouped = jax.vmap(agent.observe)(
            states, group(carry), group(obs), group(action), group(info)
        )
        return jax.tree.map(ungroup, grouped)

    if agent.recurrent:
        return Agent(init, act, update, agent.initial_carry, observe)
    return Agent(init=init, act=act, update=update)


def streaming(data: Stream, setup: LoopSetup) -> Trainer:
    """``num_envs`` independent learners, each with its own auto-resetting env and agent
    state. Each iteration every learner acts once on its obs (``agent.act`` sees
    ``[1, *obs_shape]``), its env steps once, and it calls ``agent.update`` on that single
    transition (unbatched leaves, ``extras`` from ``act``). Evaluation gives each learner
    ``num_eval_envs / num_envs`` of the episodes. ``total_steps`` counts env steps over
    all learners.
    """
    env, num_eval_envs = setup.env, setup.num_eval_envs
    num_envs = data.num_envs
    if num_envs <= 0:
        raise ValueError(f"num_envs must be positive, got {num_envs}")
    if num_eval_envs % num_envs:
        raise ValueError(
            f"num_eval_envs={num_eval_envs} must be a multiple of num_envs={num_envs} "
            "(each learner evaluates the same number of episodes)"
        )
    train_env = AutoReset(VmapWrapper(env, num_envs))

    def make_learners(hparams, sched):
        return learners(setup.make_agent(hparams, sched), num_envs)

    def init_carry(key, agent, hparams):
        agent_key, env_key = jax.random.split(key)
        belief = first_carry(agent, num_envs)
        return LoopCarry(agent.init(agent_key), train_env.reset(env_key), belief=belief)

    def iteration(carry: LoopCarry, agent, hparams, key):
        act_key, update_key = jax.random.split(key)
        action, info, nxt, belief = act_step(
            agent,
            carry.agent_state,
            train_env,
            carry.env_state,
            carry.belief,
            act_key,
            explore=True,
        )
        it = carry.iteration + 1
        batch = transition(carry.env_state, action, nxt, info)
        batch = batch.replace(context=env_context(nxt, it * num_envs))
        agent_state, metrics = agent.update(carry.agent_state, batch, update_key)
        return LoopCarry(agent_state, nxt, None, belief, it), metrics

    return run_loop(setup._replace(make_agent=make_learners), init_carry, iteration)
