"""The DDPM behaviour policy (``jaxrl.nets.diffusion``) and the Gaussian mixture head."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl.nets.diffusion import (
    NoiseNet,
    cosine_schedule,
    diffusion_loss,
    diffusion_sample,
)
from jaxrl.nets.mixture import GaussianMixture, mixture_log_prob, mixture_sample


def test_cosine_schedule_matches_float64_reference():
    t = 10
    sched = cosine_schedule(t)
    f = lambda s: np.cos((s / t + 0.008) / 1.008 * np.pi / 2) ** 2
    betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(t)])
    np.testing.assert_allclose(sched.betas, betas, rtol=1e-6)
    np.testing.assert_allclose(sched.alphas_cumprod, np.cumprod(1 - betas), rtol=1e-6)
    assert sched.num_steps == t
    with pytest.raises(ValueError, match="num_steps"):
        cosine_schedule(0)


def test_sampler_with_the_exact_denoiser_of_a_point_mass_returns_the_point():
    """For data ``x_0 = c`` the optimal noise prediction is ``(x_t - sqrt(abar) c) /
    sqrt(1 - abar)``; the chain must then end exactly at ``c`` (last variance is 0)."""
    sched = cosine_schedule(10)
    c = jnp.array([0.3, -0.7])
    abar = sched.alphas_cumprod

    def eps_fn(x, t, cond):
        a = abar[t][:, None]
        return (x - jnp.sqrt(a) * c) / jnp.sqrt(1 - a)

    x = diffusion_sample(eps_fn, sched, jnp.zeros((64, 1)), jax.random.PRNGKey(0), 2)
    np.testing.assert_allclose(x, jnp.broadcast_to(c, x.shape), atol=1e-5)


def test_diffusion_policy_learns_a_two_mode_action_distribution():
    """Actions are -0.8 or +0.8 with equal odds whatever the observation: samples must
    split between the modes and avoid the mean (which a unimodal regressor would output)."""
    net = NoiseNet(1, (64, 64))
    sched = cosine_schedule(10)
    key = jax.random.PRNGKey(0)
    obs = jax.random.normal(key, (2048, 3))
    action = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (2048, 1)), 0.8, -0.8)
    params = net.init(key, action[:1], jnp.zeros(1, jnp.int32), obs[:1])
    tx = optax.adam(3e-3)

    @jax.jit
    def train(params):
        def step(carry, k):
            p, opt = carry
            idx = jax.random.randint(k, (256,), 0, 2048)
            f = lambda p: diffusion_loss(net, p, sched, action[idx], obs[idx], k)
            loss, g = jax.value_and_grad(f)(p)
            u, opt = tx.update(g, opt)
            return (optax.apply_updates(p, u), opt), loss

        (p, _), losses = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, 1500))
        return p, losses

    params, losses = train(params)
    assert losses[-100:].mean() < 0.7 * losses[:100].mean()
    eps_fn = lambda x, t, c: net.apply(params, x, t, c)
    x = np.asarray(diffusion_sample(eps_fn, sched, obs[:1000], jax.random.PRNGKey(2), 1))[:, 0]
    assert np.all(np.abs(x) <= 1.0)
    assert 0.3 < np.mean(x > 0) < 0.7
    assert np.mean(np.abs(np.abs(x) - 0.8) < 0.2) > 0.85
    assert np.mean(np.abs(x) < 0.4) < 0.05


def test_mixture_log_prob_matches_numpy_and_sampling_picks_components():
    logits = jnp.array([[0.0, np.log(3.0)]])  # weights 1/4, 3/4
    mean = jnp.array([[[-1.0, 0.0], [2.0, 1.0]]])
    log_std = jnp.array([[[0.0, -1.0], [-0.5, 0.5]]])
    x = jnp.array([[0.5, 0.2]])
    w = np.array([0.25, 0.75])
    std = np.exp(np.asarray(log_std[0], np.float64))
    mu = np.asarray(mean[0], np.float64)
    z = (np.array([0.5, 0.2]) - mu) / std  # [K, A]
    dens = np.prod(np.exp(-0.5 * z**2) / (std * np.sqrt(2 * np.pi)), axis=-1)
    np.testing.assert_allclose(
        mixture_log_prob(logits, mean, log_std, x)[0], np.log(np.sum(w * dens)), rtol=1e-5
    )
    n = 20_000
    args = [jnp.broadcast_to(a, (n, *a.shape[1:])) for a in (logits, mean, log_std)]
    s = np.asarray(mixture_sample(*args, jax.random.PRNGKey(0), noise=0.0))
    assert abs(np.mean(s[:, 0] == 2.0) - 0.75) < 0.02
    assert set(np.unique(s[:, 0])) == {-1.0, 2.0}
    head = GaussianMixture(2, 3, (16,))
    out = head.apply(head.init(jax.random.PRNGKey(0), x), x)
    assert [o.shape for o in out] == [(1, 3), (1, 3, 2), (1, 3, 2)]
    assert float(out[2].min()) >= -5.0 and float(out[2].max()) <= 1.0
