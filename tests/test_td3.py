"""TD3: target policy smoothing against a NumPy float64 reference, delayed actor and target
updates, jit/vmap, bad input, and learning pendulum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import agents, sweep
from jaxrl.agents.actor_critic import common as ac
from jaxrl.agents.actor_critic import td3
from jaxrl.core import Transition
from jaxrl.nets import QNetwork, TanhPolicy

ENV = E.make("pendulum")
CFG = td3.Config(hidden=(16, 16), batch_size=8)


def _agent(**hparams):
    return td3.make_agent(CFG, ENV, td3.SPEC.default_hparams(**hparams))


def _batch(n=8, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    return Transition(
        obs=jax.random.normal(k[0], (n, 3)),
        action=jax.random.uniform(k[1], (n, 1), minval=-2.0, maxval=2.0),
        reward=jax.random.normal(k[2], (n,)),
        terminated=jnp.arange(n) % 3 == 0,
        truncated=jnp.zeros(n, bool),
        next_obs=jax.random.normal(k[0], (n, 3)) + 1.0,
    )


def _leaves_equal(a, b) -> bool:
    return all(bool(jnp.all(x == y)) for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True))


def test_critic_target_matches_float64_reference():
    """With tau=1 the targets equal the nets after the first (policy) update; the second
    update's critic loss is then checked against a float64 target computed by hand."""
    agent = _agent(tau=1.0, gamma=0.9, policy_noise=0.3, noise_clip=0.2)
    state = agent.init(jax.random.PRNGKey(0))
    s1, _ = jax.jit(agent.update)(state, _batch(), jax.random.PRNGKey(1))
    assert _leaves_equal(s1.target_actor_params, s1.actor_params)
    assert _leaves_equal(s1.target_critic_params, s1.critic_params)

    batch, key = _batch(seed=2), jax.random.PRNGKey(3)
    _, metrics = jax.jit(agent.update)(s1, batch, key)
    actor = TanhPolicy(1, CFG.hidden, CFG.activation)
    critic = ac.twin(QNetwork(CFG.hidden, CFG.activation, False))
    noise = np.clip(0.3 * np.asarray(jax.random.normal(key, (8, 1)), np.float64), -0.2, 0.2)
    mu = np.asarray(actor.apply(s1.target_actor_params, batch.next_obs), np.float64)
    next_a = np.clip(mu + noise, -1.0, 1.0)
    q_next = np.asarray(
        critic.apply(s1.target_critic_params, batch.next_obs, jnp.float32(next_a)), np.float64
    )
    done = np.asarray(batch.terminated, np.float64)
    y = np.asarray(batch.reward, np.float64) + 0.9 * (1 - done) * q_next.min(0)
    a = np.asarray(batch.action, np.float64) / 2.0  # pendulum actions in [-2, 2]
    q = np.asarray(critic.apply(s1.critic_params, batch.obs, jnp.float32(a)), np.float64)
    loss = np.mean(np.sum((q - y[None]) ** 2, 0))
    np.testing.assert_allclose(float(metrics["critic_loss"]), loss, rtol=1e-4)


def test_actor_and_targets_move_only_every_policy_delay_updates():
    agent = _agent()
    s0 = agent.init(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    s1, m1 = update(s0, _batch(), jax.random.PRNGKey(1))
    s2, m2 = update(s1, _batch(seed=1), jax.random.PRNGKey(2))
    assert not _leaves_equal(s1.actor_params, s0.actor_params)  # step 0: a policy step
    assert not _leaves_equal(s1.target_critic_params, s0.target_critic_params)
    assert _leaves_equal(s2.actor_params, s1.actor_params)  # step 1: critics only
    assert _leaves_equal(s2.target_actor_params, s1.target_actor_params)
    assert _leaves_equal(s2.target_critic_params, s1.target_critic_params)
    assert not _leaves_equal(s2.critic_params, s1.critic_params)
    assert float(m2["actor_loss"]) == 0.0 and float(m1["actor_loss"]) != 0.0
    assert int(s2.step) == 2


def test_act_is_deterministic_without_exploration_and_within_bounds():
    agent = _agent(explore_noise=0.5)
    state = agent.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    greedy1, _ = agent.act(state, obs, jax.random.PRNGKey(2), explore=False)
    greedy2, _ = agent.act(state, obs, jax.random.PRNGKey(3), explore=False)
    noisy, _ = agent.act(state, obs, jax.random.PRNGKey(2), explore=True)
    np.testing.assert_array_equal(greedy1, greedy2)
    assert not np.allclose(noisy, greedy1)
    assert noisy.shape == (64, 1) and float(jnp.max(jnp.abs(noisy))) <= 2.0


def test_registered_and_rejects_bad_input():
    spec = agents.get("td3")
    assert spec is td3.SPEC and spec.action_kinds == ("continuous",)
    with pytest.raises(ValueError, match="td3: policy_delay must be positive"):
        spec.validate(td3.Config(policy_delay=0), ENV)
    with pytest.raises(ValueError, match="continuous"):
        spec.make_train(td3.Config(), E.make("cartpole"))


def test_train_is_deterministic_and_vmaps_over_seeds():
    cfg = td3.Config(total_steps=600, warmup_steps=200, hidden=(16, 16), batch_size=32, num_evals=2)
    train = td3.SPEC.make_train(cfg, ENV)
    hp = td3.SPEC.default_hparams()
    keys = sweep.seed_keys(0, 2)
    states, metrics = sweep.over_seeds(train, 2)(keys, hp)
    assert metrics["eval_return"].shape == (2, 2) and bool(np.all(metrics["finite"]))
    # Updates start once warmup_steps are stored: iterations 199..599.
    np.testing.assert_array_equal(states.step, [401, 401])
    run = jax.jit(train)
    a, b = run(keys[0], hp), run(keys[0], hp)
    assert _leaves_equal(a, b)  # a run is a function of its key


@pytest.mark.slow  # ~2 minutes on 2 cores; the default suite keeps TD3's maths and determinism
def test_td3_pendulum_reaches_minus_250_within_20k_steps():
    config = td3.Config(total_steps=20_000, **td3.SPEC.presets["pendulum"])
    train = td3.SPEC.make_train(config, ENV)
    _, metrics = sweep.over_seeds(train, 4)(sweep.seed_keys(0, 4), td3.SPEC.default_hparams())
    final = np.asarray(metrics["eval_return"])[:, -1]
    print("td3 pendulum 20k final returns:", final)
    assert bool(np.all(metrics["finite"]))
    assert final.mean() >= -250, final
