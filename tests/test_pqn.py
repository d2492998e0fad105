"""PQN: Q(lambda) targets and the TD loss against a float64 NumPy reference, the
LayerNorm network, the epsilon schedule, jit/vmap over seeds, bad configs, and learning
CartPole (slow)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_checks import check_discrete_only, check_learns_cartpole, two_seed_run

import jaxrl.envs as E
from jaxrl import loops
from jaxrl.agents.value import pqn
from jaxrl.core import Transition
from jaxrl.nets import DiscreteQ

ENV = E.make("cartpole")
T, B = 6, 4


def _rollout(seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    term = jnp.zeros((T, B), bool).at[2, 0].set(True).at[4, 3].set(True)
    trunc = jnp.zeros((T, B), bool).at[1, 1].set(True)
    return Transition(
        obs=jax.random.normal(k[0], (T, B, 4)),
        action=jax.random.randint(k[1], (T, B), 0, 2),
        reward=jax.random.normal(k[2], (T, B)),
        terminated=term,
        truncated=trunc,
        next_obs=jax.random.normal(k[3], (T, B, 4)),
    )


def _reference_targets(r, next_v, term, trunc, gamma, lam):
    """Peng's Q(lambda) backward recursion per env in float64."""
    out = np.zeros_like(r)
    for b in range(r.shape[1]):
        g = next_v[-1, b]
        for t in reversed(range(r.shape[0])):
            end = term[t, b] or trunc[t, b] or t == r.shape[0] - 1
            tail = next_v[t, b] if end else (1 - lam) * next_v[t, b] + lam * g
            g = r[t, b] + gamma * (0.0 if term[t, b] else 1.0) * tail
            out[t, b] = g
    return out


def test_targets_and_loss_match_float64_reference():
    config = pqn.Config(hidden=(16, 16), num_envs=B, rollout_len=T, num_epochs=1, num_minibatches=1)
    schedule = loops.make_schedule(T * B * 10, T * B, 1)
    hp = pqn.SPEC.default_hparams(gamma=0.9, lam=0.7, reward_scale=0.5)
    agent = pqn.make_agent(config, ENV, hp, schedule)
    state = agent.init(jax.random.PRNGKey(0))
    batch = _rollout()
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(1))

    net = DiscreteQ(2, config.hidden, config.activation, layer_norm=True)
    f64 = lambda x: np.asarray(x, np.float64)  # noqa: E731
    next_v = f64(net.apply(state.params, batch.next_obs)).max(-1)
    r = 0.5 * f64(batch.reward)
    ref = _reference_targets(
        r, next_v, np.asarray(batch.terminated), np.asarray(batch.truncated), 0.9, 0.7
    )
    q = f64(net.apply(state.params, batch.obs))
    q_sa = np.take_along_axis(q, np.asarray(batch.action)[..., None], -1)[..., 0]
    # One epoch of one minibatch: the loss is over the whole rollout, before the step.
    np.testing.assert_allclose(
        float(metrics["td_loss"]), 0.5 * np.mean((q_sa - ref) ** 2), rtol=1e-5
    )
    np.testing.assert_allclose(float(metrics["target_mean"]), ref.mean(), rtol=1e-5, atol=1e-6)
    targets = pqn.q_lambda_targets(batch, net.apply(state.params, batch.next_obs), 0.9, 0.7, 0.5)
    np.testing.assert_allclose(targets, ref, rtol=1e-5, atol=1e-5)
    assert int(new.updates) == 1 and int(new.step) == 1
    assert "LayerNorm_0" in state.params["params"]["MLP_0"]


def test_epsilon_decays_over_the_loop_iterations():
    config = pqn.Config(hidden=(8,))
    schedule = loops.make_schedule(10 * 2048, 2048, 1)  # 10 iterations
    agent = pqn.make_agent(
        config, ENV, pqn.SPEC.default_hparams(exploration_fraction=0.5), schedule
    )
    state = agent.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (4000, 4))
    greedy, _ = agent.act(state, obs, jax.random.PRNGKey(2), explore=False)

    def agreement(updates):
        action, _ = agent.act(state.replace(updates=jnp.int32(updates)), obs, jax.random.PRNGKey(3))
        return float(jnp.mean(action == greedy))

    # Epsilon 1 at the start (half the random actions agree), 0.2 from iteration 5 on.
    assert abs(agreement(0) - 0.5) < 0.04
    assert abs(agreement(5) - 0.9) < 0.03 and abs(agreement(9) - 0.9) < 0.03


def test_train_is_deterministic_and_vmaps_over_seeds():
    config = pqn.Config(
        total_steps=512,
        num_envs=8,
        rollout_len=16,
        num_minibatches=4,
        num_epochs=2,
        hidden=(16,),
        num_evals=2,
        num_eval_envs=2,
    )
    states = two_seed_run(pqn.SPEC, config, ENV)
    np.testing.assert_array_equal(states.updates, [4, 4])
    np.testing.assert_array_equal(states.step, [32, 32])  # 4 x 2 epochs x 4 minibatches


def test_registered_and_rejects_bad_configs():
    check_discrete_only(pqn.SPEC)
    with pytest.raises(ValueError, match="pqn: num_envs \\* rollout_len = 96 must be divisible"):
        pqn.SPEC.validate(pqn.Config(num_envs=3, rollout_len=32, num_minibatches=5), ENV)
    with pytest.raises(ValueError, match="pqn: num_epochs must be positive"):
        pqn.SPEC.validate(pqn.Config(num_epochs=0), ENV)


@pytest.mark.slow  # ~30 s on 2 cores
def test_pqn_cartpole_reaches_400_within_200k_steps():
    check_learns_cartpole(pqn.SPEC, 200_000, 400)
