"""A pure-JAX assistance game: build a hidden structure together with a simulated human.

``assist/build`` (5x5), ``assist/build-3x3``, ``assist/build-8x8``, and
``assist/build-cost``, ``assist/build-3x3-cost`` (the same games with a cost per human
action); any size through ``make("assist/build", height=..., width=...)``. A small 2-D
cousin of the Minecraft building assistance game (MBAG) of AssistanceZero (Laidlaw et al. 2025).

**World.** A ``height x width`` grid of ``N`` cells, each empty (0) or holding a block
(1). The episode starts with the goal cells empty and every other cell holding a
"debris" block with probability ``debris_prob``.

**Goal.** A hidden target grid drawn per episode: the union of ``num_parts`` straight
walls. Each wall is horizontal or vertical with probability 1/2, has a length uniform on
``{min_len..max_len}`` (clipped to the grid side) and a start uniform over the positions
where it fits. The human knows the goal; the assistant (the agent) never sees it.

**Actions** (both players, ``2N + 1``): ``0`` no-op, ``1 + i`` place a block in cell
``i``, ``1 + N + i`` remove the block from cell ``i`` (row-major cells). An action on a
cell already in the requested state changes nothing.

**Turn.** Each ``step(action)`` applies the assistant's action, then the human's (drawn
from the human model on the grid the assistant left), then scores.

**Reward** (shared): progress toward the goal, the change in the number of cells that
match it over the step, so +1 per fixed cell and -1 per broken one, minus
``human_action_cost`` when the human's action changed the grid. Without the cost
(default 0) a finished episode's return is the number of cells to fix at reset whoever
fixes them; with it the return is that number minus ``human_action_cost`` times the
human's actions, so saving the human's actions pays. The episode terminates when the
grid equals the goal; ``max_steps`` (default ``2 N``) truncates it.

**Human model.** Noisy-rational (Boltzmann) over a scripted planner's one-step action
values ``Q_H(a) = progress(grid after a) - progress(grid)`` in {-1, 0, +1}:
``pi_H(a) ∝ exp(Q_H(a) / human_temperature)``. The no-op and every action without effect
have value 0, so a low temperature is a skilled human, a high one a slow and error-prone
one. ``human_actions`` counts the human's actions that changed the grid (the paper's
human-study metric: place/break actions the human needs).

**Observation** (``4N + 1`` float32): the grid; the cells the human has ever placed a
block in; the cells the human has ever removed one from; the human's last action as a
plane (+1 at a placement cell, -1 at a removal cell, all 0 for the no-op); the time
fraction ``t / max_steps``. The history planes make the assistant's observation the
same for every agent (PPO included).

The observable part (``Board``) and the pure functions over it (``apply_action``,
``observe``, ``record_human``) are public so that a planner can simulate the world with
a learned goal and human model in place of the hidden ones (AssistanceZero).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.envs.capabilities import HumanModel
from jaxrl.envs.core import Box, Discrete, Env, EnvState, call_args, first_state
from jaxrl.envs.wrappers import VmapWrapper

PRESETS: dict[str, dict[str, Any]] = {
    "build": {"height": 5, "width": 5},
    "build-3x3": {"height": 3, "width": 3, "num_parts": 1, "min_len": 2, "max_len": 3},
    "build-8x8": {"height": 8, "width": 8, "num_parts": 3, "min_len": 3, "max_len": 6},
}
#: The cost-per-human-action variants (``human_action_cost`` 0.5: a cell the human fixes
#: earns 0.5, one the assistant fixes 1).
PRESETS["build-cost"] = {**PRESETS["build"], "human_action_cost": 0.5}
PRESETS["build-3x3-cost"] = {**PRESETS["build-3x3"], "human_action_cost": 0.5}


def names() -> list[str]:
    return list(PRESETS)


def args(name: str) -> dict[str, Any]:
    """The plain-valued fields of the game's ``Config``."""
    return call_args(Config)


