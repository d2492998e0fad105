"""``with_world_model``: learning in imagination as a transform over any agent.

The wrapped (behaviour) agent acts on world-model features ``feat = [z, h]`` and learns
from imagined rollouts; the transform makes it an agent of the real env:

* acting: the belief (carry) is the sequence model's state and last output ``h``; the
  behaviour agent sees ``[mode of the encoder's latent of obs, h]``; ``observe`` steps the
  sequence model with the action taken;
* ``update(state, SequenceBatch)``: one world-model step on ``batch.wm`` (sequences
  ``[B, T]``), then rollouts of ``horizon`` steps imagined from the end of each context in
  ``batch.img`` with the behaviour agent's exploring policy, and one behaviour update on
  them (``Imagined``, time-major).

The world model is ``jaxrl.models.world_model.WorldModel`` (encoder/decoder, categorical
latents, a Mamba-2 sequence model, reward/termination heads); Drama is this transform
over an imagination actor-critic.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl.core import Agent, adam
from jaxrl.core.optim import last_grad_norm
from jaxrl.models.world_model import (
    WorldModel,
    initial_seq_state,
    sample_latent,
    twohot_bins,
    twohot_mean,
    world_model_loss,
)


class Imagined(struct.PyTreeNode):
    """Imagined rollouts, time-major: ``feat [H + 1, B, F]``, ``action, reward,
    terminated [H, B]`` (the behaviour agent's ``update`` batch)."""

    feat: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    context: Any = None


class WorldModelState(struct.PyTreeNode):
    """``wm_params``, ``wm_opt``: the world model's; ``inner``: the behaviour agent's."""

    wm_params: Any
    wm_opt: Any
    inner: Any
    step: jax.Array


def imagine(
    model: WorldModel,
    wm_params: Any,
    policy: Any,
    context: dict[str, jax.Array],
    horizon: int,
    key: jax.Array,
) -> Imagined:
    """Rollouts of ``horizon`` steps from the end of each context (no gradient into the
    model). ``policy(feat [B, F], key) -> action [B]``; ``context`` holds ``obs [B, L, ...]``
    and ``action [B, L]``."""
    wm_params = jax.lax.stop_gradient(wm_params)
    ctx_key, start_key, roll_key = jax.random.split(key, 3)
    post = model.apply(wm_params, context["obs"], method=WorldModel.encode)
    z = sample_latent(ctx_key, post)
    h, seq_state = model.apply(wm_params, z, context["action"], method=WorldModel.sequence)
    h = h[:, -1]
    z = sample_latent(start_key, model.apply(wm_params, h, method=WorldModel.prior))
    bins = twohot_bins(model.config.num_bins)

    def step(carry, k):
        z, h, seq_state = carry
        act_key, z_key = jax.random.split(k)
        feat = jnp.concatenate([z, h], -1)
        action = policy(feat, act_key)
        h, seq_state = model.apply(wm_params, z, action, seq_state, method=WorldModel.seq_step)
        prior, reward_logits, term_logit = model.apply(wm_params, h, method=WorldModel.heads)
        z = sample_latent(z_key, prior)
        out = (feat, action, twohot_mean(reward_logits, bins), term_logit > 0)
        return (z, h, seq_state), out

    keys = jax.random.split(roll_key, horizon)
    (z, h, _), (feats, actions, rewards, terms) = jax.lax.scan(step, (z, h, seq_state), keys)
    feats = jnp.concatenate([feats, jnp.concatenate([z, h], -1)[None]], 0)
    return Imagined(feats, actions, rewards, terms)


def with_world_model(
    behaviour: Agent,
    model: WorldModel,
    *,
    horizon: int,
    lr: float | jax.Array,
    eps: float = 1e-8,
    max_grad_norm: float = 1000.0,
    free_bits: float | jax.Array = 1.0,
    dyn_scale: float | jax.Array = 1.0,
    rep_scale: float | jax.Array = 0.1,
) -> Agent:
    """``behaviour`` (an agent on features ``[B, feat_dim]`` whose ``update`` takes
    ``Imagined`` rollouts) as a recurrent agent of the real env with world model ``model``.

    The world model trains with ``jaxrl.core.adam(lr, eps, max_grad_norm)`` on
    ``world_model_loss`` (``free_bits``, ``dyn_scale``, ``rep_scale``); ``horizon`` is the
    imagination length. Metrics: the world model's losses, ``wm_grad_norm`` and the
    behaviour agent's.
    """
    config = model.config
    tx = adam(lr, eps=eps, max_grad_norm=max_grad_norm)

    def init(key: jax.Array) -> WorldModelState:
        wm_key, inner_key = jax.random.split(key)
        obs = jnp.zeros((1, 2, *model.obs_shape), jnp.float32)
        wm_params = model.init(wm_key, obs, jnp.zeros((1, 2), jnp.int32))
        inner = behaviour.init(inner_key)
        return WorldModelState(wm_params, tx.init(wm_params), inner, jnp.zeros((), jnp.int32))

    def initial_carry(batch: int) -> tuple[Any, jax.Array]:
        return initial_seq_state(config, batch), jnp.zeros((batch, config.d_model))

    def latent_mode(wm_params: Any, obs: jax.Array) -> jax.Array:
        log_probs = model.apply(wm_params, obs, method=WorldModel.encode)
        z = jax.nn.one_hot(jnp.argmax(log_probs, -1), config.classes)
        return z.reshape((obs.shape[0], -1))

    def act(state: WorldModelState, obs: jax.Array, key: jax.Array, explore=True, *, carry, **_):
        """``obs [B, ...]`` -> ``(action [B], info)``; ``carry`` is the belief before ``obs``."""
        feat = jnp.concatenate([latent_mode(state.wm_params, obs), carry[1]], -1)
        return behaviour.act(state.inner, feat, key, explore)

    def observe(
        state: WorldModelState, carry: Any, obs: jax.Array, action: jax.Array, info: dict
    ) -> Any:
        """The belief after ``obs [B, ...]`` and ``action [B]`` (``info`` is not needed)."""
        del info
        z = latent_mode(state.wm_params, obs)
        h, seq_state = model.apply(state.wm_params, z, action, carry[0], method=WorldModel.seq_step)
        return seq_state, h

    def update(state: WorldModelState, batch: Any, key: jax.Array):
        """``batch``: a ``SequenceBatch`` (``wm`` sequences, ``img`` contexts)."""
        wm_key, img_key, inner_key = jax.random.split(key, 3)

        def loss(p):
            return world_model_loss(
                model,
                p,
                batch.wm,
                wm_key,
                free_bits=free_bits,
                dyn_scale=dyn_scale,
                rep_scale=rep_scale,
            )

        grads, wm_info = jax.grad(loss, has_aux=True)(state.wm_params)
        updates, wm_opt = tx.update(grads, state.wm_opt)
        wm_params = optax.apply_updates(state.wm_params, updates)

        def policy(feat, k):
            return behaviour.act(state.inner, feat, k, True)[0]

        rollout = imagine(model, wm_params, policy, batch.img, horizon, img_key)
        inner, info = behaviour.update(
            state.inner, rollout.replace(context=batch.context), inner_key
        )
        metrics = {**info, **wm_info, "wm_grad_norm": last_grad_norm(wm_opt)}
        return WorldModelState(wm_params, wm_opt, inner, state.step + 1), metrics

    return Agent(init, act, update, initial_carry=initial_carry, observe=observe)
