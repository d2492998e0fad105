"""Gaussian-mixture policy head: a multi-modal behaviour policy with exact likelihood."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.nets.mlp import MLP


class GaussianMixture(nn.Module):
    """``[..., in] -> (logits [..., K], mean [..., K, A], log_std [..., K, A])``.

    ``log_std`` is squashed into ``[log_std_min, log_std_max]``.
    """

    action_dim: int
    num_components: int = 5
    hidden: Sequence[int] = (256, 256)
    act: str = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        k, a = self.num_components, self.action_dim
        h = MLP(self.hidden, self.act)(x)
        logits = nn.Dense(k)(h)
        mean = nn.Dense(k * a)(h).reshape((*x.shape[:-1], k, a))
        log_std = jnp.tanh(nn.Dense(k * a)(h).reshape((*x.shape[:-1], k, a)))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return logits, mean, log_std


def mixture_log_prob(
    logits: jax.Array, mean: jax.Array, log_std: jax.Array, x: jax.Array
) -> jax.Array:
    """``log sum_k pi_k N(x; mean_k, diag(std_k^2))``; ``x [..., A]`` -> ``[...]``."""
    z = (x[..., None, :] - mean) * jnp.exp(-log_std)
    comp = jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    return jax.nn.logsumexp(jax.nn.log_softmax(logits, -1) + comp, axis=-1)


def mixture_sample(
    logits: jax.Array, mean: jax.Array, log_std: jax.Array, key: jax.Array, noise: float = 1.0
) -> jax.Array:
    """One sample per row: a component from ``softmax(logits)``, then its Gaussian.

    ``noise`` scales the within-component noise (0: the chosen component's mean).
    """
    comp_key, noise_key = jax.random.split(key)
    k = jax.random.categorical(comp_key, logits, axis=-1)
    mu = jnp.take_along_axis(mean, k[..., None, None], axis=-2)[..., 0, :]
    std = jnp.exp(jnp.take_along_axis(log_std, k[..., None, None], axis=-2)[..., 0, :])
    return mu + noise * std * jax.random.normal(noise_key, mu.shape)