def make(name: str, **kwargs: Any) -> Env:
    """The assistance game ``name`` (a key of ``PRESETS``); ``kwargs`` override its config."""
    if name not in PRESETS:
        raise ValueError(f"unknown assistance game {name!r}; known: {', '.join(PRESETS)}")
    return AssistGame(Config(**{**PRESETS[name], **kwargs}))


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings of the game (see the module docstring)."""

    height: int = 5
    width: int = 5
    num_parts: int = 2
    min_len: int = 2
    max_len: int = 4
    debris_prob: float = 0.1
    human_temperature: float = 0.25
    max_steps: int = 0  # 0: 2 * N
    human_action_cost: float = 0.0  # reward lost per grid-changing human action

    def __post_init__(self) -> None:
        for f in ("height", "width", "num_parts", "min_len", "max_len"):
            if getattr(self, f) <= 0:
                raise ValueError(f"assist: {f} must be positive, got {getattr(self, f)}")
        if self.min_len > self.max_len:
            raise ValueError(f"assist: min_len {self.min_len} exceeds max_len {self.max_len}")
        if self.min_len > max(self.height, self.width):
            raise ValueError(
                f"assist: min_len {self.min_len} does not fit a {self.height}x{self.width} grid"
            )
        if not 0.0 <= self.debris_prob < 1.0:
            raise ValueError(f"assist: debris_prob must be in [0, 1), got {self.debris_prob}")
        if self.human_temperature <= 0:
            raise ValueError(
                f"assist: human_temperature must be positive, got {self.human_temperature}"
            )
        if self.max_steps < 0:
            raise ValueError(f"assist: max_steps must be >= 0, got {self.max_steps}")
        if self.human_action_cost < 0:
            raise ValueError(
                f"assist: human_action_cost must be >= 0, got {self.human_action_cost}"
            )

    @property
    def num_cells(self) -> int:
        return self.height * self.width

    @property
    def num_actions(self) -> int:
        return 2 * self.num_cells + 1

    @property
    def horizon(self) -> int:
        return self.max_steps or 2 * self.num_cells


class Board(struct.PyTreeNode):
    """What the assistant can observe (leaves ``[N]`` float32 unless noted).

    Attributes:
      grid: 1 where a block is.
      placed: 1 where the human has ever placed a block.
      removed: 1 where the human has ever removed a block.
      last_human: the human's last action as a plane (+1 place, -1 remove).
      t: int32 scalar, steps since the episode start.
    """

    grid: jax.Array
    placed: jax.Array
    removed: jax.Array
    last_human: jax.Array
    t: jax.Array


class GameState(struct.PyTreeNode):
    """The simulator's state: the observable board, the hidden goal ``[N]`` and the
    number of grid-changing human actions so far (int32)."""

    board: Board
    goal: jax.Array
    human_actions: jax.Array


def wall_mask(
    height: int, width: int, row: jax.Array, col: jax.Array, length: jax.Array, vertical: jax.Array
) -> jax.Array:
    """``[height * width]`` float32 mask of a wall of ``length`` cells starting at
    (``row``, ``col``), going down if ``vertical`` else right."""
    r = jnp.arange(height)[:, None]
    c = jnp.arange(width)[None, :]
    horiz = (r == row) & (c >= col) & (c < col + length)
    vert = (c == col) & (r >= row) & (r < row + length)
    return jnp.where(vertical, vert, horiz).reshape(-1).astype(jnp.float32)


def sample_goal(config: Config, key: jax.Array) -> jax.Array:
    """A goal ``[N]`` in {0, 1}: the union of ``num_parts`` random walls."""

    def wall(k: jax.Array) -> jax.Array:
        k_dir, k_len, k_row, k_col = jax.random.split(k, 4)
        vertical = jax.random.bernoulli(k_dir)
        side = jnp.where(vertical, config.height, config.width)
        length = jax.random.randint(k_len, (), config.min_len, config.max_len + 1)
        length = jnp.minimum(length, side)
        # Rows (cols) along the wall: 0..side-length; across: the whole other side.
        along_max = side - length + 1
        across_max = jnp.where(vertical, config.width, config.height)
        along = jax.random.randint(k_row, (), 0, along_max)
        across = jax.random.randint(k_col, (), 0, across_max)
        row = jnp.where(vertical, along, across)
        col = jnp.where(vertical, across, along)
        return wall_mask(config.height, config.width, row, col, length, vertical)

    walls = jax.vmap(wall)(jax.random.split(key, config.num_parts))
    return jnp.max(walls, axis=0)


def apply_action(grid: jax.Array, action: jax.Array) -> jax.Array:
    """The grid ``[N]`` after ``action`` (0 no-op, 1+i place, 1+N+i remove)."""
    n = grid.shape[-1]
    cells = jnp.arange(n)
    place = cells == action - 1
    remove = cells == action - 1 - n
    return jnp.where(place, 1.0, jnp.where(remove, 0.0, grid))


def action_values(grid: jax.Array, goal: jax.Array) -> jax.Array:
    """``Q_H [2N + 1]``: the one-step change in matching cells of every action."""
    place = jnp.where(grid > 0, 0.0, jnp.where(goal > 0, 1.0, -1.0))
    remove = jnp.where(grid > 0, jnp.where(goal > 0, -1.0, 1.0), 0.0)
    return jnp.concatenate([jnp.zeros((1,)), place, remove])


def effective(grid: jax.Array) -> jax.Array:
    """``[..., 2N + 1]`` float32: 1 for the actions that change ``grid`` (placing on an
    empty cell, removing a block), 0 for the no-op and the rest."""
    place, remove = 1.0 - grid, grid
    return jnp.concatenate([jnp.zeros_like(grid[..., :1]), place, remove], axis=-1)


def human_logits(grid: jax.Array, goal: jax.Array, temperature: float) -> jax.Array:
    """The human model's action logits ``Q_H / temperature``, ``[2N + 1]``."""
    return action_values(grid, goal) / temperature


