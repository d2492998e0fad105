"""Finite-horizon linear MDPs with known features and a test-time shift knob
(``linear/<name>``), for distributionally robust RL (DR-RPO).

A linear MDP has features ``phi(s, a)`` on the simplex ``[d]`` and ``d`` factor
distributions ``mu_i`` over the ``S`` states: ``P(s' | s, a) = sum_i phi_i(s, a) mu_i(s')``;
the reward is ``r(s, a)`` in ``[0, 1]``; episodes last ``H`` steps from a fixed start state.
Every env here is one ``LinearMDP`` built from those arrays:

- ``tabular``: a random tabular MDP written as a linear MDP with one-hot features
  (``d = S A``, ``mu_(s,a) = P(. | s, a)``), so d-rectangular = (s,a)-rectangular;
- ``drect``: a d-rectangular linear MDP with random features on the simplex
  (``Dirichlet(0.3)``), random factors (``Dirichlet(0.5)``) and ``r = phi^T theta``;
- ``windy``: a windy ledge: a corridor of ``8`` cells above lava. The agent starts in
  cell 2; cell 0 is a near exit that pays ``0.65`` per step spent there, cell 7 a far exit
  that pays ``1``; both are absorbing. Actions: left, right, stay. In every corridor
  cell a gust blows the agent into the lava (absorbing, reward 0) with probability
  ``shift``: the nominal task has no wind, so the best nominal plan walks to the far
  exit (7 vs 6.5 over ``H = 12``), which a gust of 0.2 makes a poor bet.
- ``graded``: three routes of graded risk. From the start state action ``k`` enters route
  ``k``, a corridor of ``1``, ``3`` or ``9`` cells whose last cell is an absorbing exit
  paying ``0.35``, ``0.5`` or ``1`` per step spent there (``H = 20``; elsewhere every
  action walks on). The longer the route, the more steps the adversary (or a gust) can
  push the agent into the lava, so the exact robust plan changes with the radius: the far
  exit at ``rho`` 0 and 0.05, the middle one at 0.1, the near one at 0.2
  (``GRADED_PICKS``; margins of at least 8% of the best value).

The knob ``shift`` (a constructor kwarg, default ``0``, in ``[0, 1]``) moves every factor
toward the env's trap state: ``mu_i' = (1 - shift) mu_i + shift e_trap`` (``windy``: the
lava, which also takes probability ``shift`` from every corridor cell but not from the
exits). For ``tabular`` and ``drect`` the shifted model lies in the d-rectangular total
variation ball of radius ``shift`` around the nominal one. Train at ``shift=0`` and
evaluate at ``shift > 0`` to test robustness.

Observation: ``[S + H]`` float32, ``one_hot(s) ++ one_hot(h)`` (``h`` the step in the
episode; all zeros after the last step). Arrays the agent may use:
``features [S, A, d]``, ``reward [S, A]``, ``num_states``, ``horizon``, ``start``;
the true model: ``mu [d, S]`` (shifted), ``transition [S, A, S]``.

``robust_dp`` is the exact d-rectangular total-variation robust dynamic programme in
NumPy float64 (worst cases found by moving mass, not through the dual), the reference
for tests and for the regret of the shift experiment.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.capabilities import LinearFeatures
from jaxrl.envs.core import Box, Discrete, Env, EnvState, call_args, first_state


class LinearMDP(Env):
    """A finite-horizon linear MDP ``P(s'|s,a) = phi(s,a)^T mu`` (see the module docstring).

    Args:
      features: ``[S, A, d]``, each row on the simplex.
      mu: ``[d, S]`` nominal factor distributions (rows on the simplex).
      reward: ``[S, A]`` in ``[0, 1]``.
      horizon: ``H``, steps per episode.
      start: the start state.
      trap: the state the shift moves probability to.
      shift: in ``[0, 1]``; ``mu' = (1 - shift) mu + shift e_trap`` (see ``shift_mask``).
      shift_mask: ``[d]`` 1 for the factors the shift moves (default all).
    """

    def __init__(
        self,
        features: np.ndarray,
        mu: np.ndarray,
        reward: np.ndarray,
        horizon: int,
        start: int,
        trap: int,
        shift: float = 0.0,
        shift_mask: np.ndarray | None = None,
    ):
        features, mu = np.asarray(features, np.float64), np.asarray(mu, np.float64)
        reward = np.asarray(reward, np.float64)
        s, a, d = features.shape
        if mu.shape != (d, s) or reward.shape != (s, a):
            raise ValueError(f"mu must be [{d}, {s}] and reward [{s}, {a}]")
        if not 0.0 <= float(shift) <= 1.0:
            raise ValueError(f"shift must be in [0, 1], got {shift}")
        if horizon <= 0:
            raise ValueError(f"horizon must be positive, got {horizon}")
        if not (np.allclose(features.sum(-1), 1) and np.allclose(mu.sum(-1), 1)):
            raise ValueError("features and mu rows must lie on the simplex")
        mask = np.ones(d) if shift_mask is None else np.asarray(shift_mask, np.float64)
        self.nominal_mu = mu
        self.mu_np = mu + float(shift) * mask[:, None] * (np.eye(s)[trap][None] - mu)
        self.features_np, self.reward_np = features, reward
        self.num_states, self.num_actions, self.dim = s, a, d
        self.horizon, self.start, self.trap, self.shift = int(horizon), int(start), int(trap), shift
        self.features = jnp.asarray(features, jnp.float32)
        self.reward = jnp.asarray(reward, jnp.float32)
        self.transition = jnp.asarray(features @ self.mu_np, jnp.float32)
        self.observation_spec = Box((s + self.horizon,), 0.0, 1.0)
        self.action_spec = Discrete(a)
        self.max_episode_steps = self.horizon

    def observe(self, s: jax.Array, h: jax.Array) -> jax.Array:
        """``one_hot(s, S) ++ one_hot(h, H)``, ``[S + H]`` float32."""
        return jnp.concatenate(
            [jax.nn.one_hot(s, self.num_states), jax.nn.one_hot(h, self.horizon)]
        ).astype(jnp.float32)

    def capabilities(self) -> tuple[Any, ...]:
        """Its known features, horizon and start state."""
        return (LinearFeatures(self.features, self.horizon, self.start),)

    def reset(self, key: jax.Array) -> EnvState:
        s, h = jnp.asarray(self.start, jnp.int32), jnp.zeros((), jnp.int32)
        return first_state((s, h), self.observe(s, h), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        s, h = state.inner
        key, sub = jax.random.split(state.key)
        probs = self.transition[s, action]
        nxt = jax.random.choice(sub, self.num_states, p=probs).astype(jnp.int32)
        return state.replace(
            inner=(nxt, h + 1),
            obs=self.observe(nxt, h + 1),
            reward=self.reward[s, action],
            terminated=jnp.zeros((), jnp.bool_),
            truncated=jnp.zeros((), jnp.bool_),
            key=key,
        )


# --- the registered envs -------------------------------------------------------------------


def tabular(
    num_states: int = 6, num_actions: int = 3, horizon: int = 5, seed: int = 0, shift: float = 0.0
) -> LinearMDP:
    """Random tabular MDP as a one-hot linear MDP; state 0 is a zero-reward trap."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    reward = rng.uniform(0.0, 1.0, (num_states, num_actions))
    reward[0] = 0.0
    d = num_states * num_actions
    features = np.eye(d).reshape(num_states, num_actions, d)
    return LinearMDP(features, p.reshape(d, num_states), reward, horizon, 1, 0, shift)


def drect(
    num_states: int = 10,
    num_actions: int = 4,
    dim: int = 5,
    horizon: int = 8,
    seed: int = 0,
    shift: float = 0.0,
) -> LinearMDP:
    """d-rectangular linear MDP with random simplex features and factors; ``r = phi^T theta``.
    The trap is the state of lowest mean reward."""
    rng = np.random.default_rng(seed)
    features = rng.dirichlet(0.3 * np.ones(dim), size=(num_states, num_actions))
    mu = rng.dirichlet(0.5 * np.ones(num_states), size=dim)
    theta = rng.uniform(0.0, 1.0, dim)
    reward = features @ theta
    trap = int(np.argmin(reward.mean(-1)))
    start = (trap + 1) % num_states
    return LinearMDP(features, mu, reward, horizon, start, trap, shift)


WINDY_CELLS, WINDY_START, NEAR_REWARD = 8, 2, 0.65


def windy(horizon: int = 12, near_reward: float = NEAR_REWARD, shift: float = 0.0) -> LinearMDP:
    """The windy ledge (module docstring): states 0..7 corridor, 8 lava; actions left,
    right, stay; one-hot features; ``shift`` is the gust probability."""
    n = WINDY_CELLS
    s_count, lava, a_count = n + 1, n, 3
    p = np.zeros((s_count, a_count, s_count))
    reward = np.zeros((s_count, a_count))
    exits = (0, n - 1)
    for s in range(s_count):
        for a in range(a_count):
            if s == lava or s in exits:
                p[s, a, s] = 1.0
            else:
                p[s, a, min(max(s + (-1, 1, 0)[a], 0), n - 1)] = 1.0
    reward[0], reward[n - 1] = near_reward, 1.0
    d = s_count * a_count
    features = np.eye(d).reshape(s_count, a_count, d)
    # the gust acts in the corridor cells only: exits and lava keep their factors
    mask = np.array([0.0 if s in exits or s == lava else 1.0 for s in range(s_count)])
    return LinearMDP(
        features, p.reshape(d, s_count), reward, horizon, WINDY_START, lava, shift,
        shift_mask=np.repeat(mask, a_count),
    )  # fmt: skip


GRADED_LENGTHS, GRADED_REWARDS, GRADED_HORIZON = (1, 3, 9), (0.35, 0.5, 1.0), 20
#: The route (start action) the exact robust plan of ``graded()`` takes, per TV radius.
GRADED_PICKS = {0.0: 2, 0.05: 2, 0.1: 1, 0.2: 0}


def graded(
    horizon: int = GRADED_HORIZON,
    lengths: tuple[int, ...] = GRADED_LENGTHS,
    rewards: tuple[float, ...] = GRADED_REWARDS,
    shift: float = 0.0,
) -> LinearMDP:
    """Routes of graded risk (module docstring): state 0 the start, then each route's
    cells in order (its last cell the exit), the lava last; one action per route, one-hot
    features; ``shift`` is a gust in the corridor cells (not the start, exits or lava)."""
    if len(lengths) != len(rewards) or min(lengths) <= 0:
        raise ValueError(f"graded: one positive length per reward, got {lengths}, {rewards}")
    bounds = np.cumsum((1, *lengths))  # route k: states bounds[k] .. bounds[k + 1] - 1
    s_count, a_count = int(bounds[-1]) + 1, len(lengths)
    lava = s_count - 1
    p = np.zeros((s_count, a_count, s_count))
    reward = np.zeros((s_count, a_count))
    p[0, np.arange(a_count), bounds[:-1]] = 1.0
    p[lava, :, lava] = 1.0
    corridor = np.zeros(s_count)
    for k in range(a_count):
        first, exit_ = int(bounds[k]), int(bounds[k + 1]) - 1
        for s in range(first, exit_):
            p[s, :, s + 1] = 1.0
            corridor[s] = 1.0
        p[exit_, :, exit_] = 1.0
        reward[exit_] = rewards[k]
    d = s_count * a_count
    features = np.eye(d).reshape(s_count, a_count, d)
    return LinearMDP(
        features, p.reshape(d, s_count), reward, horizon, 0, lava, shift,
        shift_mask=np.repeat(corridor, a_count),
    )  # fmt: skip


_ENVS = {"tabular": tabular, "drect": drect, "windy": windy, "graded": graded}


def names() -> list[str]:
    return list(_ENVS)


def args(name: str) -> dict[str, Any]:
    """The keyword arguments of the builder of ``name`` (e.g. ``shift``, ``horizon``)."""
    return call_args(_ENVS[name])


def make(name: str, **kwargs: Any) -> LinearMDP:
    """The linear MDP ``name`` (``tabular``, ``drect``, ``windy``, ``graded``) with
    constructor kwargs."""
    if name not in _ENVS:
        raise ValueError(f"unknown linear MDP {name!r}; known: {', '.join(_ENVS)}")
    return _ENVS[name](**kwargs)


# --- exact robust dynamic programming (NumPy float64) -------------------------------------


def tv_worst(q: np.ndarray, v: np.ndarray, rho: float) -> float:
    """``min { p . v : TV(p, q) <= rho }`` (``TV = |p - q|_1 / 2``) by moving up to ``rho``
    of ``q``'s mass from the highest values of ``v`` onto its lowest state."""
    order = np.argsort(-v)
    p, budget, low = np.array(q, np.float64), float(rho), int(np.argmin(v))
    for s in order:
        if budget <= 0 or s == low:
            continue
        moved = min(p[s], budget)
        p[s] -= moved
        p[low] += moved
        budget -= moved
    return float(p @ v)


def robust_dp(
    features: np.ndarray,
    mu: np.ndarray,
    reward: np.ndarray,
    horizon: int,
    rho: float,
    policy: np.ndarray | None = None,
    kl_coef: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact d-rectangular TV robust values: ``(Q [H, S, A], V [H + 1, S])``.

    ``Q_h = r + phi^T nu_h`` with ``nu_h,i = min_{TV(p, mu_i) <= rho} p . V_{h+1}``, then
    ``V_h = sum_a pi Q_h`` for ``policy [H, S, A]``; else the optimal value: ``max_a Q_h``
    (``kl_coef = 0``) or ``kl_coef log mean_a exp(Q_h / kl_coef)`` (KL toward uniform).
    ``rho = 0`` is plain (non-robust) evaluation or planning in ``phi^T mu``.
    """
    features, mu = np.asarray(features, np.float64), np.asarray(mu, np.float64)
    s_count, a_count, _ = features.shape
    q = np.zeros((horizon, s_count, a_count))
    v = np.zeros((horizon + 1, s_count))
    for h in reversed(range(horizon)):
        nu = np.array([tv_worst(m, v[h + 1], rho) for m in mu])
        q[h] = reward + features @ nu
        if policy is not None:
            v[h] = np.sum(policy[h] * q[h], -1)
        elif kl_coef > 0:
            z = q[h] / kl_coef
            top = z.max(-1)
            v[h] = kl_coef * (top + np.log(np.mean(np.exp(z - top[:, None]), -1)))
        else:
            v[h] = q[h].max(-1)
    return q, v
