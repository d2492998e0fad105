"""``with_world_model``: learning in imagination as a transform over any agent.

The wrapped (behaviour) agent acts on world-model features ``feat = [z, h]`` and learns
from imagined rollouts; the transform makes it an agent of the real env:

* acting, as the official Drama code (``train.py``, ``RealityContextLength``): the belief
  (carry) is a window of the last ``context_window`` (obs, action) pairs of the episode
  (``ActingContext``). Each step the world model reruns the window from a zero state:
  posterior samples of the window's observations, the sequence model in parallel form,
  its last output ``h`` and a sample ``z`` of the prior it predicts for the current step;
  the behaviour agent sees ``[z, h]``, the same kind of features it is trained on in
  imagination. With an empty window (an episode's first step) the action is uniformly
  random. ``observe`` pushes the step's (obs, action) into the window. The belief so
  never runs longer than the sequences the model trains on;
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


class ActingContext(struct.PyTreeNode):
    """The acting belief: the last ``W`` steps of each env's episode, oldest first.

    ``obs [B, W, *obs_shape]`` (float32), ``action [B, W]`` (int32); the first
    ``length [B]`` (int32, at most ``W``) entries are filled, the rest are zeros.
    """

    obs: jax.Array
    action: jax.Array
    length: jax.Array


def push_context(ctx: ActingContext, obs: jax.Array, action: jax.Array) -> ActingContext:
    """``ctx`` with one more step ``(obs [B, ...], action [B])`` at the end; a full window
    drops its oldest step."""
    window = ctx.action.shape[1]
    full = ctx.length >= window

    def push(buf, x):
        shifted = jnp.where(full.reshape((-1,) + (1,) * (buf.ndim - 1)), jnp.roll(buf, -1, 1), buf)
        slot = jnp.minimum(ctx.length, window - 1)
        return shifted.at[jnp.arange(buf.shape[0]), slot].set(x.astype(buf.dtype))

    return ActingContext(
        push(ctx.obs, obs), push(ctx.action, action), jnp.minimum(ctx.length + 1, window)
    )


def context_features(
    model: WorldModel, wm_params: Any, ctx: ActingContext, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(feat [B, latent + d], h [B, d])`` of the acting belief ``ctx``: the window rerun
    from a zero state (posterior samples, parallel form); ``h`` is the output at the last
    filled step and ``feat = [z, h]`` with ``z`` a sample of the prior ``h`` predicts
    (the official ``calc_last_dist_feat``). Rows with an empty window give garbage
    (the caller acts randomly there)."""
    post_key, prior_key = jax.random.split(key)
    post = model.apply(wm_params, ctx.obs, method=WorldModel.encode)
    z = sample_latent(post_key, post)
    h, _ = model.apply(wm_params, z, ctx.action, method=WorldModel.sequence)
    last = jnp.maximum(ctx.length - 1, 0)
    h = h[jnp.arange(h.shape[0]), last]
    z = sample_latent(prior_key, model.apply(wm_params, h, method=WorldModel.prior))
    return jnp.concatenate([z, h], -1), h


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
    context_window: int = 16,
) -> Agent:
    """``behaviour`` (an agent on features ``[B, feat_dim]`` whose ``update`` takes
    ``Imagined`` rollouts) as a recurrent agent of the real env with world model ``model``.

    The world model trains with ``jaxrl.core.adam(lr, eps, max_grad_norm)`` on
    ``world_model_loss`` (``free_bits``, ``dyn_scale``, ``rep_scale``); ``horizon`` is the
    imagination length; ``context_window`` the steps of the acting belief
    (``ActingContext``). Metrics: the world model's losses, ``wm_grad_norm`` and the
    behaviour agent's.
    """
    tx = adam(lr, eps=eps, max_grad_norm=max_grad_norm)

    def init(key: jax.Array) -> WorldModelState:
        wm_key, inner_key = jax.random.split(key)
        obs = jnp.zeros((1, 2, *model.obs_shape), jnp.float32)
        wm_params = model.init(wm_key, obs, jnp.zeros((1, 2), jnp.int32))
        inner = behaviour.init(inner_key)
        return WorldModelState(wm_params, tx.init(wm_params), inner, jnp.zeros((), jnp.int32))

    if context_window < 1:
        raise ValueError(f"context_window must be positive, got {context_window}")

    def initial_carry(batch: int) -> ActingContext:
        return ActingContext(
            jnp.zeros((batch, context_window, *model.obs_shape), jnp.float32),
            jnp.zeros((batch, context_window), jnp.int32),
            jnp.zeros((batch,), jnp.int32),
        )

    def act(state: WorldModelState, obs: jax.Array, key: jax.Array, explore=True, *, carry, **_):
        """``obs [B, ...]`` -> ``(action [B], info)``; ``carry`` is the belief before ``obs``
        (the official code acts on the prior it predicts for ``obs``, not on ``obs``)."""
        del obs
        feat_key, act_key, rand_key = jax.random.split(key, 3)
        feat, _ = context_features(model, state.wm_params, carry, feat_key)
        action, info = behaviour.act(state.inner, feat, act_key, explore)
        random = jax.random.randint(rand_key, action.shape, 0, model.num_actions)
        return jnp.where(carry.length > 0, action, random).astype(action.dtype), info

    def observe(
        state: WorldModelState, carry: ActingContext, obs: jax.Array, action: jax.Array, info
    ) -> ActingContext:
        """The belief after ``obs [B, ...]`` and ``action [B]`` (``state``, ``info`` unused)."""
        del state, info
        return push_context(carry, obs, action)

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