def action_plane(action: jax.Array, n: int) -> jax.Array:
    """``[N]``: +1 at a placement's cell, -1 at a removal's, zeros for the no-op."""
    cells = jnp.arange(n)
    return (cells == action - 1).astype(jnp.float32) - (cells == action - 1 - n).astype(jnp.float32)


def record_human(board: Board, grid: jax.Array, action: jax.Array) -> Board:
    """The board after the human plays ``action`` on ``grid`` (the assistant's result);
    advances time by one step."""
    n = grid.shape[-1]
    plane = action_plane(action, n)
    return Board(
        grid=apply_action(grid, action),
        placed=jnp.maximum(board.placed, (plane > 0).astype(jnp.float32)),
        removed=jnp.maximum(board.removed, (plane < 0).astype(jnp.float32)),
        last_human=plane,
        t=board.t + 1,
    )


def observe(board: Board, horizon: int) -> jax.Array:
    """The assistant's observation ``[4N + 1]`` of ``board``."""
    frac = (board.t.astype(jnp.float32) / horizon)[None]
    return jnp.concatenate([board.grid, board.placed, board.removed, board.last_human, frac])


def board_from_obs(obs: jax.Array, horizon: int) -> Board:
    """Inverse of ``observe`` (``obs [4N + 1]``)."""
    n = (obs.shape[-1] - 1) // 4
    t = jnp.round(obs[4 * n] * horizon).astype(jnp.int32)
    return Board(obs[:n], obs[n : 2 * n], obs[2 * n : 3 * n], obs[3 * n : 4 * n], t)


def matches(grid: jax.Array, goal: jax.Array) -> jax.Array:
    """Number of cells of ``grid`` equal to ``goal`` (float32)."""
    return jnp.sum((grid == goal).astype(jnp.float32), axis=-1)


