"""Point Maze: a pure-JAX point mass in the U-shaped maze of the MBRCSL paper.

The maze (``1`` = wall) is the one of MBRCSL's Point Maze experiment (Zhou et al., 2023)::

    row 0   1 1 1 1 1 1
    row 1   1 . S 1 1 1        S = start cell (1, 2)
    row 2   1 . . . G 1        G = goal cell  (2, 4)
    row 3   1 1 1 1 1 1

Cell ``(row, col)`` has its centre at ``(x, y) = (col + 0.5, row + 0.5)``. The state and
observation is ``[x, y, vx, vy]`` (``[4]``); the action ``[2]`` in ``[-1, 1]`` is an
acceleration. Each step ``v <- clip((1 - dt damping) v + dt accel a, +-max_speed)`` then
``p <- p + dt * v``, moving one axis at a time: a move that would bring the ball (radius
``radius``) into a wall is cancelled on that axis and the velocity there set to zero.
Reward is dense, ``exp(-|p' - goal|)`` (as gymnasium-robotics' ``PointMaze_UMazeDense``),
in ``(0, 1]``. The task never terminates; the registry adds a 200-step limit (the paper's
horizon).

The offline dataset (``scripted_behaviour``, the env's ``ScriptedData`` capability,
recorded by ``jaxrl.data.datasets.scripted``) follows the paper's recipe: noisy waypoint
(PD) controllers of two kinds in equal number, ``start -> (2, 2)`` (stops one cell short of
the corridor to the goal) and the detour ``start -> (1, 1) -> (2, 1) -> goal``. The
shortest path ``start -> (2, 2) -> (2, 3) -> goal`` is in neither; it is the stitch of the
first kind's head and the second kind's tail.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.capabilities import ScriptedData
from jaxrl.envs.core import Box, Env, EnvState, first_state

MAZE = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [1, 0, 0, 1, 1, 1],
        [1, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 1],
    ],
    np.int32,
)
START_CELL = (1, 2)
GOAL_CELL = (2, 4)
#: Waypoint routes of the two dataset kinds, as cells after the start cell.
ROUTE_SHORT = ((2, 2),)  # kind 0: stops at (2, 2), never reaches the goal
ROUTE_DETOUR = ((1, 1), (2, 1), (2, 2), (2, 3), (2, 4))  # kind 1: the long way round


def cell_center(cell: tuple[int, int]) -> np.ndarray:
    """``(x, y)`` of the centre of cell ``(row, col)``."""
    return np.array([cell[1] + 0.5, cell[0] + 0.5], np.float32)


class PointMaze(Env):
    """Point mass in the MBRCSL U-maze; see the module docstring."""

    observation_spec = Box((4,), -10.0, 10.0)
    action_spec = Box((2,), -1.0, 1.0)
    max_episode_steps = 200

    def __init__(
        self,
        dt: float = 0.1,
        accel: float = 5.0,
        max_speed: float = 1.0,
        damping: float = 1.0,
        radius: float = 0.1,
        reset_noise: float = 0.1,
    ):
        self.dt, self.accel, self.max_speed, self.damping = dt, accel, max_speed, damping
        self.radius, self.reset_noise = radius, reset_noise
        self.walls = jnp.asarray(MAZE)
        self.start = jnp.asarray(cell_center(START_CELL))
        self.goal = jnp.asarray(cell_center(GOAL_CELL))

    def is_free(self, pos: jax.Array) -> jax.Array:
        """True where a ball of ``radius`` at ``pos [..., 2]`` touches no wall cell."""
        rows, cols = self.walls.shape
        ok = jnp.ones(pos.shape[:-1], jnp.bool_)
        for dx in (-self.radius, self.radius):
            for dy in (-self.radius, self.radius):
                col = jnp.clip(jnp.floor(pos[..., 0] + dx).astype(jnp.int32), 0, cols - 1)
                row = jnp.clip(jnp.floor(pos[..., 1] + dy).astype(jnp.int32), 0, rows - 1)
                ok &= self.walls[row, col] == 0
        return ok

    def dynamics(self, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The true model: ``obs [4], action [2] -> (next_obs [4], reward [])``. Pure."""
        pos, vel = obs[:2], obs[2:]
        a = jnp.clip(action, -1.0, 1.0)
        vel = (1.0 - self.dt * self.damping) * vel + self.dt * self.accel * a
        vel = jnp.clip(vel, -self.max_speed, self.max_speed)
        x_try = pos.at[0].add(self.dt * vel[0])
        x_ok = self.is_free(x_try)
        pos = jnp.where(x_ok, x_try, pos)
        vel = vel.at[0].set(jnp.where(x_ok, vel[0], 0.0))
        y_try = pos.at[1].add(self.dt * vel[1])
        y_ok = self.is_free(y_try)
        pos = jnp.where(y_ok, y_try, pos)
        vel = vel.at[1].set(jnp.where(y_ok, vel[1], 0.0))
        reward = jnp.exp(-jnp.linalg.norm(pos - self.goal))
        return jnp.concatenate([pos, vel]).astype(jnp.float32), reward.astype(jnp.float32)

    def capabilities(self) -> tuple[ScriptedData, ...]:
        """The paper-style offline dataset (``scripted_behaviour``)."""
        return (ScriptedData(scripted_behaviour),)

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        noise = jax.random.uniform(sub, (2,), jnp.float32, -self.reset_noise, self.reset_noise)
        obs = jnp.concatenate([self.start + noise, jnp.zeros(2)]).astype(jnp.float32)
        return first_state(obs, obs, key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        obs, reward = self.dynamics(state.inner, action)
        return state.replace(
            inner=obs,
            obs=obs,
            reward=reward,
            terminated=jnp.zeros((), jnp.bool_),
            truncated=jnp.zeros((), jnp.bool_),
        )


def _route_table(route: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``[rows, cols, 2]`` target point for a ball in each cell, following ``route``.

    A ball in a route cell (or the start cell) heads for the centre of the next cell of the
    route; in the route's last cell it holds the centre. Cells off the route head back to
    the start cell's centre.
    """
    table = np.tile(cell_center(START_CELL), (*MAZE.shape, 1))
    cells = (START_CELL, *route)
    for here, nxt in zip(cells[:-1], cells[1:], strict=True):
        table[here] = cell_center(nxt)
    table[cells[-1]] = cell_center(cells[-1])
    return table


ROUTE_TABLES = np.stack([_route_table(ROUTE_SHORT), _route_table(ROUTE_DETOUR)])


def waypoint_action(
    obs: jax.Array,
    kind: jax.Array,
    noise: jax.Array,
    key: jax.Array,
    final_offset: jax.Array | None = None,
    gains=(10.0, 1.0),
) -> jax.Array:
    """Noisy PD waypoint controller: ``obs [B, 4], kind [B] (0 short, 1 detour)`` -> ``[B, 2]``.

    ``a = clip(kp (target - p) - kd v + noise * N(0, 1), -1, 1)`` with the target the next
    waypoint of the episode's route (``noise [B]`` is each episode's action-noise scale).
    ``final_offset [B, 2]`` shifts the point the controller holds in the route's last cell.
    """
    rows, cols = MAZE.shape
    col = jnp.clip(jnp.floor(obs[:, 0]).astype(jnp.int32), 0, cols - 1)
    row = jnp.clip(jnp.floor(obs[:, 1]).astype(jnp.int32), 0, rows - 1)
    target = jnp.asarray(ROUTE_TABLES)[kind, row, col]
    if final_offset is not None:
        last = jnp.asarray([ROUTE_SHORT[-1], ROUTE_DETOUR[-1]])[kind]  # [B, 2] (row, col)
        in_last = (row == last[:, 0]) & (col == last[:, 1])
        target = target + jnp.where(in_last[:, None], final_offset, 0.0)
    kp, kd = gains
    a = kp * (target - obs[:, :2]) - kd * obs[:, 2:]
    a = a + noise[:, None] * jax.random.normal(key, a.shape)
    return jnp.clip(a, -1.0, 1.0)


def scripted_behaviour(
    key: jax.Array,
    num_episodes: int = 1000,
    noise: tuple[float, ...] = (0.3, 0.6),
    hold_spread: float = 0.1,
):
    """The behaviour of the paper-style offline dataset (``ScriptedData``; recorded by
    ``jaxrl.data.datasets.scripted``): ``num_episodes`` noisy waypoint-controller episodes.

    Half follow the short route, half the detour (the paper's equal split); within each
    kind the episodes alternate between the action-noise scales in ``noise`` (the paper
    has a plain and a randomised detour group). Each episode holds a point drawn
    uniformly within ``hold_spread`` of its last cell's centre (the paper's controller
    perturbs its waypoints likewise), so the data shows the reward at rest around the
    goal, not only at its centre. Deterministic for a fixed ``key``.
    Returns ``(policy, key)``: the policy of ``num_episodes`` envs stepped together and
    the key to record them with.
    """
    if num_episodes < 2 or num_episodes % 2:
        raise ValueError(f"num_episodes must be a positive even number, got {num_episodes}")
    kind = jnp.arange(num_episodes) % 2
    scale = jnp.asarray(noise, jnp.float32)[(jnp.arange(num_episodes) // 2) % len(noise)]
    offset_key, key = jax.random.split(key)
    offset = jax.random.uniform(offset_key, (num_episodes, 2), jnp.float32, -1.0, 1.0)
    offset = hold_spread * offset

    def policy(obs, k):
        return waypoint_action(obs, kind, scale, k, offset)

    return policy, key
