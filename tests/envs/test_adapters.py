"""Tests of the gymnax, Brax (MJX) and MuJoCo Playground adapters.

MJX envs take ~20 s to compile on CPU, so each fast MJX test compiles once:
a jitted batched rollout that is run twice to check determinism.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs import (
    AutoReset,
    Box,
    Discrete,
    Env,
    EpisodeLimit,
    VmapWrapper,
    brax_env,
    gymnax_env,
    make,
    playground_env,
)

# Documented sizes of the Brax envs: (observation size, action size).
BRAX_SIZES = {
    "inverted_pendulum": (4, 1),
    "hopper": (11, 3),
    "halfcheetah": (17, 6),
    "ant": (27, 8),
}


def batched_rollout(env: Env, num_envs: int, steps: int) -> Callable:
    """A jitted ``key -> (final state, (obs, reward, terminated, truncated, last_length))``
    of ``steps`` random-action steps of ``VmapWrapper(AutoReset(env), num_envs)``;
    every output has leading axes ``[steps, num_envs]``."""
    batched = VmapWrapper(AutoReset(env), num_envs)

    def body(state, key):
        actions = jax.vmap(batched.action_spec.sample)(jax.random.split(key, num_envs))
        state = batched.step(state, actions)
        out = (state.obs, state.reward, state.terminated, state.truncated)
        return state, out + (state.info["last_length"],)

    def rollout(key):
        reset_key, step_key = jax.random.split(key)
        return jax.lax.scan(body, batched.reset(reset_key), jax.random.split(step_key, steps))

    return jax.jit(rollout)


def check_rollout(env: Env, num_envs: int = 2, steps: int = 5) -> None:
    """Shapes, dtypes and finiteness of a batched rollout, and bitwise determinism."""
    rollout = batched_rollout(env, num_envs, steps)
    key = jax.random.key(0)
    out = rollout(key)
    _, (obs, reward, terminated, truncated, _) = out
    assert obs.shape == (steps, num_envs, *env.observation_spec.shape)
    assert obs.dtype == jnp.float32 and reward.dtype == jnp.float32
    assert reward.shape == terminated.shape == truncated.shape == (steps, num_envs)
    assert terminated.dtype == truncated.dtype == jnp.bool_
    assert bool(jnp.isfinite(obs).all()) and bool(jnp.isfinite(reward).all())
    first, again = _leaves(out), _leaves(rollout(key))
    assert len(first) == len(again)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other_obs, other_reward = rollout(jax.random.key(1))[1][:2]
    assert not (np.array_equal(obs, other_obs) and np.array_equal(reward, other_reward))


def _leaves(tree) -> list[np.ndarray]:
    """Leaves of ``tree`` as numpy arrays, PRNG keys as their raw key data."""

    def raw(x):
        return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    return [np.asarray(raw(x)) for x in jax.tree.leaves(tree)]


# --------------------------------------------------------------------------- gymnax


@pytest.mark.parametrize(
    "env_id", ["CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "FrozenLake-misc"]
)
def test_gymnax_specs_match_gymnax(env_id):
    env = gymnax_env.make(env_id)
    raw, params = gymnax.make(env_id)
    obs_space, act_space = raw.observation_space(params), raw.action_space(params)
    if hasattr(obs_space, "n"):  # Discrete observations are one-hot encoded.
        assert env.observation_spec.shape == (obs_space.n,)
    else:
        assert env.observation_spec.shape == tuple(obs_space.shape)
    if hasattr(act_space, "n"):
        assert env.action_spec == Discrete(act_space.n)
    else:
        assert isinstance(env.action_spec, Box)
        assert env.action_spec.shape == tuple(act_space.shape)
        np.testing.assert_allclose(env.action_spec.low, act_space.low)
        np.testing.assert_allclose(env.action_spec.high, act_space.high)
    assert env.max_episode_steps == params.max_steps_in_episode
    assert env_id in gymnax_env.names()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "FrozenLake-misc"])
def test_gymnax_rollout(env_id):
    check_rollout(make(f"gymnax/{env_id}"), num_envs=4, steps=20)


def test_gymnax_cartpole_matches_gymnax_step_env():
    """Same obs/reward as gymnax's own step_env fed the same per-step keys."""
    env = gymnax_env.make("CartPole-v1")
    state = env.reset(jax.random.key(3))
    raw_state = state.inner
    for action in [1, 0, 1, 1]:
        _, sub = jax.random.split(state.key)
        obs, raw_state, reward, done, _ = env.env.step_env(sub, raw_state, action, env.params)
        state = env.step(state, jnp.int32(action))
        np.testing.assert_array_equal(np.asarray(state.obs), np.asarray(obs, np.float32))
        assert float(state.reward) == float(reward) and bool(state.terminated) == bool(done)


