"""DSAC-T: targets, omega and critic loss against hand-computed and float64 values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import sweep
from jaxrl.agents.actor_critic import dsac_t
from jaxrl.core import Transition


def test_twin_targets_hand_computed():
    reward = jnp.array([1.0, 0.0])
    terminated = jnp.array([False, True])
    next_mean = jnp.array([[1.0, 5.0], [2.0, 3.0]])  # smaller mean: critic 0, then critic 1
    next_std = jnp.array([[1.0, 1.0], [2.0, 0.5]])
    z = jnp.array([[0.5, 4.0], [1.0, -1.0]])  # 4.0 is clipped to 3
    log_prob = jnp.array([-1.0, 2.0])
    y, y_s = dsac_t.twin_targets(reward, terminated, next_mean, next_std, z, log_prob, 0.2, 0.9)
    # y = 1 + 0.9 (min(1, 2) + 0.2); sample of critic 0 = 1 + 0.5 * 1 = 1.5. Terminal: r only.
    np.testing.assert_allclose(y, [1.0 + 0.9 * 1.2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(y_s, [1.0 + 0.9 * 1.7, 0.0], rtol=1e-6)
    # Not terminal: the sampled target of column 1 comes from critic 1: 3 - 0.5 = 2.5.
    y, y_s = dsac_t.twin_targets(reward, ~terminated, next_mean, next_std, z, log_prob, 0.2, 0.9)
    np.testing.assert_allclose(y_s[1], 0.9 * (2.5 - 0.4), rtol=1e-6)
    np.testing.assert_allclose(y[1], 0.9 * (3.0 - 0.4), rtol=1e-6)


def test_omega_hand_computed_and_clipped():
    std = jnp.array([1.0, 0.1, 20.0])
    # b^2 / (std^2 + 0.1) = 4 / 1.1, 4 / 0.11 -> clipped to 10, 4 / 400.1 -> clipped to 0.1.
    np.testing.assert_allclose(dsac_t.omega(2.0, std), [4 / 1.1, 10.0, 0.1], rtol=1e-6)


def test_mean_std_running_average():
    std = jnp.array([[1.0, 3.0], [2.0, 2.0]])
    b = dsac_t.update_mean_std(jnp.array([-1.0, 4.0]), std, 0.1)
    np.testing.assert_allclose(b, [2.0, 0.9 * 4.0 + 0.1 * 2.0], rtol=1e-6)


def _huber(x, d=50.0):
    return np.where(np.abs(x) <= d, 0.5 * x**2, d * (np.abs(x) - 0.5 * d))


def _huber_grad(x, d=50.0):
    return np.clip(x, -d, d)


def test_critic_loss_and_gradients_match_float64_reference():
    q = np.array([1.0, -2.0, 80.0, 0.5])
    std = np.array([0.5, 2.0, 1.0, 30.0])
    y = np.array([1.5, -1.0, 0.0, 0.4])  # third: |q - y| = 80, Huber's linear part
    y_s = np.array([3.0, -30.0, 79.0, 0.6])  # first two clipped by 3 b = 3
    b = 1.0
    y_b = q + np.clip(y_s - q, -3 * b, 3 * b)
    np.testing.assert_allclose(y_b, [3.0, -5.0, 79.0, 0.6])
    w = np.clip(b**2 / (std**2 + 0.1), 0.1, 10.0)
    h_b = _huber(q - y_b)
    expected = np.mean(w * (_huber(q - y) + std * (std**2 - h_b) / (std + 0.1)))
    grad_q = w * _huber_grad(q - y) / len(q)
    grad_std = w * (std**2 - h_b) / (std + 0.1) / len(q)

    f = jax.value_and_grad(dsac_t.critic_loss, argnums=(0, 1))
    args = [jnp.asarray(x, jnp.float32) for x in (q, std, y, y_s)]
    loss, (gq, gs) = jax.jit(f)(*args, jnp.float32(b))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(gq, grad_q, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gs, grad_std, rtol=1e-5, atol=1e-7)
    # Gradient descent moves sigma toward the clipped TD error: down where sigma^2 exceeds it.
    assert gs[3] > 0 and gs[1] < 0


def _loss_reference(q, std, y, y_s, b, td_bound, expected_value, variance_adjust):
    """float64 NumPy loss, value and gradients in q and std, of either form."""
    bound = 3 * b if variance_adjust else td_bound
    y_b = q + np.clip(y_s - q, -bound, bound)
    w = np.clip(b**2 / (std**2 + 0.1), 0.1, 10.0) if variance_adjust else 1 / (std**2 + 0.1)
    target = y if expected_value else y_s
    h_b = _huber(q - y_b)
    loss = np.mean(w * (_huber(q - target) + std * (std**2 - h_b) / (std + 0.1)))
    return loss, w * _huber_grad(q - target) / len(q), w * (std**2 - h_b) / (std + 0.1) / len(q)


@pytest.mark.parametrize("expected_value", [True, False])
@pytest.mark.parametrize("variance_adjust", [True, False])
def test_v1_critic_loss_differs_in_exactly_two_places(expected_value, variance_adjust):
    """DSAC-v1 (``V1``) is DSAC-T's loss with (1) the sampled target in the mean term and
    (2) the weight ``1 / (sg(sigma)^2 + 0.1)`` with a fixed TD clip in place of ``omega``
    and ``3 b``; each switch alone changes only its own place (float64 reference)."""
    q = np.array([1.0, -2.0, 80.0, 0.5, 4.0])
    std = np.array([0.5, 2.0, 1.0, 30.0, 0.05])
    y = np.array([1.5, -1.0, 0.0, 0.4, 4.2])
    y_s = np.array([3.0, -30.0, 79.0, 0.6, 20.0])  # 2nd: clipped by 3 b = 3 and by 10
    b, td_bound = 1.0, 10.0
    expected, grad_q, grad_std = _loss_reference(
        q, std, y, y_s, b, td_bound, expected_value, variance_adjust
    )
    f = jax.value_and_grad(dsac_t.critic_loss, argnums=(0, 1))
    flags = {"expected_value": expected_value, "variance_adjust": variance_adjust}
    args = [jnp.asarray(x, jnp.float32) for x in (q, std, y, y_s)]
    loss, (gq, gs) = jax.jit(lambda *a: f(*a, **flags))(*args, jnp.float32(b), td_bound)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(gq, grad_q, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gs, grad_std, rtol=1e-5, atol=1e-7)
    # Place 1: the q-gradient reads y (DSAC-T) or y_s (v1), never the other.
    jf = jax.jit(lambda *a: f(*a, **flags))
    _, (gq_y, _) = jf(args[0], args[1], args[2] + 7.0, args[3], jnp.float32(b), td_bound)
    _, (gq_s, _) = jf(args[0], args[1], args[2], args[3] + 7.0, jnp.float32(b), td_bound)
    unchanged = gq_s if expected_value else gq_y
    np.testing.assert_array_equal(unchanged, gq)
    assert not np.allclose(gq_y if expected_value else gq_s, gq)
    # Place 2: the loss reads b (DSAC-T's omega and 3 b) or td_bound (v1), never the other.
    other_b = jf(*args, jnp.float32(2.0), td_bound)[0]
    other_bound = jf(*args, jnp.float32(b), 20.0)[0]
    assert (other_b == loss) != variance_adjust
    assert (other_bound == loss) == variance_adjust
    if not variance_adjust:  # v1's mean gradient (q - target) / (sg(sigma)^2 + 0.1)
        target = y if expected_value else y_s
        small = np.abs(q - target) <= 50  # Huber's quadratic part
        want = (q - target) / (std**2 + 0.1) / len(q)
        np.testing.assert_allclose(np.asarray(gq)[small], want[small], rtol=1e-5, atol=1e-7)


def test_v1_config_trains_a_different_critic():
    """``dsac_t.V1`` as a config of the same agent: the first critic update differs from
    DSAC-T's from the same state and batch; the default config is unchanged by the flags."""
    env = E.make("pendulum")
    hp = dsac_t.SPEC.default_hparams()
    t_cfg = dsac_t.Config(hidden=(16, 16), batch_size=16)
    v1_cfg = dsac_t.Config(hidden=(16, 16), batch_size=16, **dsac_t.V1)
    assert not v1_cfg.expected_value and not v1_cfg.variance_adjust
    t_agent, v1_agent = (dsac_t.make_agent(c, env, hp) for c in (t_cfg, v1_cfg))
    s0 = t_agent.init(jax.random.PRNGKey(0))
    batch = _batch().replace(reward=jnp.linspace(-5.0, 5.0, 16))
    t1, _ = jax.jit(t_agent.update)(s0, batch, jax.random.PRNGKey(1))
    v1, _ = jax.jit(v1_agent.update)(s0, batch, jax.random.PRNGKey(1))
    diff = [
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(*map(jax.tree.leaves, (t1.critic_params, v1.critic_params)), strict=True)
    ]
    assert max(diff) > 0


