"""``ale/<game>``: Atari inside the compiled program (ale-py's XLA vector env).

The reference is ale-py's ``AtariVectorEnv`` stepped from Python with the same settings
and seeds (its next-step resets mapped onto the protocol's same-step ones)."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs, runner
from jaxrl.envs import AutoReset, VmapWrapper, ale_env

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ale_py") is None, reason="needs ale-py (extra atari)"
)

STEPS, FRAMES = 14, 20  # episodes truncated after 5 agent steps: several resets


def _rollout(env, keys, actions):
    """``AutoReset(VmapWrapper(env))`` under a vmap over seeds: ``keys [S, 2]``,
    ``actions [T, S, E]`` -> reset state and per-step states (leaves ``[S, T, E, ...]``)."""
    train_env = AutoReset(VmapWrapper(env, actions.shape[2]))

    def one(key, acts):
        first = train_env.reset(key)

        def body(state, a):
            nxt = train_env.step(state, a)
            return nxt, nxt

        return first, jax.lax.scan(body, first, acts)[1]

    return jax.jit(jax.vmap(one, in_axes=(0, 1)))(keys, actions)


def test_ale_env_equals_the_vector_env_stepped_from_python():
    from ale_py.vector_env import AtariVectorEnv

    env = envs.make("ale/Breakout", episode_length=FRAMES // 4, stack=2)
    assert env.external_state and env.max_episode_steps == FRAMES // 4
    num_seeds, num_envs = 2, 3
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.action_spec.num_actions, (STEPS, num_seeds, num_envs))
    keys = jax.random.split(jax.random.PRNGKey(3), num_seeds)
    first, states = _rollout(env, keys, jnp.asarray(actions, jnp.int32))

    # The same pool from Python: seeds as the env draws them, flattened [S * E].
    env_keys = jax.vmap(lambda k: jax.random.split(k, num_envs))(keys).reshape(-1, 2)
    seeds = np.asarray(jax.vmap(lambda k: jax.random.bits(k, (1,), jnp.uint32)[0] >> 1)(env_keys))
    ref = AtariVectorEnv(
        "breakout", num_seeds * num_envs, stack_num=2, max_num_frames_per_episode=FRAMES,
        noop_max=31, reward_clipping=False, use_fire_reset=False, episodic_life=False,
    )  # fmt: skip
    n = num_seeds * num_envs

    def layout(raw):  # [n, stack, H, W] -> [S, E, H, W, stack]
        return np.moveaxis(raw, 1, -1).reshape(num_seeds, num_envs, 84, 84, 2)

    obs, _ = ref.reset(seed=seeds.astype(np.int64))
    np.testing.assert_array_equal(np.asarray(first.obs), layout(obs))
    for t in range(STEPS):
        obs, reward, term, trunc, _ = ref.step(actions[t].reshape(n).astype(np.int32))
        done = term | trunc
        got = jax.tree.map(lambda x, t=t: np.asarray(x[:, t]), states)  # [S, T, E, ...]
        np.testing.assert_array_equal(got.reward.reshape(n), reward.astype(np.float32))
        np.testing.assert_array_equal(got.terminated.reshape(n), term)
        np.testing.assert_array_equal(got.truncated.reshape(n), trunc)
        np.testing.assert_array_equal(got.info["final_obs"], layout(obs))
        if done.any():  # Python resets on the next call (actions ignored): same-step here
            assert done.all()  # truncation hits every emulator at once
            obs, reward, *_ = ref.step(np.zeros(n, np.int32))
            assert not reward.any()
        np.testing.assert_array_equal(got.obs, layout(obs))
    assert np.asarray(states.truncated).sum() == n * (STEPS // (FRAMES // 4))
    # Returns accumulate game scores (not clipped) over each episode.
    last = np.asarray(states.info["last_length"])[:, -1]
    assert (last == FRAMES // 4).all()


def test_ale_make_checks_its_settings():
    with pytest.raises(ValueError, match="stack"):
        envs.make("ale/Pong", stack=0)
    with pytest.raises(ValueError, match="episode_length=None"):
        envs.make("ale/Pong", episode_length=None)
    env = envs.make("ale/Pong", size=64, grayscale=False, stack=1)
    assert env.observation_spec.shape == (64, 64, 3) and env.action_spec.num_actions == 6
    assert "Breakout" in ale_env.names()


def test_ppo_ale_preset_evaluates_up_to_the_episode_cap():
    """The ``ale`` preset's evaluation episodes run to the env's own 108k-frame cap."""
    from jaxrl.agents.on_policy import ppo

    env = envs.make("ale/Breakout")
    config = ppo.SPEC.make_config("ale/Breakout")
    assert config.eval_max_steps == env.max_episode_steps == 108_000 // 4


@pytest.mark.parametrize("flag", [{"checkpoint_every": 1}, {"resume": "somewhere"}])
def test_ale_refuses_checkpoints_and_resume(flag, tmp_path):
    with pytest.raises(ValueError, match="outside JAX.*--checkpoint-every and --resume"):
        runner.run("ppo", "ale/Breakout", seeds=1, steps=4096, out=tmp_path, **flag)


def test_ppo_trains_on_a_real_rom_in_one_program(tmp_path):
    """A tiny PPO (Nature CNN, 36x36 frames) on Breakout: 2 seeds x 2 envs, one pool."""
    config = {"num_envs": 2, "rollout_len": 32, "num_evals": 2, "num_eval_envs": 2}
    kwargs = {"size": 36, "stack": 2, "max_frames": 2000}
    res = runner.run(
        "ppo", "ale/Breakout", seeds=2, steps=256, config=config, env_kwargs=kwargs,
        out=tmp_path, progress=False,
    )  # fmt: skip
    s = res.summary
    assert s["seeds"] == 2 and s["config"]["encoder"] == "cnn" and s["config"]["clip_rewards"]
    assert np.isfinite(s["final_return_mean"]) and s["final_return_min"] >= 0
    assert res.metrics["eval_return"].shape == (2, 2)
    assert bool(np.all(res.metrics["finite"]))
    assert (tmp_path / "summary.json").exists()