def test_gymnax_time_limit_is_not_termination():
    """At gymnax's max_steps_in_episode the adapter reports neither flag; EpisodeLimit truncates."""
    env = make("gymnax/CartPole-v1")
    assert isinstance(env, EpisodeLimit) and env.max_episode_steps == 500
    state = env.reset(jax.random.key(0))
    # One step short of gymnax's 500-step limit, pole upright.
    state = state.replace(
        inner=state.inner.replace(time=jnp.asarray(499, state.inner.time.dtype)),
        info={**state.info, "episode_step": jnp.asarray(499, jnp.int32)},
    )
    raw = env.unwrapped.step(state, jnp.int32(1))
    assert not bool(raw.terminated) and not bool(raw.truncated)
    limited = env.step(state, jnp.int32(1))
    assert bool(limited.truncated) and not bool(limited.terminated)
    # Without our limit the episode runs past gymnax's limit untruncated.
    past = env.unwrapped.step(raw, jnp.int32(0))
    assert int(past.inner.time) == 501 and not bool(past.done)


def test_gymnax_cartpole_terminated_vs_truncated():
    limit, num_envs, steps = 20, 16, 150
    env = make("gymnax/CartPole-v1", episode_length=limit)
    _, (_, _, terminated, truncated, last_length) = batched_rollout(env, num_envs, steps)(
        jax.random.key(0)
    )
    terminated, truncated = np.asarray(terminated), np.asarray(truncated)
    last_length = np.asarray(last_length)
    assert terminated.any() and truncated.any()  # a random policy meets both
    assert not (terminated & truncated).any()
    assert (last_length[truncated] == limit).all()
    assert (last_length[terminated] <= limit).all() and (last_length <= limit).all()


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [n for n in gymnax.registered_envs if not n.startswith("MNIST")])
def test_gymnax_all_envs(env_id):
    check_rollout(make(f"gymnax/{env_id}"), num_envs=3, steps=10)


# --------------------------------------------------------------------------- brax


def test_brax_names():
    assert set(BRAX_SIZES) <= set(brax_env.names())
    assert "fast" not in brax_env.names()


def test_brax_inverted_pendulum():
    env = make("brax/inverted_pendulum")
    raw = env.unwrapped
    assert isinstance(env, EpisodeLimit) and env.max_episode_steps == 1000
    obs_size, act_size = BRAX_SIZES["inverted_pendulum"]
    assert env.observation_spec == Box((obs_size,))
    assert env.action_spec == Box((act_size,), -1.0, 1.0)
    assert raw.env.action_size == act_size and raw.env.backend == "mjx"
    check_rollout(env, num_envs=2, steps=5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hopper", "halfcheetah", "ant"])
def test_brax_heavy_envs(name):
    env = brax_env.make(name)
    obs_size, act_size = BRAX_SIZES[name]
    assert env.observation_spec.shape == (obs_size,) and env.action_spec.shape == (act_size,)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jax.random.key(0))
    for _ in range(3):
        state = step(state, jnp.ones(act_size))
        assert state.obs.shape == (obs_size,) and bool(jnp.isfinite(state.obs).all())
        assert state.reward.dtype == jnp.float32 and not bool(state.truncated)


@pytest.mark.slow
def test_brax_clips_actions():
    env = brax_env.make("inverted_pendulum")
    state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    np.testing.assert_array_equal(step(state, jnp.full(1, 5.0)).obs, step(state, jnp.ones(1)).obs)


# --------------------------------------------------------------------------- playground


def test_playground_cartpole_balance():
    env = make("playground/CartpoleBalance")
    raw = env.unwrapped
    assert isinstance(env, EpisodeLimit) and env.max_episode_steps == 1000
    assert env.observation_spec == Box((raw.env.observation_size,))
    assert env.observation_spec.shape == (5,)  # cart position, cos, sin, 2 velocities
    assert env.action_spec == Box((raw.env.action_size,), -1.0, 1.0)
    assert raw.env.mjx_model.impl.value == "jax"
    check_rollout(env, num_envs=2, steps=5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["CheetahRun", "WalkerWalk"])
def test_playground_heavy_envs(name):
    env = playground_env.make(name)
    assert env.max_episode_steps == 1000
    assert env.observation_spec.shape == (env.env.observation_size,)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jax.random.key(0))
    for _ in range(3):
        state = step(state, jnp.ones(env.action_spec.shape))
        assert state.obs.shape == env.observation_spec.shape
        assert bool(jnp.isfinite(state.obs).all()) and not bool(state.truncated)


def test_playground_names():
    assert "CartpoleBalance" in playground_env.names() and "CheetahRun" in playground_env.names()


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    "name", ["brax/nosuch", "gymnax/NoSuch-v0", "playground/NoSuch", "nosuch/x", "brax/fast"]
)
def test_unknown_id_raises(name):
    with pytest.raises(ValueError, match="unknown environment") as err:
        make(name)
    assert "cartpole" in str(err.value) and "brax/<id>" in str(err.value)


@pytest.mark.parametrize(
    "module, name, known",
    [
        (brax_env, "nosuch", "inverted_pendulum"),
        (gymnax_env, "NoSuch", "CartPole-v1"),
        (playground_env, "NoSuch", "CartpoleBalance"),
    ],
)
def test_adapter_make_unknown_lists_known(module, name, known):
    with pytest.raises(ValueError, match=known):
        module.make(name)
