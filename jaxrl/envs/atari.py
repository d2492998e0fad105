"""Atari 2600 games through Gymnasium + ale-py under the Atari100k protocol (host env).

``jaxrl.envs.make("atari/Pong")`` (any ALE game: ``names()``) builds one; ``jaxrl train
drama --env atari/Pong`` trains on it through ``jaxrl.runner``.

ALE runs in C++ on the host, so this env is *not* the functional jaxrl protocol: it
is stepped from Python (``reset() -> obs``, ``step(action) -> (obs, reward,
terminated, truncated)``) while the learner stays jitted
(``jaxrl.loops.host_sequences``, e.g. ``jaxrl.agents.model_based.drama.train_host``).
It does expose ``observation_spec`` and ``action_spec`` so agents can be built for it.

Protocol (Atari100k as in DreamerV3 / STORM / Drama):

- sticky actions off (``repeat_action_probability=0``), minimal action set;
- frame skip 4: the action repeats 4 frames, rewards are summed, the observation is
  the pixel-wise max of the last two frames (flicker removal); stops at termination;
- observations resized to ``size x size`` RGB (64 in Drama; 84 for grey-scale setups)
  with bilinear interpolation, uint8;
- up to ``noop_max`` no-op actions after a reset (random count);
- episodes truncated after ``max_frames`` emulator frames (108k = 27k agent steps);
- a budget of 100k agent steps (400k frames) per run is the benchmark's rule.

``pip install 'jaxrl[atari]'`` installs gymnasium and ale-py (the ROMs ship with
ale-py >= 0.9).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxrl.envs.core import Box, Discrete, call_args

INSTALL_HINT = "pip install 'jaxrl[atari]' (gymnasium and ale-py)"


def resize_bilinear(frame: np.ndarray, size: int) -> np.ndarray:
    """``[H, W, C]`` uint8 -> ``[size, size, C]`` uint8, bilinear, pixel centres aligned."""
    h, w = frame.shape[:2]
    f = frame.astype(np.float32)

    def coords(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(size) + 0.5) * n_in / size - 0.5
        x = np.clip(x, 0, n_in - 1)
        lo = np.floor(x).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (x - lo).astype(np.float32)

    y0, y1, wy = coords(h)
    x0, x1, wx = coords(w)
    top = f[y0][:, x0] * (1 - wx)[None, :, None] + f[y0][:, x1] * wx[None, :, None]
    bottom = f[y1][:, x0] * (1 - wx)[None, :, None] + f[y1][:, x1] * wx[None, :, None]
    out = top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class Atari100k:
    """A Gymnasium ALE env (or any env with the same ``reset``/``step``) under the protocol.

    ``host = True`` marks it as stepped from Python (``jaxrl.envs.is_host``).

    Args:
      env: a Gymnasium env emitting ``[H, W, 3]`` uint8 frames, built with
        ``frameskip=1`` and ``repeat_action_probability=0`` (``make_atari100k`` does).
      frame_skip, size, noop_max, max_frames: see the module docstring.
      seed: seeds the env's first reset and the no-op counts.
    """

    host = True

    def __init__(
        self,
        env: Any,
        *,
        frame_skip: int = 4,
        size: int = 64,
        noop_max: int = 30,
        max_frames: int = 108_000,
        seed: int = 0,
    ):
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if size < 8:
            raise ValueError(f"size must be >= 8, got {size}")
        self.env = env
        self.frame_skip = frame_skip
        self.size = size
        self.noop_max = noop_max
        self.max_frames = max_frames
        self._rng = np.random.default_rng(seed)
        self._seed: int | None = seed
        self._frames = 0
        self.observation_spec = Box((size, size, 3), 0.0, 255.0)
        self.action_spec = Discrete(int(env.action_space.n))
        self.max_episode_steps = max_frames // frame_skip

    def _obs(self, frame: np.ndarray) -> np.ndarray:
        return resize_bilinear(np.asarray(frame), self.size)

    def reset(self) -> np.ndarray:
        frame, _ = self.env.reset(seed=self._seed)
        self._seed = None  # seed only the first reset; later resets continue the RNG
        self._frames = 0
        noops = int(self._rng.integers(0, self.noop_max + 1)) if self.noop_max else 0
        for _ in range(noops):
            frame, _, terminated, truncated, _ = self.env.step(0)
            self._frames += 1
            if terminated or truncated:
                frame, _ = self.env.reset()
        return self._obs(frame)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Repeats ``action`` ``frame_skip`` times: ``(obs, reward, terminated, truncated)``."""
        total, terminated, truncated = 0.0, False, False
        last = [None, None]
        for i in range(self.frame_skip):
            frame, reward, terminated, truncated, _ = self.env.step(int(action))
            self._frames += 1
            total += float(reward)
            last[i % 2] = np.asarray(frame)
            if terminated or truncated:
                break
        frames = [f for f in last if f is not None]
        pooled = np.maximum(frames[0], frames[1]) if len(frames) == 2 else frames[0]
        truncated = bool(truncated) or self._frames >= self.max_frames
        return self._obs(pooled), total, bool(terminated), truncated


def _gym() -> Any:
    """Gymnasium with the ALE envs registered; ImportError with the install command."""
    try:
        import ale_py
        import gymnasium as gym
    except ImportError as err:
        raise ImportError(f"Atari needs gymnasium and ale-py: {INSTALL_HINT}") from err
    gym.register_envs(ale_py)
    return gym


def names() -> list[str]:
    """Every ALE game with a ``ALE/<game>-v5`` id (``"Pong"``, ``"Breakout"``, ...)."""
    gym = _gym()
    return sorted(k[4:-3] for k in gym.envs.registry if k.startswith("ALE/") and k.endswith("-v5"))


def args(game: str) -> dict[str, Any]:
    """The plain-valued keyword arguments of ``Atari100k``."""
    return call_args(Atari100k, skip=("env",))


def make(game: str, **kwargs: Any) -> Atari100k:
    """The ``jaxrl.envs`` family adapter: ``atari/<game>`` -> ``make_atari100k(game)``."""
    return make_atari100k(game, **kwargs)


def make_atari100k(game: str, **kwargs: Any) -> Atari100k:
    """``Atari100k`` over ``ALE/<game>-v5`` (e.g. ``"Pong"``); kwargs go to ``Atari100k``.

    Raises:
      ImportError: gymnasium or ale-py is missing, with the install command.
    """
    gym = _gym()
    env = gym.make(
        f"ALE/{game}-v5",
        frameskip=1,
        repeat_action_probability=0.0,
        full_action_space=False,
        max_episode_steps=None,
    )
    return Atari100k(env, **kwargs)
