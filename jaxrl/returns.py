"""Advantage and return estimators over time-major ``[T, B]`` arrays.

Every estimator takes the value of the observation each step *reached*
(``next_values``, computed from ``Transition.next_obs``), so that a time-limit
truncation bootstraps from the true last state while a termination does not:

    delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t)

and the recursion is cut at every episode end (terminated or truncated).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
    lam: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation.

    Args:
      rewards, values, next_values, terminated, truncated: ``[T, B]``.
      gamma, lam: discount and GAE lambda (scalars, may be traced).

    Returns:
      ``(advantages, value_targets)``, both ``[T, B]`` float32, targets = A + V.
    """
    chex.assert_equal_shape([rewards, values, next_values, terminated, truncated])
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32)
    deltas = rewards + gamma * not_term * next_values - values

    def body(next_adv, xs):
        delta, cont = xs
        adv = delta + gamma * lam * cont * next_adv
        return adv, adv

    _, adv = jax.lax.scan(body, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return adv, adv + values


def lambda_returns(
    rewards: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
    lam: jax.Array | float,
) -> jax.Array:
    """TD(lambda) returns ``G_t = r_t + gamma (1-term_t) [(1-lam) V(s'_t) + lam G_{t+1}]``.

    ``G_{t+1}`` is replaced by ``V(s'_t)`` at episode ends and at the last step.
    Shapes: all ``[T, B]``; returns ``[T, B]``.
    """
    chex.assert_equal_shape([rewards, next_values, terminated, truncated])
    not_term = 1.0 - terminated.astype(jnp.float32)
    done = jnp.logical_or(terminated, truncated)

    def body(next_return, xs):
        r, v_next, nt, d = xs
        tail = jnp.where(d, v_next, (1.0 - lam) * v_next + lam * next_return)
        g = r + gamma * nt * tail
        return g, g

    _, returns = jax.lax.scan(
        body, next_values[-1], (rewards, next_values, not_term, done), reverse=True
    )
    return returns


def n_step_return(
    rewards: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The n-step return of windows of ``T`` consecutive steps, cut at the first episode end.

    With ``m`` the steps up to and including the first end (``T`` without one), the
    target is ``ret + discount * V(next_obs[last])``, where
    ``ret = sum_{t<m} gamma^t r_t``, ``last = m - 1`` and
    ``discount = gamma^m (1 - terminated[last])`` (a truncation still bootstraps).
    It equals ``lambda_returns(..., lam=1)[0]`` with the value taken at ``last``.

    Args:
      rewards, terminated, truncated: ``[T, B]``.
      gamma: discount (scalar, may be traced).

    Returns:
      ``(ret, discount, last)``: ``[B]`` float32, ``[B]`` float32, ``[B]`` int32.
    """
    chex.assert_equal_shape([rewards, terminated, truncated])
    done = jnp.logical_or(terminated, truncated).astype(jnp.float32)
    # alive[t] = 1 while no earlier step of the window ended its episode.
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[:1]), 1.0 - done[:-1]]), axis=0)
    powers = jnp.power(gamma, jnp.arange(rewards.shape[0], dtype=jnp.float32))[:, None]
    ret = jnp.sum(alive * powers * rewards, axis=0)
    steps = jnp.sum(alive, axis=0)
    last = steps.astype(jnp.int32) - 1
    term_last = jnp.take_along_axis(terminated, last[None], axis=0)[0]
    discount = jnp.power(gamma, steps) * (1.0 - term_last.astype(jnp.float32))
    return ret, discount, last
