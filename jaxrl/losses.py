"""Losses shared across algorithms."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def expectile_loss(diff: jax.Array, expectile: float | jax.Array) -> jax.Array:
    """Expectile regression, ``mean(|expectile - 1(diff < 0)| diff^2)`` over ``[N] -> []``.

    ``diff = target - prediction``: with ``expectile > 0.5`` under-predictions weigh more,
    so the prediction tends to an upper expectile of the target (IQL's value, DrM's
    exploitation value).
    """
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return jnp.mean(weight * jnp.square(diff))
