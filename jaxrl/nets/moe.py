"""Mixture-of-experts layer (MENTOR, Huang et al., 2024) and a tanh-Gaussian actor using it.

``MoE`` maps ``[..., in] -> [..., features]`` as ``sum_e w_e(x) expert_e(x)``: each
expert is ``Dense(expert_hidden) -> act -> Dense(features)``; a gate (an MLP ending in
``num_experts`` logits) gives softmax probabilities, of which the ``top_k`` largest
are kept and renormalised to sum to one (the others weigh zero). The auxiliary loss
``var_e(load_e) + mean_x H(gate(x))`` (load: each expert's mean routed weight over the
batch) balances experts and sharpens the gate; the layer sows it into the ``"losses"``
collection as ``"moe_aux"`` (collect with ``aux_losses``), and sows the experts'
activated hidden units as layer ``"experts"`` (``sow_activated``) for ``dormant_ratio``.
All experts run densely (one batched einsum): simple, vmappable and fast for the
small expert counts used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from jaxrl.nets.dense import Dense
from jaxrl.nets.mlp import MLP, activation, sow_activated


def top_k_weights(probs: jax.Array, k: int) -> jax.Array:
    """The ``k`` largest of ``probs [..., E]`` renormalised to sum to one; zeros elsewhere."""
    values, idx = jax.lax.top_k(probs, k)
    values = values / jnp.sum(values, axis=-1, keepdims=True)
    return jnp.sum(jax.nn.one_hot(idx, probs.shape[-1], dtype=probs.dtype) * values[..., None], -2)


def moe_aux_loss(probs: jax.Array, weights: jax.Array) -> jax.Array:
    """``var_e(mean_batch weights[..., e]) + mean_batch entropy(probs)``; both ``[..., E]``."""
    load = jnp.mean(weights.reshape(-1, weights.shape[-1]), axis=0)
    entropy = -jnp.sum(probs * jnp.log(probs + 1e-12), axis=-1)
    return jnp.var(load) + jnp.mean(entropy)


class MoE(nn.Module):
    """Top-k gated mixture of experts: ``[..., in] -> [..., features]``."""

    features: int
    num_experts: int = 16
    top_k: int = 4
    expert_hidden: int = 256
    gate_hidden: Sequence[int] = ()
    act: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(
                f"MoE: top_k must be in [1, num_experts={self.num_experts}], got {self.top_k}"
            )
        f = activation(self.act)
        e, h, d_in = self.num_experts, self.expert_hidden, x.shape[-1]
        g = MLP(tuple(self.gate_hidden), self.act)(x) if self.gate_hidden else x
        probs = jax.nn.softmax(Dense(e, name="gate")(g), axis=-1)  # [..., E]
        weights = top_k_weights(probs, self.top_k)
        init = nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0,))
        w1 = self.param("w1", init, (e, d_in, self.expert_hidden))
        b1 = self.param("b1", nn.initializers.zeros, (e, h))
        w2 = self.param("w2", init, (e, h, self.features))
        b2 = self.param("b2", nn.initializers.zeros, (e, self.features))
        pre = jnp.einsum("...i,eih->...eh", x, w1) + b1  # [..., E, H]
        hidden = f(pre)
        sow_activated(self, "experts", hidden.reshape(*pre.shape[:-2], e * h))
        y = jnp.einsum("...eh,ehd->...ed", hidden, w2) + b2  # [..., E, features]
        self.sow("losses", "moe_aux", moe_aux_loss(probs, weights))
        return jnp.einsum("...e,...ed->...d", weights, y)


def aux_losses(variables: Any) -> jax.Array:
    """Sum of every ``"moe_aux"`` sowed into ``variables["losses"]`` (0 when none)."""
    flat = traverse_util.flatten_dict(dict(variables.get("losses", {})))
    terms = [jnp.sum(jnp.stack(v)) for k, v in flat.items() if k[-1] == "moe_aux"]
    return sum(terms, jnp.zeros((), jnp.float32))


class MoETanhGaussian(nn.Module):
    """SAC-style tanh-Gaussian actor whose last hidden layer is a ``MoE`` (MENTOR).

    ``Dense(hidden[:-1]) -> MoE(hidden[-1]) -> act -> (mean, std)`` heads, each
    ``[..., act_dim]``; ``log_std`` squashed into ``[log_std_min, log_std_max]``.
    """

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    num_experts: int = 16
    top_k: int = 4
    expert_hidden: int = 256
    gate_hidden: Sequence[int] = ()
    act: str = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if len(self.hidden) < 2:
            raise ValueError(f"MoETanhGaussian needs >= 2 hidden layers, got {self.hidden}")
        x = MLP(tuple(self.hidden[:-1]), self.act)(x)
        moe = MoE(
            self.hidden[-1],
            self.num_experts,
            self.top_k,
            self.expert_hidden,
            tuple(self.gate_hidden),
            self.act,
        )
        x = activation(self.act)(moe(x))
        sow_activated(self, moe.name, x)
        mean = Dense(self.action_dim)(x)
        log_std = jnp.tanh(Dense(self.action_dim)(x))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mean, jnp.exp(log_std)
