"""Built-in envs and wrappers: determinism, auto-reset and truncation semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E


def rollout(env, key, steps, action_fn):
    state = env.reset(key)

    def body(state, k):
        nxt = env.step(state, action_fn(k, state))
        return nxt, (
            nxt.obs,
            nxt.reward,
            nxt.terminated,
            nxt.truncated,
            nxt.info["final_obs"],
            nxt.info["episode_step"],
        )

    return jax.lax.scan(body, state, jax.random.split(jax.random.fold_in(key, 1), steps))[1]


def auto_reset_batch(env, n, order):
    """Both supported compositions: reset per env (``inner``) or over the batch (``outer``)."""
    if order == "inner":
        return E.VmapWrapper(E.AutoReset(env), n)
    return E.AutoReset(E.VmapWrapper(env, n))


def random_actions(env, n):
    return lambda k, s: jax.vmap(env.action_spec.sample)(jax.random.split(k, n))


@pytest.mark.parametrize("name", ["cartpole", "pendulum"])
def test_same_key_same_trajectory(name):
    env = E.VmapWrapper(E.AutoReset(E.make(name)), 3)
    f = jax.jit(lambda k: rollout(env, k, 300, random_actions(env, 3)))
    a, b = f(jax.random.PRNGKey(7)), f(jax.random.PRNGKey(7))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=False):
        np.testing.assert_array_equal(x, y)
    c = f(jax.random.PRNGKey(8))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("order", ["inner", "outer"])
def test_pendulum_truncates_at_200_and_never_terminates(order):
    env = auto_reset_batch(E.make("pendulum"), 2, order)
    obs, rew, term, trunc, final_obs, ep_step = rollout(
        env, jax.random.PRNGKey(0), 450, random_actions(env, 2)
    )
    assert not term.any()
    steps = np.nonzero(np.asarray(trunc[:, 0]))[0]
    np.testing.assert_array_equal(steps, [199, 399])
    # After the auto-reset the step counter restarts, and obs is the new episode's first obs.
    assert ep_step[199, 0] == 0 and ep_step[200, 0] == 1
    assert not np.allclose(obs[199, 0], final_obs[199, 0])
    assert np.all(rew <= 0) and np.all(rew >= -16.3)


@pytest.mark.parametrize("order", ["inner", "outer"])
def test_cartpole_terminates_and_auto_resets(order):
    env = auto_reset_batch(E.make("cartpole"), 4, order)
    push_right = lambda k, s: jnp.ones(4, jnp.int32)
    obs, rew, term, trunc, final_obs, ep_step = rollout(env, jax.random.PRNGKey(0), 100, push_right)
    assert term.any() and not trunc.any()
    t, b = map(int, np.argwhere(np.asarray(term))[0])
    # The terminal observation is out of bounds; the returned one is a fresh reset.
    x, theta = final_obs[t, b, 0], final_obs[t, b, 2]
    assert abs(x) > 2.4 or abs(theta) > 12 * 2 * np.pi / 360
    assert np.all(np.abs(obs[t, b]) <= 0.05)
    np.testing.assert_array_equal(rew, 1.0)


def test_episode_limit_never_sets_both_flags():
    # A limit of 1 step on cartpole: every step truncates unless it terminates.
    env = E.VmapWrapper(E.AutoReset(E.make("cartpole", episode_length=1)), 8)
    _, _, term, trunc, _, _ = rollout(env, jax.random.PRNGKey(1), 50, random_actions(env, 8))
    assert not np.any(term & trunc)
    assert np.all(term | trunc)


@pytest.mark.parametrize("order", ["inner", "outer"])
def test_auto_reset_episode_statistics(order):
    env = auto_reset_batch(E.make("pendulum", episode_length=10), 1, order)
    state = env.reset(jax.random.PRNGKey(0))
    total = 0.0
    for _ in range(10):
        state = env.step(state, jnp.zeros((1, 1)))
        total += float(state.reward[0])
    assert int(state.info["last_length"][0]) == 10
    np.testing.assert_allclose(state.info["last_return"][0], total, rtol=1e-5)
    assert float(state.info["episode_return"][0]) == 0.0


@pytest.mark.parametrize("order", ["inner", "outer"])
def test_an_envs_stream_does_not_depend_on_its_neighbours(order):
    # Env 0 pushes right in both runs; env 1 differs, so it resets at other steps.
    env = auto_reset_batch(E.make("cartpole"), 2, order)
    run = jax.jit(lambda k, a: rollout(env, k, 120, lambda _k, _s: a))
    key = jax.random.PRNGKey(3)
    a = run(key, jnp.array([1, 1], jnp.int32))
    b = run(key, jnp.array([1, 0], jnp.int32))
    assert np.asarray(a[2][:, 0]).sum() >= 3  # env 0 finished several episodes
    assert not np.array_equal(a[2][:, 1], b[2][:, 1])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[:, 0], y[:, 0])


def test_action_repeat_sums_rewards():
    base = E.make("cartpole")
    env = E.ActionRepeat(base, 3)
    s0 = env.reset(jax.random.PRNGKey(0))
    s1 = env.step(s0, jnp.int32(1))
    ref = s0
    for _ in range(3):
        ref = base.step(ref, jnp.int32(1))
    np.testing.assert_allclose(s1.obs, ref.obs, rtol=1e-6)
    assert float(s1.reward) == 3.0


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_reward_scale_multiplies_rewards_only(name):
    """``make(name, reward_scale=c)``: rewards times ``c``, the rest bitwise the same, under
    jit and a vmap over keys, through auto-reset."""
    plain = E.AutoReset(E.make(name))
    scaled = E.AutoReset(E.make(name, reward_scale=10.0))
    assert isinstance(scaled.env.env, E.RewardScale)
    assert scaled.action_spec == plain.action_spec
    assert scaled.observation_spec == plain.observation_spec
    assert scaled.max_episode_steps == plain.max_episode_steps
    keys = jax.random.split(jax.random.PRNGKey(3), 4)

    def run(env):
        def one(key):
            return rollout(env, key, 250, lambda k, s: env.action_spec.sample(k))

        return jax.jit(jax.vmap(one))(keys)

    a, b = run(plain), run(scaled)
    np.testing.assert_allclose(b[1], 10.0 * np.asarray(a[1]), rtol=1e-6)
    for x, y in zip(a[:1] + a[2:], b[:1] + b[2:], strict=True):
        np.testing.assert_array_equal(x, y)
    assert not isinstance(E.make(name, reward_scale=None).env, E.RewardScale)


def test_normalize_observation_tracks_batch_statistics():
    env = E.NormalizeObservation(E.VmapWrapper(E.AutoReset(E.make("pendulum")), 64))
    state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    raw = [np.asarray(state.info["raw_obs"])]
    for _i in range(50):
        state = step(state, jnp.full((64, 1), 2.0))
        raw.append(np.asarray(state.info["raw_obs"]))
    raw = np.concatenate(raw)
    stats = state.info["obs_stats"]
    np.testing.assert_allclose(stats.mean, raw.mean(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(stats.var, raw.var(0), rtol=1e-3, atol=1e-4)
    assert np.all(np.abs(state.obs) <= 10.0)


def test_unknown_env_lists_known_names():
    with pytest.raises(ValueError, match="cartpole"):
        E.make("nosuchenv")
    with pytest.raises(ValueError, match="unknown environment"):
        E.make("gymnax/NoSuchEnv-v0")


def test_specs():
    cp, pd = E.make("cartpole"), E.make("pendulum")
    assert cp.action_spec.discrete and cp.action_spec.num_actions == 2
    assert cp.observation_spec.shape == (4,) and cp.max_episode_steps == 500
    assert not pd.action_spec.discrete and pd.action_spec.shape == (1,)
    assert pd.action_spec.low == -2.0 and pd.action_spec.high == 2.0


def test_capabilities_are_asked_for_by_type():
    """An env offers typed capabilities; a missing one names the env and who offers it."""
    maze = E.make("pointmaze")
    assert isinstance(E.capability(maze, E.ScriptedData), E.ScriptedData)
    assert E.make("cartpole").unwrapped.capabilities() == ()
    with pytest.raises(ValueError, match=r"CartPole offers no .*LinearFeatures.*linear/<name>"):
        E.capability(E.make("cartpole"), E.LinearFeatures)
    with pytest.raises(ValueError, match="pointmaze; pass a file"):
        E.capability(E.make("pendulum"), E.ScriptedData, "pass a file")
