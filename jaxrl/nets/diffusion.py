"""A small conditional DDPM over actions: MBRCSL's diffusion behaviour policy.

The denoiser ``eps(x_t, t, cond)`` is an MLP (LayerNorm + mish) on ``[x_t, emb(t), cond]``
with a sinusoidal step embedding. The noise schedule is the squared-cosine one
(Nichol & Dhariwal, 2021; ``squaredcos_cap_v2`` in diffusers), trained with the
epsilon-prediction MSE (Ho et al., 2020). Sampling runs the ancestral DDPM chain with the
predicted ``x_0`` clipped to ``[-clip, clip]`` and the posterior variance
``beta_t (1 - abar_{t-1}) / (1 - abar_t)``, as MBRCSL's official code does with 10 steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.nets.mlp import MLP, activation


class Schedule(struct.PyTreeNode):
    """Per-step constants, each ``[T]`` float32: ``betas``, ``alphas_cumprod`` (abar_t)."""

    betas: jax.Array
    alphas_cumprod: jax.Array

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]


def cosine_schedule(num_steps: int, max_beta: float = 0.999) -> Schedule:
    """Squared-cosine schedule: ``abar(s) = cos((s + 0.008) / 1.008 * pi / 2)^2`` and
    ``beta_i = min(1 - abar((i + 1) / T) / abar(i / T), max_beta)``."""
    if num_steps <= 0:
        raise ValueError(f"num_steps must be positive, got {num_steps}")
    s = np.arange(num_steps + 1, dtype=np.float64) / num_steps
    abar = np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2
    betas = np.minimum(1 - abar[1:] / abar[:-1], max_beta)
    return Schedule(
        betas=jnp.asarray(betas, jnp.float32),
        alphas_cumprod=jnp.asarray(np.cumprod(1 - betas), jnp.float32),
    )


def step_embedding(t: jax.Array, dim: int) -> jax.Array:
    """Sinusoidal embedding of integer steps ``t [...]`` -> ``[..., dim]`` (dim even)."""
    half = dim // 2
    freqs = jnp.exp(-jnp.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
    angle = t.astype(jnp.float32)[..., None] * freqs
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], -1)


class NoiseNet(nn.Module):
    """``(x_t [B, A], t [B] int, cond [B, C]) -> predicted noise [B, A]``."""

    action_dim: int
    hidden: Sequence[int] = (256, 256, 256)
    embed_dim: int = 32

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, cond: jax.Array) -> jax.Array:
        emb = step_embedding(t, self.embed_dim)
        emb = nn.Dense(self.embed_dim)(activation("mish")(nn.Dense(2 * self.embed_dim)(emb)))
        h = MLP(self.hidden, "mish", layer_norm=True)(jnp.concatenate([x, emb, cond], -1))
        return nn.Dense(self.action_dim)(h)


def diffusion_loss(
    net: NoiseNet,
    params,
    schedule: Schedule,
    x0: jax.Array,
    cond: jax.Array,
    key: jax.Array,
) -> jax.Array:
    """Epsilon-prediction MSE at a uniform random step per row; ``x0 [B, A]`` -> scalar."""
    t_key, noise_key = jax.random.split(key)
    t = jax.random.randint(t_key, x0.shape[:1], 0, schedule.num_steps)
    noise = jax.random.normal(noise_key, x0.shape)
    abar = schedule.alphas_cumprod[t][:, None]
    x_t = jnp.sqrt(abar) * x0 + jnp.sqrt(1 - abar) * noise
    return jnp.mean(jnp.square(net.apply(params, x_t, t, cond) - noise))


def diffusion_sample(
    eps_fn,
    schedule: Schedule,
    cond: jax.Array,
    key: jax.Array,
    action_dim: int,
    clip: float = 1.0,
) -> jax.Array:
    """Ancestral DDPM sampling: ``cond [B, C]`` -> ``x_0 [B, action_dim]``.

    ``eps_fn(x_t [B, A], t [B], cond) -> noise [B, A]`` (e.g. a bound ``NoiseNet``).
    """
    b = cond.shape[0]
    init_key, key = jax.random.split(key)
    abar = schedule.alphas_cumprod
    abar_prev = jnp.concatenate([jnp.ones(1), abar[:-1]])

    def body(x, inputs):
        t, k = inputs
        eps = eps_fn(x, jnp.full((b,), t), cond)
        x0 = jnp.clip((x - jnp.sqrt(1 - abar[t]) * eps) / jnp.sqrt(abar[t]), -clip, clip)
        beta = schedule.betas[t]
        mean = (
            jnp.sqrt(abar_prev[t]) * beta / (1 - abar[t]) * x0
            + jnp.sqrt(1 - beta) * (1 - abar_prev[t]) / (1 - abar[t]) * x
        )
        var = beta * (1 - abar_prev[t]) / (1 - abar[t])
        noise = jax.random.normal(k, x.shape) * (t > 0)
        return mean + jnp.sqrt(var) * noise, None

    steps = jnp.arange(schedule.num_steps - 1, -1, -1)
    x_init = jax.random.normal(init_key, (b, action_dim))
    x, _ = jax.lax.scan(body, x_init, (steps, jax.random.split(key, schedule.num_steps)))
    return x
