"""MLP torso and distribution heads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.nets.dense import Dense
from jaxrl.nets.init import KernelSpec, draw_kernels, fixed, orthogonal

_ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "leaky_relu": nn.leaky_relu,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
}


#: Prefix of the ``"intermediates"`` entry a module sows with a layer's activated output
#: (``sow_activated``); ``jaxrl.transforms.dormant`` measures it in place of the Dense output.
ACTIVATED = "activated:"


def sow_activated(module: nn.Module, layer: str, x: jax.Array) -> None:
    """Sow ``x [..., units]``, the output of ``module``'s child layer ``layer`` after its
    activation, into ``"intermediates"`` as ``ACTIVATED + layer`` (a no-op unless that
    collection is mutable, so plain ``apply`` calls are unchanged)."""
    module.sow("intermediates", ACTIVATED + layer, x)


def activation(name: str) -> Callable:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers ``[..., in] -> [..., hidden[-1]]`` with an activation after each.

    ``layer_norm`` adds LayerNorm before each activation; ``ortho`` uses orthogonal
    init with gain sqrt(2) (PPO style) instead of flax's lecun-normal; ``kernel_inits``
    (one per layer) replaces both (``head_inits`` passes kernels drawn by the parent).
    Each layer's activated output is sowed (``sow_activated``) for the tau-dormant ratio.
    """

    hidden: Sequence[int] = (256, 256)
    act: str = "relu"
    layer_norm: bool = False
    ortho: bool = False
    dtype: jnp.dtype = jnp.float32
    kernel_inits: Sequence[Callable] | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = orthogonal(np.sqrt(2)) if self.ortho else nn.initializers.lecun_normal()
        inits = self.kernel_inits or [init] * len(self.hidden)
        for width, layer_init in zip(self.hidden, inits, strict=True):
            dense = Dense(width, kernel_init=layer_init, dtype=self.dtype)
            x = dense(x)
            if self.layer_norm:
                x = nn.LayerNorm(dtype=self.dtype)(x)
            x = activation(self.act)(x)
            sow_activated(self, dense.name, x)
        return x


def head_specs(
    in_dim: int, hidden: Sequence[int], out: int, ortho: bool, scale: float
) -> list[KernelSpec]:
    """The ``KernelSpec``s of an ``MLP(hidden)`` then a ``Dense(out)`` head on ``in_dim``
    inputs: orthogonal (gain sqrt(2), head ``scale``) with ``ortho``, else lecun-normal."""
    dims = [in_dim, *hidden, out]
    gains = [np.sqrt(2)] * len(hidden) + [scale]
    shapes = zip(dims[:-1], dims[1:], strict=True)
    return [KernelSpec(shape, ortho, g) for shape, g in zip(shapes, gains, strict=True)]


def head_inits(
    module: nn.Module,
    in_dim: int,
    hidden: Sequence[int],
    out: int,
    ortho: bool,
    scale: float,
    kernels: Sequence[jax.Array] | None = None,
) -> tuple[tuple[Callable, ...] | None, Callable]:
    """Kernel initialisers of an ``MLP(hidden)`` then a ``Dense(out)`` head, for ``module``
    to pass down: ``(mlp kernel_inits, head kernel_init)``.

    While ``module`` initialises, every kernel comes from one ``make_rng`` and one PRNG
    call (``draw_kernels`` of ``head_specs``), or is taken from ``kernels`` when given
    (drawn by the caller, e.g. several networks' kernels in one call; no PRNG call here).
    Otherwise (``apply``) nothing is drawn and the MLP keeps its default.
    """
    if not module.is_initializing():
        return None, nn.initializers.zeros
    specs = head_specs(in_dim, hidden, out, ortho, scale)
    if kernels is None:
        kernels = draw_kernels(module.make_rng("params"), specs)
    elif [tuple(k.shape) for k in kernels] != [s.shape for s in specs]:
        raise ValueError(
            f"kernels of shapes {[tuple(k.shape) for k in kernels]} given, "
            f"the network has {[s.shape for s in specs]}"
        )
    return tuple(fixed(k) for k in kernels[:-1]), fixed(kernels[-1])


class ValueHead(nn.Module):
    """MLP torso then a scalar: ``[..., in] -> [...]``."""

    hidden: Sequence[int] = (256, 256)
    act: str = "relu"
    layer_norm: bool = False
    ortho: bool = False
    kernels: Sequence[jax.Array] | None = None  # pre-drawn kernels for init (head_inits)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        inits, head = head_inits(self, x.shape[-1], self.hidden, 1, self.ortho, 1.0, self.kernels)
        x = MLP(self.hidden, self.act, self.layer_norm, self.ortho, kernel_inits=inits)(x)
        return Dense(1, kernel_init=head)(x)[..., 0]


