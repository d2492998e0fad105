"""SAC's target, temperature loss and tanh-Gaussian log-prob against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl.agents.actor_critic import common as ac
from jaxrl.agents.actor_critic import sac
from jaxrl.core import Transition
from jaxrl.nets.mlp import tanh_gaussian_sample


def test_critic_target_hand_computed():
    reward = jnp.array([1.0, -2.0, 0.5])
    terminated = jnp.array([False, True, False])
    next_q = jnp.array([[3.0, 4.0, -1.0], [2.0, 5.0, -3.0]])  # min: 2, 4, -3
    next_log_prob = jnp.array([-1.0, 0.5, 2.0])
    alpha, gamma = 0.2, 0.9
    y = ac.critic_target(reward, terminated, next_q, next_log_prob, alpha, gamma)
    expected = [1.0 + 0.9 * (2.0 + 0.2), -2.0, 0.5 + 0.9 * (-3.0 - 0.4)]
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_temperature_loss_value_and_gradient():
    log_alpha = jnp.log(0.5)
    log_prob = jnp.array([-0.5, -1.5])
    target_entropy = -1.0
    loss, grad = jax.value_and_grad(ac.temperature_loss)(log_alpha, log_prob, target_entropy)
    # J = -alpha * mean(log_prob + H) = -0.5 * mean(-1.5, -2.5) = 1.0; dJ/dlog_alpha = J.
    np.testing.assert_allclose(loss, 1.0, rtol=1e-6)
    np.testing.assert_allclose(grad, 1.0, rtol=1e-6)
    # Entropy above target (log_prob small) pushes alpha down: positive gradient on log_alpha.
    assert grad > 0


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    mean = jnp.array([[0.3, -0.7]])
    std = jnp.array([[0.5, 1.2]])
    a, logp = tanh_gaussian_sample(mean, std, jax.random.PRNGKey(0))
    m, s = np.float64(mean), np.float64(std)
    u = np.arctanh(np.float64(a))
    gauss = -0.5 * ((u - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
    expected = np.sum(gauss - np.log(1 - np.tanh(u) ** 2), -1)
    np.testing.assert_allclose(logp, expected, rtol=1e-4, atol=1e-4)


def test_update_changes_params_and_keeps_them_finite():
    env = E.make("pendulum")
    cfg = sac.Config(hidden=(32, 32), batch_size=16)
    agent = sac.make_agent(cfg, env, sac.SPEC.default_hparams())
    state = agent.init(jax.random.PRNGKey(0))
    n = 16
    batch = Transition(
        obs=jnp.ones((n, 3)),
        action=jnp.full((n, 1), 1.5),
        reward=jnp.ones(n),
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
        next_obs=jnp.ones((n, 3)),
    )
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(1))
    assert all(np.isfinite(v) for v in metrics.values())
    diff = jax.tree.map(
        lambda a, b: jnp.max(jnp.abs(a - b)), new.critic_params, state.critic_params
    )
    assert max(jax.tree.leaves(diff)) > 0
    # Polyak: the target moved by exactly tau of the way toward the new critic.
    expected = jax.tree.map(
        lambda t, c: 0.995 * t + 0.005 * c, state.target_critic_params, new.critic_params
    )
    pairs = zip(jax.tree.leaves(new.target_critic_params), jax.tree.leaves(expected), strict=True)
    for x, y in pairs:
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
    # Actions are scaled to the env's bounds [-2, 2].
    a, _ = agent.act(new, jnp.ones((5, 3)), jax.random.PRNGKey(2), explore=True)
    assert a.shape == (5, 1) and bool(jnp.all(jnp.abs(a) <= 2.0))


def test_sac_rejects_discrete_actions():
    with pytest.raises(ValueError, match="continuous"):
        sac.SPEC.make_train(sac.Config(), E.make("cartpole"))
