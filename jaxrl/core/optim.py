"""The one optimiser builder: Adam (or RAdam) as an optax chain, with the learning rate a traced
hyperparameter or a schedule, and an optional one-reduction global-norm clip."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class ClipState(NamedTuple):
    """The global norm of the last gradients seen, before clipping (float32 scalar)."""

    norm: jax.Array


def global_norm(tree: Any) -> jax.Array:
    """L2 norm of all leaves together, as one reduction over the concatenated leaves
    (a smaller program than ``optax.global_norm``'s reduction per leaf; same value up
    to float summation order)."""
    flat = jnp.concatenate([jnp.ravel(g) for g in jax.tree.leaves(tree)])
    return jnp.sqrt(jnp.sum(jnp.square(flat)))


def clip_by_global_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    """Scales updates so their global L2 norm is at most ``max_norm`` (``inf``: no-op).

    The norm before clipping is kept in the state (``ClipState.norm``) so that agents can
    report it without computing it again.
    """

    def init(params: Any) -> ClipState:
        del params
        return ClipState(jnp.zeros((), jnp.float32))

    def update(updates: Any, state: ClipState, params: Any = None) -> tuple[Any, ClipState]:
        del state, params
        norm = global_norm(updates)
        scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), ClipState(norm)

    return optax.GradientTransformation(init, update)


def adam(
    lr: optax.ScalarOrSchedule,
    *,
    eps: float | jax.Array = 1e-8,
    max_grad_norm: float | jax.Array | None = None,
    flat: bool = False,
    rectified: bool = False,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """Adam (``optax.scale_by_adam`` then ``-lr``), every algorithm's optimiser.

    ``lr`` and ``eps`` may be traced hyperparameters (sweeps vmap over them without
    recompiling) and ``lr`` a schedule of the update count. With ``max_grad_norm`` the
    chain starts with ``clip_by_global_norm`` (its state comes first). Without it the
    chain equals ``optax.adam(lr, eps=eps)``, state included. ``rectified`` uses RAdam's
    variance-rectified moments (Liu et al., 2020; ``optax.radam``) in place of Adam's.

    ``flat``: the chain runs on all leaves concatenated into one vector
    (``optax.flatten``; its moments are vectors too). Same values elementwise, but a few
    large kernels instead of a few per leaf: a smaller program to compile (PPO's
    gradient step lost about 30 of its 130 kernels on XLA:CPU).

    ``weight_decay > 0`` (static) makes it AdamW (Loshchilov & Hutter, 2019;
    ``optax.adamw``): ``weight_decay * params`` is added to the Adam direction before the
    learning-rate scaling. At 0 the chain is unchanged.
    """
    parts = [] if max_grad_norm is None else [clip_by_global_norm(max_grad_norm)]
    moments = optax.scale_by_radam(eps=eps) if rectified else optax.scale_by_adam(eps=eps)
    parts.append(moments)
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.scale_by_learning_rate(lr))
    chain = optax.chain(*parts)
    return optax.flatten(chain) if flat else chain


def last_grad_norm(opt_state: Any) -> jax.Array:
    """The pre-clip gradient norm an ``adam(..., max_grad_norm=...)`` state recorded."""
    return opt_state[0].norm
