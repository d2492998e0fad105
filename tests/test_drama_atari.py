"""Atari100k adapter logic (frame skip, max-pooling, resize, no-ops, frame limit) on a fake
ALE env, and Drama's host-env training loop on it."""

import importlib.util

import jax
import numpy as np
import pytest

from jaxrl.envs.atari import Atari100k, make_atari100k, resize_bilinear


class _Space:
    n = 4


class FakeALE:
    """Frames ``[12, 10, 3]``: every pixel = frame count (mod 256), plus a flickering dot at
    (0, 0) = 255 on odd frames only. Reward 1 per frame; terminates after ``length``."""

    action_space = _Space()

    def __init__(self, length: int = 1000):
        self.length = length
        self.frame = 0
        self.actions: list[int] = []
        self.resets = 0

    def _image(self) -> np.ndarray:
        img = np.full((12, 10, 3), self.frame % 256, np.uint8)
        if self.frame % 2 == 1:
            img[0, 0] = 255
        return img

    def reset(self, seed=None):
        self.frame, self.resets = 0, self.resets + 1
        return self._image(), {}

    def step(self, action):
        self.frame += 1
        self.actions.append(int(action))
        return self._image(), 1.0, self.frame >= self.length, False, {}


def test_resize_bilinear_is_exact_on_a_linear_ramp():
    h, w = 30, 20
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ramp = np.stack([2 * xx + yy, yy, 3 * xx], -1).astype(np.uint8)
    out = resize_bilinear(ramp, 8)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    ys = np.clip((np.arange(8) + 0.5) * h / 8 - 0.5, 0, h - 1)
    xs = np.clip((np.arange(8) + 0.5) * w / 8 - 0.5, 0, w - 1)
    expected = np.stack(
        [
            2 * xs[None, :] + ys[:, None],
            np.broadcast_to(ys[:, None], (8, 8)),
            3 * xs[None] + 0 * ys[:, None],
        ],
        -1,
    )
    np.testing.assert_allclose(out, np.rint(expected), atol=1)
    const = np.full((210, 160, 3), 77, np.uint8)
    assert (resize_bilinear(const, 64) == 77).all()


def test_frame_skip_sums_rewards_and_max_pools_the_last_two_frames():
    env = Atari100k(FakeALE(), frame_skip=4, size=8, noop_max=0)
    env.reset()
    obs, reward, terminated, truncated = env.step(2)
    assert reward == 4.0 and not terminated and not truncated
    assert env.env.actions == [2, 2, 2, 2]  # the action repeats: no sticky actions
    # frames 3 (dot on) and 4 (dot off): the max keeps value 4 and the flickering dot
    assert obs.shape == (8, 8, 3) and obs.dtype == np.uint8
    assert obs[3, 3, 0] == 4 and obs[0, 0, 0] > 4
    assert env.observation_spec.shape == (8, 8, 3) and env.action_spec.num_actions == 4


def test_termination_stops_the_skip_and_frame_limit_truncates():
    env = Atari100k(FakeALE(length=6), frame_skip=4, size=8, noop_max=0)
    env.reset()
    env.step(0)
    _, reward, terminated, _ = env.step(0)
    assert terminated and reward == 2.0  # frames 5 and 6 only
    env = Atari100k(FakeALE(), frame_skip=4, size=8, noop_max=0, max_frames=12)
    env.reset()
    flags = [env.step(1)[3] for _ in range(3)]
    assert flags == [False, False, True]
    assert env.max_episode_steps == 3


def test_noop_starts_are_bounded_and_seeded():
    counts = []
    for seed in range(3):
        env = Atari100k(FakeALE(), size=8, noop_max=5, seed=seed)
        env.reset()
        counts.append(len(env.env.actions))
        assert set(env.env.actions) <= {0}
    assert all(0 <= c <= 5 for c in counts)
    again = Atari100k(FakeALE(), size=8, noop_max=5, seed=0)
    again.reset()
    assert len(again.env.actions) == counts[0]
    with pytest.raises(ValueError, match="frame_skip"):
        Atari100k(FakeALE(), frame_skip=0)


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is not None, reason="ale-py installed")
def test_missing_ale_gives_install_hint():
    with pytest.raises(ImportError, match=r"jaxrl\[atari\]"):
        make_atari100k("Pong")


