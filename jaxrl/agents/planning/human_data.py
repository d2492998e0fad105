"""Recorded play of the simulated human and behaviour cloning on it (pure JAX).

AssistanceZero's human models are learned from human data (Laidlaw et al. 2025: BC and
piKL on recorded episodes), and its imitation baseline clones an assistant from human
data. Here the "humans" are the assistance game's scripted noisy-rational players
(``jaxrl.envs.assist``), recorded at the game's temperature:

- ``record(config, key, num_episodes, assistant=False)``: the human builds alone (the
  assistant's seat plays the no-op); ``assistant=True``: a second scripted human, who
  also knows the goal, plays the assistant's seat (a human-human game);
- ``fit_bc``: a small policy network fitted by cross-entropy to recorded
  ``(observation, action)`` pairs, one jitted ``lax.scan`` of Adam steps.

Both are pure functions of their key, so an agent's ``init`` may record and fit inside
the jitted, seed-vmapped run.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl.core import adam
from jaxrl.envs import assist as game
from jaxrl.envs.wrappers import VmapWrapper
from jaxrl.nets.mlp import MLP


class Demos(struct.PyTreeNode):
    """Recorded decisions, flattened over steps and episodes (``M = T x E``).

    Attributes:
      obs: ``[M, 4N + 1]`` the observation the player acted on (``jaxrl.envs.assist.observe``).
      action: ``[M]`` int32, the action it took.
      mask: ``[M]`` float32, 1 for steps inside an episode (0 after it ended).
    """

    obs: jax.Array
    action: jax.Array
    mask: jax.Array


class BCPolicy(nn.Module):
    """An MLP over an observation ``[..., obs]`` to action logits ``[..., A]``."""

    num_actions: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return nn.Dense(self.num_actions)(MLP(self.hidden)(obs))


def record(
    config: game.Config, key: jax.Array, num_episodes: int, assistant: bool = False
) -> tuple[Demos, Demos]:
    """``(human, assistant)`` demos of ``num_episodes`` games with the scripted human at
    ``config.human_temperature``.

    The human's observation is the board the assistant's move left (what the search's
    human model sees); the assistant seat's is the game's observation. With
    ``assistant=False`` the assistant seat plays the no-op (its demos are all no-ops).
    """
    env = game.AssistGame(config)
    venv = VmapWrapper(env, num_episodes)
    horizon = config.horizon
    reset_key, key = jax.random.split(key)
    state = venv.reset(reset_key)

    def body(carry, k):
        st, done = carry
        inner = st.inner
        if assistant:
            logits = jax.vmap(game.human_logits, in_axes=(0, 0, None))(
                inner.board.grid, inner.goal, config.human_temperature
            )
            action = jax.random.categorical(k, logits).astype(jnp.int32)
        else:
            action = jnp.zeros((num_episodes,), jnp.int32)
        mid = inner.board.replace(grid=jax.vmap(game.apply_action)(inner.board.grid, action))
        nxt = venv.step(st, action)
        human = jax.vmap(game.plane_action)(nxt.inner.board.last_human)
        live = (~done).astype(jnp.float32)
        human_obs = jax.vmap(lambda b: game.observe(b, horizon))(mid)
        out = (st.obs, action, human_obs, human, live)
        return (nxt, done | nxt.done), out

    init = (state, jnp.zeros((num_episodes,), bool))
    _, (obs, action, human_obs, human, live) = jax.lax.scan(
        body, init, jax.random.split(key, horizon)
    )

    def flat(x):
        return x.reshape(-1, *x.shape[2:])

    live = flat(live)
    return (
        Demos(flat(human_obs), flat(human), live),
        Demos(flat(obs), flat(action), live),
    )


def bc_loss(logits: jax.Array, demos: Demos) -> jax.Array:
    """Masked mean cross-entropy of ``logits [M, A]`` to the demos' actions."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, demos.action)
    return jnp.sum(demos.mask * ce) / jnp.maximum(jnp.sum(demos.mask), 1.0)


def fit_bc(
    net: BCPolicy,
    key: jax.Array,
    demos: Demos,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
) -> dict:
    """Parameters of ``net`` after ``steps`` Adam steps on minibatches of ``batch_size``
    recorded steps (drawn uniformly among the masked-in ones)."""
    init_key, key = jax.random.split(key)
    params = net.init(init_key, demos.obs[:1])
    tx = adam(lr)
    weights = demos.mask / jnp.maximum(jnp.sum(demos.mask), 1.0)

    def step(carry, k):
        params, opt_state = carry
        idx = jax.random.choice(k, demos.mask.shape[0], (batch_size,), p=weights)
        batch = jax.tree.map(lambda x: x[idx], demos)
        grads = jax.grad(lambda p: bc_loss(net.apply(p, batch.obs), batch))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
    return params
