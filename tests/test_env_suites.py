"""Generic adapters for the Jumanji (``jumanji/<id>``) and NAVIX (``navix/<id>``) suites."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E


def _rollout(env, key, actions):
    """Steps ``env`` from ``reset(key)`` through ``actions`` under jit; returns per-step
    ``(reward, terminated, truncated)``, each ``[T]``."""

    def run(key, actions):
        def body(state, a):
            state = env.step(state, a)
            return state, (state.reward, state.terminated, state.truncated)

        return jax.lax.scan(body, env.reset(key), actions)[1]

    out = jax.jit(run)(key, jnp.asarray(actions, jnp.int32))
    return tuple(np.asarray(x) for x in out)


def _check_jit_vmap(env, obs_shape, num_actions):
    assert env.observation_spec.shape == obs_shape
    assert env.action_spec.discrete and env.action_spec.num_actions == num_actions
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    actions = jnp.arange(3, dtype=jnp.int32) % num_actions
    state = jax.jit(jax.vmap(lambda k, a: env.step(env.reset(k), a)))(keys, actions)
    assert state.obs.shape == (3, *obs_shape) and state.obs.dtype == jnp.float32
    assert state.reward.shape == (3,) and state.reward.dtype == jnp.float32
    assert state.terminated.dtype == jnp.bool_ and state.truncated.dtype == jnp.bool_
    assert np.isfinite(np.asarray(state.obs)).all()


# --- Jumanji ------------------------------------------------------------------------


def test_jumanji_snake_jit_vmap_and_specs():
    pytest.importorskip("jumanji")
    env = E.make("jumanji/Snake-v1")
    # grid [12, 12, 5] + step_count + action_mask [4], flattened.
    _check_jit_vmap(env, (12 * 12 * 5 + 1 + 4,), 4)
    assert env.max_episode_steps == 4000  # Snake's own time_limit, lifted.


def test_jumanji_termination_vs_truncation():
    pytest.importorskip("jumanji")
    key = jax.random.PRNGKey(0)  # head starts at row 4 of 12.
    # Moving up: rows 3, 2, 1, 0, then the wall: a real end (discount 0) on step 5.
    env = E.make("jumanji/Snake-v1", episode_length=None)
    _, term, trunc = _rollout(env, key, [0] * 5)
    np.testing.assert_array_equal(term, [0, 0, 0, 0, 1])
    assert not trunc.any()
    # Snake's own time_limit (3 steps) ends with discount 0 too, yet it is a truncation.
    short = E.make("jumanji/Snake-v1", episode_length=None, time_limit=3)
    assert short.max_episode_steps == 3
    _, term, trunc = _rollout(short, key, [0] * 3)
    np.testing.assert_array_equal(trunc, [0, 0, 1])
    assert not term.any()


def test_jumanji_multidiscrete_flattens_and_continuous_raises():
    pytest.importorskip("jumanji")
    from jaxrl.envs import jumanji_env

    env = jumanji_env.make("Minesweeper-v0")  # MultiDiscreteArray [10, 10]
    assert env.action_spec.num_actions == 100
    np.testing.assert_array_equal(env._action(jnp.int32(23)), [2, 3])
    with pytest.raises(ValueError, match="MultiCVRP-v0.*BoundedArray"):
        jumanji_env.make("MultiCVRP-v0")
    with pytest.raises(ValueError, match="JobShop-v0.*int32"):
        jumanji_env.make("JobShop-v0")


def test_jumanji_unknown_id():
    pytest.importorskip("jumanji")
    from jaxrl.envs import jumanji_env

    with pytest.raises(ValueError, match="unknown environment 'jumanji/Nope-v0'"):
        E.make("jumanji/Nope-v0")
    with pytest.raises(ValueError, match="unknown jumanji env 'Nope-v0'; known: .*Snake-v1"):
        jumanji_env.make("Nope-v0")


# --- NAVIX --------------------------------------------------------------------------


def test_navix_empty_jit_vmap_and_specs():
    pytest.importorskip("navix")
    env = E.make("navix/Navix-Empty-5x5-v0")
    _check_jit_vmap(env, (5 * 5 * 3,), 7)  # symbolic [5, 5, 3], flattened.
    assert env.max_episode_steps == 100  # navix.make's default, lifted.


def test_navix_termination_vs_truncation():
    pytest.importorskip("navix")
    key = jax.random.PRNGKey(0)
    # Agent at (1, 1) facing east, goal at (3, 3): forward, forward, turn right,
    # forward, forward reaches the goal, a termination with reward 1.
    env = E.make("navix/Navix-Empty-5x5-v0")
    reward, term, trunc = _rollout(env, key, [2, 2, 1, 2, 2])
    np.testing.assert_array_equal(term, [0, 0, 0, 0, 1])
    np.testing.assert_allclose(reward, [0, 0, 0, 0, 1])
    assert not trunc.any()
    # Turning in place with a 3-step limit: truncation at step 3, never termination.
    short = E.make("navix/Navix-Empty-5x5-v0", max_steps=3)
    assert short.max_episode_steps == 3
    _, term, trunc = _rollout(short, key, [0] * 4)
    np.testing.assert_array_equal(trunc[:3], [0, 0, 1])
    assert not term.any()
    # The limit lives in EpisodeLimit: the adapter alone never truncates.
    _, _, trunc = _rollout(short.unwrapped, key, [0] * 4)
    assert not trunc.any()


def test_navix_unknown_id():
    pytest.importorskip("navix")
    from jaxrl.envs import navix_env

    with pytest.raises(ValueError, match="unknown environment 'navix/Nope-v0'"):
        E.make("navix/Nope-v0")
    with pytest.raises(ValueError, match="unknown navix env 'Nope-v0'; known: .*Navix-Empty"):
        navix_env.make("Nope-v0")


def test_known_names_lists_both_suites_and_skips_a_missing_one(monkeypatch):
    # Only the two new families and a missing one (importing every family is slow).
    families = {k: E._FAMILIES[k] for k in ("jumanji", "navix")}
    monkeypatch.setattr(E, "_FAMILIES", {**families, "nosuchsuite": "jaxrl.envs._no_such"})
    names = E.known_names()
    assert "cartpole" in names and not any(n.startswith("nosuchsuite/") for n in names)
    assert E.families()["nosuchsuite"] == []
    if importlib.util.find_spec("jumanji"):
        assert {"jumanji/Snake-v1", "jumanji/Maze-v0", "jumanji/Tetris-v0"} <= set(names)
    if importlib.util.find_spec("navix"):
        assert {"navix/Navix-Empty-5x5-v0", "navix/Navix-DoorKey-8x8-v0"} <= set(names)


@pytest.mark.slow
def test_ppo_learns_navix_empty_8x8():
    # Sparse reward 1 at the goal within 100 steps. A uniform random policy reaches it
    # in 3.9% of 512 episodes (mean return 0.039). PPO's sampling policy reaches it in
    # every training episode by ~50k steps (CLI, 4 seeds: train_return 1.0 at 82k).
    # The greedy policy is brittle here (the start is fixed, so greedy evaluation is all
    # 0 or all 1; it often loops), so the test reads the sampling policy's return.
    pytest.importorskip("navix")
    from jaxrl.agents.on_policy import ppo

    cfg = ppo.Config(total_steps=100_000, num_envs=16, rollout_len=64, num_evals=4)
    train = jax.jit(ppo.SPEC.make_train(cfg, E.make("navix/Navix-Empty-8x8-v0")))
    _, m = train(jax.random.PRNGKey(0), ppo.SPEC.default_hparams())
    print("ppo navix Empty-8x8 train / eval returns:", m["train_return"], m["eval_return"])
    assert bool(m["finite"].all())
    assert float(m["train_return"][-1]) >= 0.9, m["train_return"]
