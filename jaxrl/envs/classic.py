"""Built-in pure-JAX classic-control tasks: ``cartpole``, ``cartpole_masked`` and
``pendulum``.

Dynamics follow Gymnasium's CartPole-v1 and Pendulum-v1 (and gymnax), so returns
are comparable with published numbers: CartPole's optimum is 500 and a good
Pendulum policy scores about -150 per 200-step episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.envs.core import Box, Discrete, Env, EnvState, first_state


class CartPole(Env):
    """Balance a pole on a cart; +1 per step, 2 discrete actions (push left/right).

    Observation ``[4]``: cart position, cart velocity, pole angle, pole angular
    velocity. Terminates when |x| > 2.4 or |angle| > 12 degrees; the registry adds
    a 500-step limit.
    """

    gravity, masscart, masspole, length = 9.8, 1.0, 0.1, 0.5
    force_mag, tau = 10.0, 0.02
    theta_limit, x_limit = 12 * 2 * jnp.pi / 360, 2.4
    observation_spec = Box((4,))
    action_spec = Discrete(2)
    max_episode_steps = 500

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        obs = jax.random.uniform(sub, (4,), jnp.float32, -0.05, 0.05)
        return first_state(obs, obs, key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        x, x_dot, theta, theta_dot = state.inner
        force = jnp.where(action == 1, self.force_mag, -self.force_mag)
        total_mass = self.masscart + self.masspole
        pml = self.masspole * self.length
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        temp = (force + pml * theta_dot**2 * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass)
        )
        x_acc = temp - pml * theta_acc * cos / total_mass
        # Explicit Euler, as in Gymnasium.
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * x_acc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * theta_acc
        obs = jnp.stack([x, x_dot, theta, theta_dot]).astype(jnp.float32)
        terminated = (jnp.abs(x) > self.x_limit) | (jnp.abs(theta) > self.theta_limit)
        return state.replace(
            inner=obs,
            obs=obs,
            reward=jnp.ones((), jnp.float32),
            terminated=terminated,
            truncated=jnp.zeros((), jnp.bool_),
        )


class MaskedCartPole(CartPole):
    """CartPole with the velocities hidden: a task that needs memory.

    Observation ``[2]``: cart position and pole angle (CartPole's ``[0, 2]``); the
    dynamics, rewards and limits are CartPole's. A policy must infer the two velocities
    from successive observations, so a feed-forward policy falls far short of 500 while
    a recurrent one can solve it (the "CartPole-P" task of POMDP benchmarks).
    """

    observation_spec = Box((2,))
    visible = (0, 2)

    def _masked(self, state: EnvState) -> EnvState:
        return state.replace(obs=state.inner[jnp.array(self.visible)])

    def reset(self, key: jax.Array) -> EnvState:
        return self._masked(super().reset(key))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        return self._masked(super().step(state, action))


class Pendulum(Env):
    """Swing up and hold an under-actuated pendulum; one torque in [-2, 2].

    Observation ``[3]``: cos(angle), sin(angle), angular velocity. Reward
    ``-(angle^2 + 0.1 vel^2 + 0.001 torque^2)`` per step, in [-16.3, 0]. Never
    terminates; the registry adds a 200-step limit.
    """

    max_speed, max_torque, dt, g, mass, length = 8.0, 2.0, 0.05, 10.0, 1.0, 1.0
    observation_spec = Box((3,), -8.0, 8.0)
    action_spec = Box((1,), -2.0, 2.0)
    max_episode_steps = 200

    @staticmethod
    def _obs(th: jax.Array, thdot: jax.Array) -> jax.Array:
        return jnp.stack([jnp.cos(th), jnp.sin(th), thdot]).astype(jnp.float32)

    def reset(self, key: jax.Array) -> EnvState:
        key, sub = jax.random.split(key)
        high = jnp.array([jnp.pi, 1.0])
        th, thdot = jax.random.uniform(sub, (2,), jnp.float32, -high, high)
        inner = jnp.stack([th, thdot])
        return first_state(inner, self._obs(th, thdot), key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        th, thdot = state.inner
        u = jnp.clip(jnp.reshape(action, ()), -self.max_torque, self.max_torque)
        angle = ((th + jnp.pi) % (2 * jnp.pi)) - jnp.pi
        cost = angle**2 + 0.1 * thdot**2 + 0.001 * u**2
        gravity_acc = 3 * self.g / (2 * self.length) * jnp.sin(th)
        accel = gravity_acc + 3.0 / (self.mass * self.length**2) * u
        thdot = thdot + accel * self.dt
        thdot = jnp.clip(thdot, -self.max_speed, self.max_speed)
        th = th + thdot * self.dt
        return state.replace(
            inner=jnp.stack([th, thdot]),
            obs=self._obs(th, thdot),
            reward=(-cost).astype(jnp.float32),
            terminated=jnp.zeros((), jnp.bool_),
            truncated=jnp.zeros((), jnp.bool_),
        )
