"""Stream Q(lambda) (Elsayed, Vasan and Mahmood, 2024), discrete actions.

Epsilon-greedy behaviour with epsilon moving linearly from ``eps_start`` to ``eps_end``
over ``exploration_fraction`` of each learner's steps. One transition, one update:
``delta = r + gamma max_a' Q(s', a') - Q(s, a)`` and ObGD (kappa 2) on the trace of
``grad Q(s, a)``. Watkins's cut: the trace resets after a non-greedy action as well as
at episode end. Observations are normalised online and rewards scaled by the running
std of the discounted return. Truncated episodes bootstrap; terminated ones do not.

``Config(optimizer="adam", sparsity=0, layer_norm=False, normalize_obs=False,
scale_reward=False)`` is classic Q(lambda) with Adam (the stream-barrier baseline).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.stream import common as sx
from jaxrl.agents.value.common import epsilon, epsilon_greedy
from jaxrl.core import Agent, Transition
from jaxrl.core.domains import POSITIVE, RATE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.nets import StreamMLP

#: Config overrides per env name, applied before the user's.
PRESETS: dict[str, dict[str, Any]] = {}


@dataclasses.dataclass(frozen=True)
class Config(sx.Config):
    """Stream Q(lambda)'s settings (``common.Config``)."""


@struct.dataclass
class HParams(sx.HParams):
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    kappa: float = hparam(2.0, POSITIVE)
    eps_start: float = hparam(1.0, UNIT)
    eps_end: float = hparam(0.01, UNIT)
    exploration_fraction: float = hparam(0.05, RATE)


class StreamQState(struct.PyTreeNode):
    params: Any
    opt_state: Any  # holds the eligibility trace
    norm: sx.StreamNorm
    step: jax.Array  # updates taken (drives epsilon)


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """Stream Q's (init, act, update); ``update`` takes one unbatched transition.

    ``act`` returns ``info["nongreedy"]`` (the action differs from the greedy one), which
    the loop passes back to ``update`` in ``extras`` for Watkins's trace cut.
    """
    obs_shape = env.observation_spec.shape
    spec = env.action_spec
    if not spec.discrete:
        raise ValueError("stream_q needs a discrete action space")
    num_actions = spec.num_actions
    q_net = StreamMLP(num_actions, config.hidden, config.sparsity, config.layer_norm)
    tx = sx.make_optimizer(config.optimizer, hparams.lr, hparams.gamma, hparams.lam, hparams.kappa)
    steps_per_learner = schedule.num_iters

    def obs_in(norm: sx.StreamNorm, obs: jax.Array) -> jax.Array:
        return sx.normalize_obs(norm, obs) if config.normalize_obs else obs

    def init(key: jax.Array) -> StreamQState:
        params = q_net.init(key, jnp.zeros(obs_shape, jnp.float32))
        return StreamQState(
            params=params,
            opt_state=tx.init(params),
            norm=sx.StreamNorm.create(obs_shape),
            step=jnp.zeros((), jnp.int32),
        )

    def act(state: StreamQState, obs: jax.Array, key: jax.Array, explore=True, **_):
        """``obs [B, *obs_shape] -> action [B]`` int32, ``info["nongreedy"] [B]`` bool."""
        q = q_net.apply(state.params, obs_in(state.norm, obs))
        if not explore:
            greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
            return greedy, {"nongreedy": jnp.zeros_like(greedy, jnp.bool_)}
        eps = epsilon(hparams, state.step, steps_per_learner)
        action, greedy = epsilon_greedy(key, q, eps)
        return action, {"nongreedy": action != greedy}

    def update(state: StreamQState, t: Transition, key: jax.Array):
        """One transition (unbatched leaves); ``t.extras["nongreedy"]`` from ``act``."""
        del key
        norm, obs, next_obs, reward = sx.prepare_transition(state.norm, t, hparams.gamma, config)

        def q_sa(params):
            return q_net.apply(params, obs)[t.action]

        q, grads = jax.value_and_grad(q_sa)(state.params)
        q_next = jnp.max(q_net.apply(state.params, next_obs))
        not_terminal = 1.0 - t.terminated.astype(jnp.float32)
        delta = reward + hparams.gamma * not_terminal * q_next - q
        reset = jnp.logical_or(t.done, t.extras["nongreedy"])
        updates, opt_state = tx.update(grads, state.opt_state, delta=delta, reset=reset)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "td_error": jnp.abs(delta),
            "q_value": q,
            "epsilon": epsilon(hparams, state.step, steps_per_learner),
        }
        return StreamQState(params, opt_state, norm, state.step + 1), metrics

    return Agent(init=init, act=act, update=update)


SUMMARY = "Stream Q(lambda): streaming epsilon-greedy Q-learning with ObGD (Elsayed et al. 2024)"
KINDS = ("discrete",)
SPEC = sx.spec(
    "stream_q", SUMMARY, Config, HParams, make_agent, action_kinds=KINDS, check=sx.check_optimizer
)
