"""Model rollouts as a pure transform: ``rollout(model, policy, start_obs, horizon, key)``.

Any agent can use it: MBRCSL rolls a learned ensemble forward under its behaviour policy;
MBPO / MOPO-style agents would roll short horizons from replay states to augment SAC's
data. ``start_obs`` may hold thousands of states: one call rolls them all out together.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from jaxrl.core import Transition
from jaxrl.data.datasets import Dataset, make_dataset

#: ``model(obs [B, ...], action [B, ...], key) -> (next_obs, reward[, terminated])``
Model = Callable[..., tuple]
#: ``policy(obs [B, ...], key) -> action [B, ...]``
Policy = Callable[[jax.Array, jax.Array], jax.Array]


def rollout(
    model: Model, policy: Policy, start_obs: jax.Array, horizon: int, key: jax.Array
) -> Transition:
    """Rolls ``policy`` through ``model`` for ``horizon`` steps from each start state.

    Returns a time-major ``Transition`` with leaves ``[horizon, B, ...]``. Once a row
    terminates (a model returning a third output), its later steps are marked
    ``extras["valid"] = False`` (it keeps being stepped so shapes stay fixed).
    Pure, jittable and vmappable.
    """
    chex.assert_rank(start_obs, 2)
    b = start_obs.shape[0]

    def body(carry, k):
        obs, alive = carry
        act_key, model_key = jax.random.split(k)
        action = policy(obs, act_key)
        out = model(obs, action, model_key)
        next_obs, reward = out[0], out[1]
        terminated = out[2] if len(out) > 2 else jnp.zeros((b,), jnp.bool_)
        step = Transition(
            obs=obs,
            action=action,
            reward=reward.astype(jnp.float32),
            terminated=terminated,
            truncated=jnp.zeros((b,), jnp.bool_),
            next_obs=next_obs,
            extras={"valid": alive},
        )
        return (next_obs, alive & ~terminated), step

    init = (start_obs, jnp.ones((b,), jnp.bool_))
    _, traj = jax.lax.scan(body, init, jax.random.split(key, horizon))
    return traj


def to_dataset(traj: Transition) -> Dataset:
    """A rollout as a ``Dataset`` (the last step marked as a timeout)."""
    valid = traj.extras.get("valid", jnp.ones_like(traj.reward, jnp.bool_))
    last = jnp.arange(traj.reward.shape[0])[:, None] == traj.reward.shape[0] - 1
    return make_dataset(
        traj.obs,
        traj.action,
        traj.reward,
        traj.terminated,
        last & ~traj.terminated,
        traj.next_obs,
        valid,
    )