TINY = dict(
    encoder="cnn",
    channels=(8, 16),
    stoch=4,
    classes=4,
    d_model=16,
    head_dim=16,
    chunk_size=8,
    hidden=32,
    ac_hidden=32,
    num_bins=15,
    wm_batch=2,
    wm_seq_len=8,
    img_batch=4,
    context_len=4,
    horizon=3,
)


@pytest.mark.slow  # compiles the whole agent (~40 s on 2 cores)
def test_drama_trains_on_a_host_env():
    from jaxrl import loops
    from jaxrl.agents.model_based import drama

    env = Atari100k(FakeALE(length=40), frame_skip=4, size=16, noop_max=0)
    eval_env = Atari100k(FakeALE(length=20), frame_skip=4, size=16, noop_max=0)
    config = drama.Config(total_steps=24, warmup_steps=12, train_every=4, num_evals=2, **TINY)
    agent = drama.make_agent(config, env, drama.SPEC.default_hparams())
    seen = []
    state, metrics, _ = loops.host_sequences(
        drama.data(config, env),
        agent,
        env,
        jax.random.PRNGKey(0),
        24,
        num_evals=2,
        eval_env=eval_env,
        eval_episodes=2,
        log=lambda t, r: seen.append((t, r)),
    )
    assert [t for t, _ in seen] == [10, 20] and all(r == 40.0 for _, r in seen)
    assert int(state.step) == 4  # updates after steps 12, 16, 20, 24
    np.testing.assert_array_equal(metrics["env_steps"], [12, 24])
    np.testing.assert_array_equal(metrics["eval_return"], [20.0, 20.0])  # 5 steps x 4 frames
    np.testing.assert_array_equal(metrics["episodes"], [1, 1])
    assert metrics["finite"].all()
    assert all(bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree.leaves(state))


ale = pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py")


@ale
def test_atari_names_and_make_through_the_registry():
    from jaxrl import envs

    assert envs.is_host("atari/Pong") and not envs.is_host("pendulum")
    assert {"Pong", "Breakout", "MsPacman"} <= set(envs.families()["atari"])
    env = envs.make("atari/Pong", seed=3)
    assert env.host and env.action_spec.num_actions == 6
    obs = env.reset()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown environment"):
        envs.make("atari/NotAGame")
    with pytest.raises(ValueError, match="host env"):
        envs.make("atari/Pong", episode_length=100)


@ale
def test_host_env_refuses_compiled_only_features():
    from jaxrl import runner

    with pytest.raises(ValueError, match="only sequence-replay agents"):
        runner.run("ppo", "atari/Pong", seeds=1, steps=64, progress=False, log=None)
    with pytest.raises(ValueError, match="checkpoints, resume"):
        runner.run("drama", "atari/Pong", seeds=1, steps=64, checkpoint_every=1, log=None)


@ale
def test_cli_trains_drama_on_a_real_pong_rom(tmp_path):
    """End to end on the real ROM: ``jaxrl train drama --env atari/Pong`` (tiny model)."""
    import json

    from jaxrl import cli

    sets = [f"--set={k}={v}" for k, v in TINY.items() if k != "channels"]
    args = ["train", "drama", "--env", "atari/Pong", "--seeds", "1", "--steps", "160"]
    args += ["--set=warmup_steps=64", "--set=train_every=16", "--set=num_evals=2"]
    args += ["--set=num_eval_envs=1", "--set=channels=8,16", *sets]
    # Evaluation cut at 100 steps: a whole Pong episode is ~1,000 host steps per period.
    args += ["--set=eval_max_steps=100"]
    assert cli.main([*args, "--no-progress", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["env"] == "atari/Pong" and summary["host_env"] and summary["finite"]
    assert summary["config"]["encoder"] == "cnn"  # the atari preset
    # A Pong episode ends at 21 points for one side: return in [-21, 21], an integer.
    assert -21 <= summary["final_return_mean"] <= 21
    assert summary["final_return_mean"] == round(summary["final_return_mean"])
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["env_steps"] for r in rows] == [80, 160]