class Categorical(nn.Module):
    """Logits over ``num_actions`` actions: returns a distrax.Categorical."""

    num_actions: int
    hidden: Sequence[int] = (64, 64)
    act: str = "tanh"
    ortho: bool = True
    kernels: Sequence[jax.Array] | None = None  # pre-drawn kernels for init (head_inits)

    @nn.compact
    def __call__(self, x: jax.Array) -> distrax.Categorical:
        inits, head = head_inits(
            self, x.shape[-1], self.hidden, self.num_actions, self.ortho, 0.01, self.kernels
        )
        x = MLP(self.hidden, self.act, ortho=self.ortho, kernel_inits=inits)(x)
        logits = Dense(self.num_actions, kernel_init=head)(x)
        return distrax.Categorical(logits=logits)


class DiagGaussian(nn.Module):
    """Gaussian with state-independent log-std (PPO style): ``[..., act_dim]``."""

    action_dim: int
    hidden: Sequence[int] = (64, 64)
    act: str = "tanh"
    ortho: bool = True
    init_log_std: float = 0.0
    kernels: Sequence[jax.Array] | None = None  # pre-drawn kernels for init (head_inits)

    @nn.compact
    def __call__(self, x: jax.Array) -> distrax.MultivariateNormalDiag:
        inits, head = head_inits(
            self, x.shape[-1], self.hidden, self.action_dim, self.ortho, 0.01, self.kernels
        )
        x = MLP(self.hidden, self.act, ortho=self.ortho, kernel_inits=inits)(x)
        mean = Dense(self.action_dim, kernel_init=head)(x)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std) * jnp.ones_like(mean))


class TanhGaussian(nn.Module):
    """Tanh-squashed Gaussian with state-dependent std (SAC style).

    Returns ``(mean, std)`` of the pre-tanh Gaussian, each ``[..., act_dim]``;
    ``log_std`` is squashed into ``[log_std_min, log_std_max]`` by a tanh, or with
    ``clip_log_std`` clipped into it (DSAC-v2's hard clamp).
    """

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    act: str = "relu"
    layer_norm: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    clip_log_std: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = MLP(self.hidden, self.act, self.layer_norm)(x)
        mean = Dense(self.action_dim)(x)
        if self.clip_log_std:
            log_std = jnp.clip(Dense(self.action_dim)(x), self.log_std_min, self.log_std_max)
            return mean, jnp.exp(log_std)
        log_std = jnp.tanh(Dense(self.action_dim)(x))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mean, jnp.exp(log_std)


def tanh_gaussian_sample(
    mean: jax.Array, std: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Samples ``a = tanh(mean + std * eps)``; returns ``(a, log_prob)`` with the Jacobian term.

    Shapes: ``mean, std, a: [..., act_dim]``; ``log_prob: [...]``.
    """
    return tanh_gaussian(mean, std, jax.random.normal(key, mean.shape, mean.dtype))


def tanh_gaussian(mean: jax.Array, std: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``tanh_gaussian_sample`` with the standard normal noise ``eps`` given (same shape).

    Lets a caller draw the noise of several samples in one PRNG call.
    """
    pre = mean + std * eps
    log_prob = jnp.sum(-0.5 * eps**2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    # log(1 - tanh(x)^2) computed stably as 2 (log 2 - x - softplus(-2x)).
    log_prob -= jnp.sum(2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre)), axis=-1)
    return jnp.tanh(pre), log_prob


class QNetwork(nn.Module):
    """Q(s, a): ``[N, obs] x [N, act] -> [N]`` (the one Q-network; twin it with
    ``jaxrl.agents.actor_critic.common.twin``)."""

    hidden: tuple[int, ...]
    act: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = MLP(self.hidden, self.act, self.layer_norm)(jnp.concatenate([obs, action], -1))
        return nn.Dense(1)(x)[..., 0]


class DiscreteQ(nn.Module):
    """Q-values of every discrete action: ``[..., in] -> [..., num_actions]``.

    An MLP torso (``layer_norm``: LayerNorm before each activation, as in PQN) then a
    linear head; ``dueling`` splits the head into a value ``V [..., 1]`` and advantages
    ``A [..., num_actions]`` recombined as ``V + A - mean(A)`` (Wang et al., 2016).
    """

    num_actions: int
    hidden: tuple[int, ...] = (64, 64)
    act: str = "relu"
    layer_norm: bool = False
    dueling: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = MLP(self.hidden, self.act, self.layer_norm)(x)
        if not self.dueling:
            return Dense(self.num_actions)(x)
        value = Dense(1)(x)
        adv = Dense(self.num_actions)(x)
        return value + adv - jnp.mean(adv, axis=-1, keepdims=True)


class TanhPolicy(nn.Module):
    """Deterministic policy ``[..., in] -> [..., act_dim]`` in ``[-1, 1]`` (tanh head)."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    act: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(nn.Dense(self.action_dim)(MLP(self.hidden, self.act)(x)))
