"""DQN: the n-step (double) TD loss against a float64 NumPy reference, hard and Polyak
target moves, epsilon-greedy acting, jit/vmap over seeds on the replay loop with
n-step runs, bad configs, and learning CartPole (slow)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_checks import check_discrete_only, check_learns_cartpole, leaves_equal, two_seed_run

import jaxrl.envs as E
from jaxrl import loops
from jaxrl.agents.value import dqn
from jaxrl.core import LoopContext, Transition
from jaxrl.nets import DiscreteQ

ENV = E.make("cartpole")
SCHEDULE = loops.make_schedule(10_000, 1, 1)


def _agent(config, **hparams):
    return dqn.make_agent(config, ENV, dqn.SPEC.default_hparams(**hparams), SCHEDULE)


def _runs(n_step, n=16, seed=0):
    """Runs ``[n_step, n]`` (or flat ``[n]`` for 1 step) with episode ends mixed in."""
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    shape = (n_step, n)
    batch = Transition(
        obs=jax.random.normal(k[0], (*shape, 4)),
        action=jax.random.randint(k[1], shape, 0, 2),
        reward=jax.random.normal(k[2], shape),
        terminated=jax.random.uniform(k[3], shape) < 0.2,
        truncated=jax.random.uniform(k[4], shape) > 0.8,
        next_obs=jax.random.normal(k[4], (*shape, 4)) + 1.0,
        context=LoopContext(jnp.int32(1234), jnp.float32(0), jnp.bool_(True)),
    )
    if n_step == 1:
        batch = jax.tree.map(lambda x: x[0], batch.replace(context=None)).replace(
            context=batch.context
        )
    return batch


def _reference_loss(config, state, batch, gamma):
    """The loss in float64 from the networks' Q-values: per sample, rewards summed up to
    the first episode end, then the (double) bootstrap unless that step terminated."""
    net = DiscreteQ(2, config.hidden, config.activation, config.layer_norm, config.dueling)
    f64 = lambda x: np.asarray(x, np.float64)  # noqa: E731
    runs = jax.tree.map(lambda x: x[None], batch) if config.n_step == 1 else batch
    r, term, trunc = f64(runs.reward), np.asarray(runs.terminated), np.asarray(runs.truncated)
    q_target = f64(net.apply(state.target_params, runs.next_obs))  # [n, N, A]
    q_online = f64(net.apply(state.params, runs.next_obs))
    q = f64(net.apply(state.params, runs.obs[0]))
    n, N = r.shape
    losses = []
    for b in range(N):
        y, disc = 0.0, 1.0
        for t in range(n):
            y += disc * r[t, b]
            disc *= gamma
            if term[t, b]:
                break
            if trunc[t, b] or t == n - 1:
                pick = q_online[t, b] if config.double else q_target[t, b]
                y += disc * q_target[t, b, int(np.argmax(pick))]
                break
        diff = q[b, int(runs.action[0, b])] - y
        if config.loss == "huber":
            losses.append(0.5 * diff**2 if abs(diff) <= 1 else abs(diff) - 0.5)
        else:
            losses.append(0.5 * diff**2)
    return float(np.mean(losses))


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_step": 3, "double": True, "dueling": True, "loss": "mse"},
        {"n_step": 1, "double": False, "dueling": False, "loss": "huber"},
    ],
)
def test_td_loss_matches_float64_reference(overrides):
    config = dqn.Config(hidden=(16, 16), **overrides)
    agent = _agent(config, gamma=0.9)
    state = agent.init(jax.random.PRNGKey(0))
    # A target network unlike the online one, so that double Q-learning matters.
    state = state.replace(target_params=agent.init(jax.random.PRNGKey(1)).params)
    batch = _runs(config.n_step)
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(2))
    ref = _reference_loss(config, state, batch, 0.9)
    np.testing.assert_allclose(float(metrics["td_loss"]), ref, rtol=1e-5)
    assert int(new.env_step) == 1234 and int(new.step) == 1  # epsilon follows the loop
    np.testing.assert_allclose(float(metrics["epsilon"]), 1.0 - 0.95 * 1234 / 5000, rtol=1e-5)


def test_target_moves_hard_every_period_or_by_polyak():
    hard = _agent(dqn.Config(hidden=(8,), target_period=2), tau=1.0)
    s0 = hard.init(jax.random.PRNGKey(0))
    update = jax.jit(hard.update)
    s1, _ = update(s0, _runs(1), jax.random.PRNGKey(1))
    s2, _ = update(s1, _runs(1, seed=1), jax.random.PRNGKey(2))
    assert leaves_equal(s1.target_params, s0.target_params)  # update 1: no move
    assert not leaves_equal(s1.params, s0.params)
    assert leaves_equal(s2.target_params, s2.params)  # update 2: hard copy
    soft = _agent(dqn.Config(hidden=(8,)), tau=0.25)
    t0 = soft.init(jax.random.PRNGKey(0))
    t1, _ = jax.jit(soft.update)(t0, _runs(1), jax.random.PRNGKey(1))
    expected = jax.tree.map(lambda p, t: 0.25 * p + 0.75 * t, t1.params, t0.target_params)
    for a, b in zip(jax.tree.leaves(t1.target_params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_epsilon_greedy_acting():
    config = dqn.Config(hidden=(8,))
    obs = jax.random.normal(jax.random.PRNGKey(1), (4000, 4))
    greedy_agent = _agent(config, eps_start=0.0, eps_end=0.0)
    state = greedy_agent.init(jax.random.PRNGKey(0))
    greedy, _ = greedy_agent.act(state, obs, jax.random.PRNGKey(2), explore=False)
    explored, _ = greedy_agent.act(state, obs, jax.random.PRNGKey(2), explore=True)
    np.testing.assert_array_equal(greedy, explored)  # epsilon 0: greedy
    assert greedy.dtype == jnp.int32 and greedy.shape == (4000,)
    random, _ = _agent(config).act(state, obs, jax.random.PRNGKey(3))  # epsilon 1 at step 0
    assert abs(float(jnp.mean(random)) - 0.5) < 0.04
    assert 0.4 < float(jnp.mean(random == greedy)) < 0.6


def test_train_is_deterministic_and_vmaps_over_seeds_with_n_step_runs():
    config = dqn.Config(
        total_steps=400,
        num_envs=4,
        warmup_steps=40,
        updates_per_iter=2,
        batch_size=16,
        n_step=3,
        hidden=(16,),
        num_evals=2,
        num_eval_envs=2,
    )
    states = two_seed_run(dqn.SPEC, config, ENV)
    # 100 iterations; updates start at iteration 9 (warm-up 10 rows): 91 x 2 updates.
    np.testing.assert_array_equal(states.step, [182, 182])
    np.testing.assert_array_equal(states.env_step, [400, 400])


def test_registered_and_rejects_bad_configs():
    check_discrete_only(dqn.SPEC)
    bad = {
        "n_step": ("n_step must be positive", {"n_step": 0}),
        "target": ("target_period must be positive", {"target_period": 0}),
        "loss": ("loss must be one of", {"loss": "l1"}),
        "warmup": ("warmup_steps must be >= 0", {"warmup_steps": -1}),
        "buffer": ("buffer_size=20 must hold", {"buffer_size": 20, "n_step": 3}),
    }
    for match, overrides in bad.values():
        with pytest.raises(ValueError, match=f"dqn: {match}"):
            dqn.SPEC.validate(dqn.Config(**overrides), ENV)


@pytest.mark.slow  # ~1 minute on 2 cores
def test_dqn_cartpole_reaches_400_within_200k_steps():
    check_learns_cartpole(dqn.SPEC, 200_000, 400)