class AssistGame(Env):
    """The building assistance game (see the module docstring)."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        n = self.config.num_cells
        self.observation_spec = Box((4 * n + 1,), -1.0, 1.0)
        self.action_spec = Discrete(self.config.num_actions)
        self.max_episode_steps = self.config.horizon

    def __repr__(self) -> str:
        c = self.config
        return f"AssistGame({c.height}x{c.width}, parts={c.num_parts}, T={c.horizon})"

    def capabilities(self) -> tuple[Any, ...]:
        """The game's settings for a planner's model, and the hidden goal of a state."""
        return (HumanModel(self.config, lambda state: state.inner.goal),)

    def reset(self, key: jax.Array) -> EnvState:
        cfg = self.config
        key, goal_key, debris_key = jax.random.split(key, 3)
        goal = sample_goal(cfg, goal_key)
        debris = jax.random.bernoulli(debris_key, cfg.debris_prob, (cfg.num_cells,))
        grid = jnp.where(goal > 0, 0.0, debris.astype(jnp.float32))
        zeros = jnp.zeros((cfg.num_cells,), jnp.float32)
        board = Board(grid, zeros, zeros, zeros, jnp.zeros((), jnp.int32))
        inner = GameState(board, goal, jnp.zeros((), jnp.int32))
        return first_state(inner, observe(board, cfg.horizon), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        cfg = self.config
        inner: GameState = state.inner
        board, goal = inner.board, inner.goal
        key, human_key = jax.random.split(state.key)
        mid = apply_action(board.grid, action)
        human = jax.random.categorical(
            human_key, human_logits(mid, goal, cfg.human_temperature)
        ).astype(jnp.int32)
        nxt = record_human(board, mid, human)
        changed = jnp.any(nxt.grid != mid)
        reward = matches(nxt.grid, goal) - matches(board.grid, goal)
        if cfg.human_action_cost:  # a Python branch: the default reward is unchanged
            reward = reward - cfg.human_action_cost * changed.astype(jnp.float32)
        terminated = jnp.all(nxt.grid == goal)
        truncated = jnp.logical_and(nxt.t >= cfg.horizon, jnp.logical_not(terminated))
        inner = GameState(nxt, goal, inner.human_actions + changed.astype(jnp.int32))
        return state.replace(
            inner=inner,
            obs=observe(nxt, cfg.horizon),
            reward=reward.astype(jnp.float32),
            terminated=terminated,
            truncated=truncated,
            key=key,
        )


def plane_action(plane: jax.Array) -> jax.Array:
    """Inverse of ``action_plane``: the action (int32) a plane ``[N]`` records."""
    n = plane.shape[-1]
    pos, neg = jnp.argmax(plane > 0), jnp.argmax(plane < 0)
    action = jnp.where(jnp.any(plane < 0), 1 + n + neg, 0)
    return jnp.where(jnp.any(plane > 0), 1 + pos, action).astype(jnp.int32)


def episode_metrics(
    policy: Callable, env: Env, key: jax.Array, num_episodes: int, gamma: float = 1.0
) -> dict[str, jax.Array]:
    """One episode in each of ``num_episodes`` envs; ``policy(obs, key, env_state) ->
    action [B]``. Returns per-episode ``completed``, ``human_actions`` (until the goal is
    done, else over the whole episode), ``length``, ``cells_to_fix`` at the start,
    ``return`` and ``discounted_return`` (``sum_t gamma^t r_t``)."""
    venv = VmapWrapper(env, num_episodes)
    reset_key, key = jax.random.split(key)
    state = venv.reset(reset_key)
    to_fix = jnp.sum(state.inner.board.grid != state.inner.goal, -1)

    def body(carry, xs):
        st, done, completed, human, length, ret, disc = carry
        k, t = xs
        nxt = venv.step(st, policy(st.obs, k, st))
        live = ~done
        completed = jnp.where(live, nxt.terminated, completed)
        human = jnp.where(live, nxt.inner.human_actions, human)
        reward = jnp.where(live, nxt.reward, 0.0)
        disc = disc + jnp.power(gamma, t.astype(jnp.float32)) * reward
        carry = (nxt, done | nxt.done, completed, human, length + live, ret + reward, disc)
        return carry, None

    zeros = jnp.zeros((num_episodes,), jnp.int32)
    fzeros = jnp.zeros((num_episodes,), jnp.float32)
    init = (state, zeros.astype(bool), zeros.astype(bool), zeros, zeros, fzeros, fzeros)
    keys = jax.random.split(key, env.max_episode_steps)
    steps = jnp.arange(env.max_episode_steps)
    (_, _, completed, human, length, ret, disc), _ = jax.lax.scan(body, init, (keys, steps))
    return {
        "completed": completed,
        "human_actions": human,
        "length": length,
        "cells_to_fix": to_fix,
        "return": ret,
        "discounted_return": disc,
    }
