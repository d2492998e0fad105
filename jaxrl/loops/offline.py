"""Offline loop: learn from a fixed dataset only, evaluate in the real env."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.core import LoopContext
from jaxrl.loops.data import Dataset
from jaxrl.loops.evaluate import evaluate
from jaxrl.loops.run import LoopCarry, LoopSetup, Trainer, run_loop


def offline(data: Dataset, setup: LoopSetup) -> Trainer:
    """``data.prepare(key, hparams)`` builds the training data once, inside ``init``; each
    iteration is one gradient step, ``agent.update(state, data.sample(store, key), key)``.
    ``total_steps`` and the metrics' ``env_steps`` count gradient steps, not env steps.
    The batch's context reports ``data.data_return`` as the training return.
    """

    def data_return(store: Any) -> jax.Array:
        if data.data_return is None:
            return jnp.zeros((), jnp.float32)
        return data.data_return(store)

    def init_carry(key, agent, hparams):
        agent_key, data_key = jax.random.split(key)
        return LoopCarry(agent.init(agent_key), data=data.prepare(data_key, hparams))

    def iteration(carry: LoopCarry, agent, hparams, key):
        sample_key, update_key = jax.random.split(key)
        it = carry.iteration + 1
        context = LoopContext(it, data_return(carry.data), jnp.asarray(True))
        batch = data.sample(carry.data, sample_key).replace(context=context)
        agent_state, metrics = agent.update(carry.agent_state, batch, update_key)
        if data.data_metrics is not None:
            metrics = {**metrics, **data.data_metrics(carry.data)}
        return carry.replace(agent_state=agent_state, iteration=it), metrics

    def eval_fn(agent, carry, key, num_envs):
        conditioning = None if data.conditioning is None else data.conditioning(carry.data)
        state = carry.agent_state
        return evaluate(agent, state, setup.env, key, num_envs, conditioning, setup.eval_max_steps)

    return run_loop(
        setup,
        init_carry,
        iteration,
        eval_fn=eval_fn,
        train_return=lambda carry: data_return(carry.data),
    )
