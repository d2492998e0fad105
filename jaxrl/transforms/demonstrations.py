"""Demonstrations in replay as an agent transform (G-PAYN, Ceola et al. 2023).

``with_demonstrations(agent, demos, demo_fraction)`` returns an agent whose state also
holds a fixed set of demonstration trajectories (a ``jaxrl.data.datasets.Dataset``) and
whose ``update`` trains on batches of the same size in which a ``demo_fraction`` of the
rows are demonstration steps and the rest come from the agent's own replay: a second,
never-overwritten replay buffer that the learner starts from. G-PAYN's code samples half
of every SAC batch from the demonstration buffer and half from the agent's buffer, with
no behaviour-cloning term, from the first step (``learning_starts = 0``).

``demos`` is a ``Dataset`` or a function ``key -> Dataset`` run inside ``init`` (the
automatic collection: e.g. ``datasets.record`` of a scripted controller), so that a run
stays a function of its key and the demonstrations vmap over seeds with the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.core import Agent, Transition
from jaxrl.data.datasets import Dataset, sample


class DemoState(struct.PyTreeNode):
    """The wrapped agent's state and the demonstrations (leaves ``[T, N, ...]``)."""

    agent: Any
    demos: Dataset


def with_demonstrations(
    agent: Agent,
    demos: Dataset | Callable[[jax.Array], Dataset],
    demo_fraction: float | jax.Array = 0.5,
) -> Agent:
    """Wraps ``agent`` (any off-policy agent updating on flat ``[N, ...]`` batches) so that
    ``round(demo_fraction * N)`` rows of each batch (the last ones) are demonstration
    steps drawn uniformly from the valid steps of ``demos``; the batch's other rows and its
    ``context`` pass through. Demonstration rows get zero ``extras`` of the replay's
    shapes. Adds the metrics ``demo_fraction`` and ``demo_reward_mean``.

    ``demo_fraction`` may be a traced array (a swept hyperparameter): then ``N`` demo rows
    are drawn and a mask picks them, same batch as the static path. With a Python
    ``demo_fraction=0`` it is the wrapped agent exactly (the demos are only carried).

    Raises:
      ValueError: for a number ``demo_fraction`` outside ``[0, 1]`` or a recurrent agent.
    """
    static = isinstance(demo_fraction, int | float)
    if static and not 0.0 <= demo_fraction <= 1.0:
        raise ValueError(
            f"with_demonstrations: demo_fraction must be in [0, 1], got {demo_fraction}"
        )
    if agent.recurrent:
        raise ValueError("with_demonstrations: needs a feed-forward off-policy agent")

    def init(key: jax.Array) -> DemoState:
        agent_key, demo_key = jax.random.split(key)
        data = demos(demo_key) if callable(demos) else demos
        if not isinstance(data, Dataset):
            raise ValueError(
                f"with_demonstrations: demos must be a Dataset, got {type(data).__name__}"
            )
        return DemoState(agent=agent.init(agent_key), demos=data)

    def act(state: DemoState, obs: jax.Array, key: jax.Array, explore=True, **kwargs):
        return agent.act(state.agent, obs, key, explore, **kwargs)

    def update(state: DemoState, batch: Transition, key: jax.Array):
        n = batch.reward.shape[0]
        if static and round(demo_fraction * n) == 0:
            inner, metrics = agent.update(state.agent, batch, key)
            return state.replace(agent=inner), metrics
        demo_key, update_key = jax.random.split(key)
        if static:
            n_demo = round(demo_fraction * n)
            draw = n_demo
        else:  # traced: draw a full batch, keep the last round(fraction * n) rows
            n_demo = jnp.round(jnp.clip(demo_fraction, 0.0, 1.0) * n)
            draw = n
        demo = sample(state.demos, demo_key, draw)
        demo = demo.replace(
            extras=jax.tree.map(lambda x: jnp.zeros((draw, *x.shape[1:]), x.dtype), batch.extras)
        )

        def mix(own, d):
            d = d.astype(own.dtype)
            if static:
                return jnp.concatenate([own[: n - n_demo], d])
            take = jnp.arange(n) >= n - n_demo
            return jnp.where(take.reshape((n,) + (1,) * (own.ndim - 1)), d, own)

        fields = ("obs", "action", "reward", "terminated", "truncated", "next_obs")
        mixed = batch.replace(
            **{f: mix(getattr(batch, f), getattr(demo, f)) for f in fields},
            extras=jax.tree.map(mix, batch.extras, demo.extras),
        )
        inner, metrics = agent.update(state.agent, mixed, update_key)
        metrics = {
            **metrics,
            "demo_fraction": jnp.asarray(n_demo / n, jnp.float32),
            "demo_reward_mean": jnp.mean(demo.reward),
        }
        return state.replace(agent=inner), metrics

    return Agent(init=init, act=act, update=update)
