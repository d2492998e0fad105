"""MBPO / MOPO-style data augmentation as an agent transform.

``with_model_rollouts(agent, model)`` returns an agent whose ``update`` first rolls the
agent's own exploring policy through ``model`` for ``horizon`` steps from the batch's
observations (``jaxrl.models.rollout``), then trains on a batch of the same size made of
``real_fraction`` real rows and synthetic rows drawn from the rollouts. ``model`` is
fixed here (e.g. an ensemble fitted to offline data, bound with ``functools.partial``);
training the model alongside is the caller's loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.core import Agent, Transition
from jaxrl.data.sampling import weighted_indices
from jaxrl.models.rollout import Model, rollout


def with_model_rollouts(
    agent: Agent, model: Model, horizon: int = 1, real_fraction: float = 0.5
) -> Agent:
    """Wraps ``agent.update`` to train on real and model-generated transitions.

    ``model(obs [B, ...], action [B, ...], key) -> (next_obs, reward[, terminated])``.
    The batch's ``extras`` pass through unchanged. Adds the metric
    ``model_reward_mean`` (mean reward of the synthetic rows). With ``real_fraction=1``
    it is the wrapped agent exactly.

    Raises:
      ValueError: for ``horizon < 1`` or ``real_fraction`` outside ``[0, 1]``.
    """
    if horizon < 1:
        raise ValueError(f"with_model_rollouts: horizon must be >= 1, got {horizon}")
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(
            f"with_model_rollouts: real_fraction must be in [0, 1], got {real_fraction}"
        )

    def update(state, batch: Transition, key: jax.Array):
        n = batch.reward.shape[0]
        n_real = round(real_fraction * n)
        if n_real == n:  # no synthetic rows: exactly the wrapped agent
            return agent.update(state, batch, key)
        roll_key, pick_key, update_key = jax.random.split(key, 3)

        def policy(obs, k):
            return agent.act(state, obs, k, explore=True)[0]

        traj = rollout(model, policy, batch.obs, horizon, roll_key)
        flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), traj)
        # The first step of every rollout is valid, so some row always is.
        idx = weighted_indices(pick_key, flat.extras["valid"], (n - n_real,))

        def mix(real, synthetic):
            return jnp.concatenate([real[:n_real], synthetic[idx].astype(real.dtype)])

        mixed = batch.replace(
            obs=mix(batch.obs, flat.obs),
            action=mix(batch.action, flat.action),
            reward=mix(batch.reward, flat.reward),
            terminated=mix(batch.terminated, flat.terminated),
            truncated=mix(batch.truncated, flat.truncated),
            next_obs=mix(batch.next_obs, flat.next_obs),
        )
        state, metrics = agent.update(state, mixed, update_key)
        return state, {**metrics, "model_reward_mean": jnp.mean(flat.reward[idx])}

    return agent._replace(update=update)
