"""Dynamics ensemble on a known linear system, elite selection, and model rollouts
against the true Point Maze dynamics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl.models import Ensemble, rollout, select_elites
from jaxrl.models.dynamics import gaussian_nll, soft_clamp_logvar

A = np.array([[0.9, 0.1], [-0.2, 0.8]], np.float32)
B = np.array([[0.5], [1.0]], np.float32)
C = np.array([1.0, -0.5], np.float32)


def _linear_data(key, n):
    """``s' = A s + B a + 0.01 eps``, ``r = C s``: inputs and ``[s' - s, r]`` targets."""
    k1, k2, k3 = jax.random.split(key, 3)
    s = jax.random.normal(k1, (n, 2))
    a = jax.random.uniform(k2, (n, 1), minval=-1, maxval=1)
    nxt = s @ A.T + a @ B.T + 0.01 * jax.random.normal(k3, (n, 2))
    return s, a, jnp.concatenate([nxt - s, (s @ C)[:, None]], -1)


@pytest.fixture(scope="module")
def trained():
    ens = Ensemble(2, 1, num_members=4, num_elites=2, hidden=(32, 32))
    s, a, y = _linear_data(jax.random.PRNGKey(0), 4000)
    hold = _linear_data(jax.random.PRNGKey(1), 1000)
    x = jnp.concatenate([s, a], -1)
    model = ens.init(jax.random.PRNGKey(2), x.mean(0), x.std(0))
    train = jax.jit(lambda m, k: ens.train(m, (s, a, y), hold, k, steps=1500, batch_size=128))
    model, info = train(model, jax.random.PRNGKey(3))
    return ens, model, info, hold


def test_ensemble_nll_decreases_and_predicts_held_out_linear_system(trained):
    ens, model, info, (s, a, y) = trained
    nll = np.asarray(info["nll"])
    assert nll[-100:].mean() < nll[:100].mean() - 2.0
    mean, logvar = ens.predict(model, s, a)
    assert mean.shape == (4, 1000, 3) and logvar.shape == (4, 1000, 3)
    # Stated error: every member's held-out RMSE below 0.05 on targets of scale ~1.
    rmse = np.sqrt(np.asarray(jnp.mean(jnp.square(mean - y[None]), axis=(1, 2))))
    assert np.all(rmse < 0.05), rmse
    # The elites' sampled next state is close to the true linear map.
    nxt, r = ens.step(model, s, a, jax.random.PRNGKey(9))
    true_next = s + y[:, :2]
    assert float(jnp.sqrt(jnp.mean(jnp.square(nxt - true_next)))) < 0.1
    assert float(jnp.sqrt(jnp.mean(jnp.square(r - y[:, 2])))) < 0.1


def test_elite_selection_picks_best_holdout_members(trained):
    ens, model, _, (s, a, y) = trained
    # Corrupt members 0 and 2: they must drop out of the elites.
    noise = lambda p: p.at[0].add(0.5).at[2].add(0.5)
    bad = model.replace(params=jax.tree.map(noise, model.params))
    mse = ens.holdout_mse(bad, s, a, y)
    elites = np.asarray(select_elites(mse, 2))
    assert set(elites) == {1, 3}
    np.testing.assert_array_equal(elites, np.argsort(np.asarray(mse))[:2])
    np.testing.assert_array_equal(select_elites(jnp.array([3.0, 1.0, 2.0, 0.5]), 3), [3, 1, 2])


def test_soft_clamp_and_nll_against_numpy():
    x = jnp.linspace(-20, 5, 11)
    out = np.asarray(soft_clamp_logvar(x, 0.5, -10.0))
    assert np.all(out <= 0.5 + 1e-6) and np.all(out >= -10.0 - 1e-6)
    mid = np.asarray(soft_clamp_logvar(jnp.array([-3.0]), 0.5, -10.0))
    np.testing.assert_allclose(mid, -3.0, atol=0.05)  # near-identity inside the bounds
    rng = np.random.default_rng(0)
    mean, logvar, y = (rng.normal(size=(2, 5, 3)) for _ in range(3))
    ref = np.mean((mean - y) ** 2 * np.exp(-logvar) + logvar, axis=(1, 2))
    np.testing.assert_allclose(gaussian_nll(mean, logvar, y), ref, rtol=1e-5)


def test_bad_ensemble_config_raises():
    with pytest.raises(ValueError, match="num_elites"):
        Ensemble(2, 1, num_members=3, num_elites=4)
    with pytest.raises(ValueError, match="reward_mode"):
        Ensemble(2, 1, reward_mode="median")


def test_rollout_with_true_dynamics_equals_stepping_the_env():
    env = E.make("pointmaze", episode_length=40)
    pm = env.unwrapped
    n, horizon = 8, 40
    policy = lambda obs, k: jnp.tanh(
        jnp.stack([jnp.sin(3 * obs[:, 1]), jnp.cos(2 * obs[:, 0])], -1)
    )
    true_model = lambda obs, act, k: jax.vmap(pm.dynamics)(obs, act)
    venv = E.VmapWrapper(env, n)
    state = venv.reset(jax.random.PRNGKey(0))
    traj = jax.jit(rollout, static_argnums=(0, 1, 3))(
        true_model, policy, state.obs, horizon, jax.random.PRNGKey(1)
    )
    assert traj.obs.shape == (horizon, n, 4) and traj.reward.shape == (horizon, n)

    def step(s, _):
        action = policy(s.obs, None)
        nxt = venv.step(s, action)
        return nxt, (s.obs, nxt.obs, nxt.reward)

    _, (obs, next_obs, reward) = jax.lax.scan(step, state, None, length=horizon)
    np.testing.assert_allclose(traj.obs, obs, atol=1e-6)
    np.testing.assert_allclose(traj.next_obs, next_obs, atol=1e-6)
    np.testing.assert_allclose(traj.reward, reward, atol=1e-6)
    # The maze's walls hold: no state inside a wall.
    assert bool(pm.is_free(traj.next_obs[..., :2]).all())


def test_rollout_vmaps_over_keys_and_marks_terminated_rows_invalid():
    model = lambda obs, act, k: (obs + act, jnp.ones(obs.shape[0]), obs[:, 0] + act[:, 0] > 2.5)
    policy = lambda obs, k: jnp.ones_like(obs)
    start = jnp.array([[0.0], [1.0], [-5.0]])
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    traj = jax.vmap(lambda k: rollout(model, policy, start, 5, k))(keys)
    assert traj.obs.shape == (2, 5, 3, 1)
    valid = np.asarray(traj.extras["valid"][0])
    # Row 0 reaches 3.0 at step 2 (valid), invalid afterwards; row 1 ends at step 1.
    np.testing.assert_array_equal(valid[:, 0], [True, True, True, False, False])
    np.testing.assert_array_equal(valid[:, 1], [True, True, False, False, False])
    assert valid[:, 2].all()


def _probe_agent():
    """An agent whose ``act`` is a fixed function of the obs and whose ``update`` returns
    the batch it was given as its metrics."""
    from jaxrl.core import Agent

    def act(state, obs, key, explore=True, **_):
        return jnp.tanh(jnp.stack([jnp.sin(3 * obs[:, 1]), jnp.cos(2 * obs[:, 0])], -1)), {}

    return Agent(init=lambda k: 0, act=act, update=lambda s, b, k: (s, {"batch": b}))


def test_with_model_rollouts_mixes_real_rows_and_true_model_transitions():
    from jaxrl.core import Transition
    from jaxrl.transforms import with_model_rollouts

    env = E.make("pointmaze")
    pm = env.unwrapped
    true_model = lambda obs, act, k: jax.vmap(pm.dynamics)(obs, act)
    n = 64
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    obs = jnp.concatenate(
        [jax.random.uniform(k1, (n, 2), minval=1.2, maxval=2.8), jnp.zeros((n, 2))], -1
    )
    batch = Transition(
        obs=obs,
        action=jax.random.uniform(k2, (n, 2), minval=-1, maxval=1),
        reward=jnp.full((n,), -7.0),  # marks the real rows
        terminated=jnp.zeros(n, jnp.bool_),
        truncated=jnp.zeros(n, jnp.bool_),
        next_obs=obs,
        extras={},
    )
    probe = _probe_agent()
    agent = with_model_rollouts(probe, true_model, horizon=3, real_fraction=0.25)
    _, metrics = jax.jit(agent.update)(0, batch, k3)
    mixed = metrics["batch"]
    assert mixed.obs.shape == (n, 4)
    np.testing.assert_array_equal(mixed.reward[:16], -7.0)  # the first 25% are real rows
    np.testing.assert_array_equal(mixed.obs[:16], obs[:16])
    syn = jax.tree.map(lambda x: x[16:], mixed)
    # Synthetic rows: the agent's own action, the true next state and reward.
    np.testing.assert_allclose(syn.action, probe.act(0, syn.obs, None)[0], atol=1e-6)
    want_next, want_reward = true_model(syn.obs, syn.action, None)
    np.testing.assert_allclose(syn.next_obs, want_next, atol=1e-6)
    np.testing.assert_allclose(syn.reward, want_reward, atol=1e-6)
    np.testing.assert_allclose(metrics["model_reward_mean"], syn.reward.mean(), rtol=1e-5)
    # real_fraction 1 is the wrapped agent exactly; bad arguments raise.
    same = with_model_rollouts(probe, true_model, real_fraction=1.0).update(0, batch, k3)[1]
    assert same["batch"] is batch
    with pytest.raises(ValueError, match="horizon"):
        with_model_rollouts(probe, true_model, horizon=0)
    with pytest.raises(ValueError, match="real_fraction"):
        with_model_rollouts(probe, true_model, real_fraction=1.5)


def test_sac_with_model_rollouts_updates_from_an_ensemble_mbpo_style():
    """The transform composes with a model-free agent: SAC's update on a batch half made of
    5-step ensemble rollouts of its own policy is finite, jittable and vmaps over seeds."""
    from jaxrl.agents.actor_critic import sac
    from jaxrl.core import Transition, tree_finite
    from jaxrl.transforms import with_model_rollouts

    env = E.make("pointmaze")
    cfg = sac.Config(hidden=(32, 32))
    base = sac.make_agent(cfg, env, sac.SPEC.default_hparams())
    ens = Ensemble(4, 2, num_members=3, num_elites=2, hidden=(16,))
    model = ens.init(jax.random.PRNGKey(1), jnp.zeros(6), jnp.ones(6))
    agent = with_model_rollouts(base, lambda o, a, k: ens.step(model, o, a, k), horizon=5)
    n = 32
    obs = jax.random.uniform(jax.random.PRNGKey(2), (n, 4), minval=0.5, maxval=3.5)
    batch = Transition(
        obs=obs,
        action=jnp.zeros((n, 2)),
        reward=jnp.zeros(n),
        terminated=jnp.zeros(n, jnp.bool_),
        truncated=jnp.zeros(n, jnp.bool_),
        next_obs=obs,
        extras={},
    )

    def one_seed(key):
        state = agent.init(key)
        new, metrics = agent.update(state, batch, key)
        return state, new, metrics

    state, new, metrics = jax.jit(jax.vmap(one_seed))(jax.random.split(jax.random.PRNGKey(3), 2))
    assert bool(tree_finite(new)) and bool(tree_finite(metrics))
    assert metrics["model_reward_mean"].shape == (2,)
    before, after = jax.tree.leaves(state.critic_params)[0], jax.tree.leaves(new.critic_params)[0]
    assert not np.allclose(before, after)