def test_value_std_is_softplus_and_policy_log_std_clipped():
    """DSAC-v2: ``sigma = softplus(.)`` of the critic's 2nd output; the policy's log-std is
    clamped into [-20, 0.5]."""
    env = E.make("pendulum")
    cfg = dsac_t.Config(hidden=(8,))
    state = dsac_t.make_agent(cfg, env, dsac_t.SPEC.default_hparams()).init(jax.random.PRNGKey(0))
    q_params = jax.tree.map(lambda x: x[0], state.critic_params)
    obs, act = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 3))
    act = act[:, :1]
    mean, std = dsac_t.GaussianQ((8,), "relu").apply(q_params, obs, act)
    w, c = q_params["params"]["MLP_0"]["Dense_0"], q_params["params"]["Dense_0"]
    h = np.maximum(np.concatenate([obs, act], -1) @ w["kernel"] + w["bias"], 0.0)
    out = h @ c["kernel"] + c["bias"]
    np.testing.assert_allclose(mean, out[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, np.log1p(np.exp(out[:, 1])), rtol=1e-5, atol=1e-6)
    big = jax.tree.map(lambda x: 100.0 * x, state.actor_params)
    from jaxrl.nets import TanhGaussian

    actor = TanhGaussian(1, (8,), "relu", log_std_min=-20.0, log_std_max=0.5, clip_log_std=True)
    _, a_std = actor.apply(big, 10.0 * obs)
    assert float(jnp.max(a_std)) <= np.exp(0.5) * (1 + 1e-6)
    assert float(jnp.max(a_std)) >= np.exp(0.5) * (1 - 1e-6)  # saturates at the bound


def _batch(n=16):
    return Transition(
        obs=jnp.ones((n, 3)),
        action=jnp.full((n, 1), 1.5),
        reward=jnp.ones(n),
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
        next_obs=jnp.ones((n, 3)),
    )


def test_update_delays_policy_and_target():
    env = E.make("pendulum")
    cfg = dsac_t.Config(hidden=(16, 16), batch_size=16, log_dormant=True)
    agent = dsac_t.make_agent(cfg, env, dsac_t.SPEC.default_hparams())
    s0 = agent.init(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    s1, m1 = update(s0, _batch(), jax.random.PRNGKey(1))
    s2, m2 = update(s1, _batch(), jax.random.PRNGKey(2))
    assert all(np.isfinite(v) for v in {**m1, **m2}.values())
    assert 0.0 <= float(m1["dormant_ratio"]) <= 1.0

    def moved(a, b):
        return max(
            float(jnp.max(jnp.abs(x - y)))
            for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True)
        )

    # Step 0 is a policy step (actor and targets move); step 1 is not; critics always move.
    assert moved(s1.actor_params, s0.actor_params) > 0
    assert moved(s1.target_critic_params, s0.target_critic_params) > 0
    assert moved(s1.target_actor_params, s0.target_actor_params) > 0
    assert moved(s2.actor_params, s1.actor_params) == 0
    assert moved(s2.target_critic_params, s1.target_critic_params) == 0
    assert moved(s2.target_actor_params, s1.target_actor_params) == 0
    # The target policy is a Polyak average (tau 0.005) of the policy, not the policy.
    tau = 0.005
    for t0, t1, a1 in zip(
        *map(jax.tree.leaves, (s0.target_actor_params, s1.target_actor_params, s1.actor_params)),
        strict=True,
    ):
        np.testing.assert_allclose(t1, (1 - tau) * t0 + tau * a1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(jnp.exp(s0.log_alpha), np.e, rtol=1e-6)  # log_alpha starts at 1
    assert moved(s2.critic_params, s1.critic_params) > 0
    assert float(s0.mean_std[0]) == -1.0 and bool(jnp.all(s1.mean_std > 0))


def test_validate_rejects_bad_config():
    with pytest.raises(ValueError, match="policy_delay"):
        dsac_t.SPEC.validate(dsac_t.Config(policy_delay=0), E.make("pendulum"))
    with pytest.raises(ValueError, match="continuous"):
        dsac_t.SPEC.make_train(dsac_t.Config(), E.make("cartpole"))


@pytest.mark.slow
def test_dsac_t_pendulum_reaches_sac_threshold_within_20k_steps():
    config = dsac_t.Config(total_steps=20_000, **dsac_t.SPEC.presets["pendulum"])
    train = dsac_t.SPEC.make_train(config, E.make("pendulum"))
    _, metrics = sweep.over_seeds(train, 4)(sweep.seed_keys(0, 4), dsac_t.SPEC.default_hparams())
    final = np.asarray(metrics["eval_return"])[:, -1]
    print("dsac_t pendulum 20k final returns:", final)
    assert final.mean() >= -250, final
