"""Mamba-2 selective state-space block (Dao & Gu, 2024) in two forms that agree.

Per head ``h`` (scalar decay ``A_h < 0``), with ``dt_t = softplus(. + dt_bias) > 0``::

    state_t = exp(dt_t A_h) state_{t-1} + dt_t x_t B_t^T      # [head_dim, d_state]
    y_t     = state_t C_t + D_h x_t

``Mamba2.__call__`` runs a whole sequence ``[B, L, d_model]`` in parallel with the
chunked SSD algorithm (``ssd_chunked``: matmuls inside chunks of ``chunk_size`` steps,
one ``lax.scan`` over chunks that passes the state along), so time and memory are
``O(L * chunk_size)``, linear in ``L``. ``Mamba2.step`` advances one step ``[B, d_model]``
from an explicit ``MambaState`` (for acting and imagination). Both return the state
after their last step, so a sequence run can be continued step by step and vice versa.

The block follows the reference Mamba-2 layout: one input projection to
``(z, x, B, C, dt)``, a causal depthwise convolution of width ``d_conv`` with SiLU over
``(x, B, C)``, the SSM above with one group of ``B, C`` shared by all heads, a gated
RMSNorm ``norm(y * silu(z))`` and an output projection.
"""

from __future__ import annotations

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.nets.dense import Dense


class MambaState(struct.PyTreeNode):
    """Recurrent state of one ``Mamba2`` block.

    Attributes:
      conv: ``[B, d_conv - 1, conv_dim]`` the last inputs of the causal convolution.
      ssm: ``[B, num_heads, head_dim, d_state]`` the SSM state.
    """

    conv: jax.Array
    ssm: jax.Array


def ssd_chunked(
    x: jax.Array,
    dt: jax.Array,
    a: jax.Array,
    b: jax.Array,
    c: jax.Array,
    chunk_size: int,
    initial: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The SSM recurrence over a sequence, by chunks (state-space duality).

    Args:
      x: ``[B, L, H, P]`` inputs per head.
      dt: ``[B, L, H]`` positive step sizes.
      a: ``[H]`` negative decay rates.
      b, c: ``[B, L, N]`` input and output projections (one group shared by all heads).
      chunk_size: steps per chunk; ``L`` need not be a multiple (the tail is padded
        with ``dt = 0``, which leaves the state unchanged).
      initial: ``[B, H, P, N]`` state before the first step (zeros when ``None``).

    Returns:
      ``(y [B, L, H, P], final_state [B, H, P, N])`` without the ``D`` skip term.
    """
    bsz, length, heads, head_dim = x.shape
    n = b.shape[-1]
    chex.assert_shape(dt, (bsz, length, heads))
    chex.assert_shape([b, c], (bsz, length, n))
    if initial is None:
        initial = jnp.zeros((bsz, heads, head_dim, n), x.dtype)
    q = chunk_size
    chunks = -(-length // q)
    pad = chunks * q - length

    def blocks(v):
        v = jnp.pad(v, [(0, 0), (0, pad)] + [(0, 0)] * (v.ndim - 2))
        return v.reshape((bsz, chunks, q, *v.shape[2:]))

    x, dt, b, c = blocks(x), blocks(dt), blocks(b), blocks(c)
    log_decay = jnp.cumsum(dt * a, axis=2)  # [B, nc, Q, H]: sum of dt A up to each step
    xdt = x * dt[..., None]  # [B, nc, Q, H, P]

    # Inside a chunk: y_i = sum_{j <= i} (C_i . B_j) exp(cum_i - cum_j) dt_j x_j.
    causal = jnp.tril(jnp.ones((q, q), jnp.bool_))[None, None, :, :, None]
    gap = log_decay[:, :, :, None, :] - log_decay[:, :, None, :, :]  # [B, nc, Qi, Qj, H]
    decay = jnp.exp(jnp.where(causal, gap, -jnp.inf))
    scores = jnp.einsum("bkin,bkjn->bkij", c, b)[..., None] * decay  # [B, nc, Qi, Qj, H]
    y_inner = jnp.einsum("bkijh,bkjhp->bkihp", scores, xdt)

    # What each chunk adds to the state at its end, and how much it decays the state.
    to_end = jnp.exp(log_decay[:, :, -1:, :] - log_decay)  # [B, nc, Q, H]
    added = jnp.einsum("bkjn,bkjh,bkjhp->bkhpn", b, to_end, xdt)  # [B, nc, H, P, N]
    chunk_decay = jnp.exp(log_decay[:, :, -1, :])  # [B, nc, H]

    def carry_state(state, inputs):
        d, s = inputs
        return d[..., None, None] * state + s, state

    final, before = jax.lax.scan(
        carry_state, initial, (jnp.moveaxis(chunk_decay, 1, 0), jnp.moveaxis(added, 1, 0))
    )
    before = jnp.moveaxis(before, 0, 1)  # [B, nc, H, P, N]: state entering each chunk
    y_carried = jnp.einsum("bkin,bkih,bkhpn->bkihp", c, jnp.exp(log_decay), before)
    y = (y_inner + y_carried).reshape((bsz, chunks * q, heads, head_dim))[:, :length]
    return y, final


def ssd_step(
    state: jax.Array, x: jax.Array, dt: jax.Array, a: jax.Array, b: jax.Array, c: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One step of the recurrence: ``x [B, H, P]``, ``dt [B, H]``, ``b, c [B, N]``,
    ``state [B, H, P, N]`` -> ``(y [B, H, P], state)`` (no ``D`` term)."""
    decay = jnp.exp(dt * a)[..., None, None]
    state = decay * state + jnp.einsum("bhp,bn->bhpn", x * dt[..., None], b)
    return jnp.einsum("bhpn,bn->bhp", state, c), state


def _causal_conv(
    u: jax.Array, prefix: jax.Array, kernel: jax.Array, bias: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Depthwise causal conv: ``u [B, L, D]`` after ``prefix [B, K-1, D]``, ``kernel [K, D]``.

    Returns ``(out [B, L, D], new_prefix [B, K-1, D])``.
    """
    k = kernel.shape[0]
    length = u.shape[1]
    full = jnp.concatenate([prefix, u], axis=1)  # [B, L + K - 1, D]
    out = sum(full[:, i : i + length] * kernel[i] for i in range(k)) + bias
    return out, full[:, length:]


def _dt_bias_init(dt_min: float = 1e-3, dt_max: float = 0.1):
    """Inverse softplus of step sizes drawn log-uniformly in ``[dt_min, dt_max]``."""

    def init(key, shape, dtype=jnp.float32):
        u = jax.random.uniform(key, shape, dtype)
        dt = jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        return dt + jnp.log(-jnp.expm1(-dt))

    return init


def _a_log_init(key, shape, dtype=jnp.float32):
    return jnp.log(jax.random.uniform(key, shape, dtype, 1.0, 16.0))


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last axis."""

    eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],))
        x32 = x.astype(jnp.float32)
        rms = jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
        return (x32 * rms).astype(x.dtype) * weight


class Mamba2(nn.Module):
    """Mamba-2 mixer: ``[B, L, d_model] -> [B, L, d_model]`` (see the module docstring).

    ``d_inner = expand * d_model`` must be a multiple of ``head_dim``; the block has
    ``d_inner / head_dim`` heads.
    """

    d_model: int
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    head_dim: int = 64
    chunk_size: int = 64

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def num_heads(self) -> int:
        return self.d_inner // self.head_dim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.d_state

    def setup(self):
        if self.d_inner % self.head_dim:
            raise ValueError(
                f"Mamba2: expand * d_model = {self.d_inner} must be a multiple of "
                f"head_dim = {self.head_dim}"
            )
        self.in_proj = Dense(2 * self.d_inner + 2 * self.d_state + self.num_heads, use_bias=False)
        bound = 1.0 / math.sqrt(self.d_conv)
        self.conv_kernel = self.param(
            "conv_kernel",
            lambda k, s: jax.random.uniform(k, s, jnp.float32, -bound, bound),
            (self.d_conv, self.conv_dim),
        )
        self.conv_bias = self.param("conv_bias", nn.initializers.zeros, (self.conv_dim,))
        self.dt_bias = self.param("dt_bias", _dt_bias_init(), (self.num_heads,))
        self.a_log = self.param("a_log", _a_log_init, (self.num_heads,))
        self.skip = self.param("D", nn.initializers.ones, (self.num_heads,))
        self.norm = RMSNorm()
        self.out_proj = Dense(self.d_model, use_bias=False)

    def initial_state(self, batch: int) -> MambaState:
        """Zero state for ``batch`` sequences (uses only the fields: no params needed)."""
        return MambaState(
            conv=jnp.zeros((batch, self.d_conv - 1, self.conv_dim), jnp.float32),
            ssm=jnp.zeros((batch, self.num_heads, self.head_dim, self.d_state), jnp.float32),
        )

    def _split(self, proj: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        z, xbc, dt = jnp.split(proj, [self.d_inner, 2 * self.d_inner + 2 * self.d_state], -1)
        return z, xbc, jax.nn.softplus(dt + self.dt_bias)

    def _out(self, y: jax.Array, x: jax.Array, z: jax.Array) -> jax.Array:
        y = y + x * self.skip[:, None]
        y = y.reshape((*y.shape[:-2], self.d_inner))
        return self.out_proj(self.norm(y * jax.nn.silu(z)))

    def __call__(
        self, u: jax.Array, state: MambaState | None = None
    ) -> tuple[jax.Array, MambaState]:
        """Parallel form: ``u [B, L, d_model]`` -> ``(y [B, L, d_model], state after L)``."""
        chex.assert_rank(u, 3)
        bsz, length, _ = u.shape
        if state is None:
            state = self.initial_state(bsz)
        z, xbc, dt = self._split(self.in_proj(u))
        xbc, conv = _causal_conv(xbc, state.conv, self.conv_kernel, self.conv_bias)
        x, b, c = jnp.split(jax.nn.silu(xbc), [self.d_inner, self.d_inner + self.d_state], -1)
        x = x.reshape((bsz, length, self.num_heads, self.head_dim))
        a = -jnp.exp(self.a_log)
        y, ssm = ssd_chunked(x, dt, a, b, c, self.chunk_size, state.ssm)
        return self._out(y, x, z), MambaState(conv=conv, ssm=ssm)

    def step(self, u: jax.Array, state: MambaState) -> tuple[jax.Array, MambaState]:
        """Recurrent form: ``u [B, d_model]`` -> ``(y [B, d_model], next state)``."""
        chex.assert_rank(u, 2)
        z, xbc, dt = self._split(self.in_proj(u))
        xbc, conv = _causal_conv(xbc[:, None], state.conv, self.conv_kernel, self.conv_bias)
        x, b, c = jnp.split(jax.nn.silu(xbc[:, 0]), [self.d_inner, self.d_inner + self.d_state], -1)
        x = x.reshape((u.shape[0], self.num_heads, self.head_dim))
        y, ssm = ssd_step(state.ssm, x, dt, -jnp.exp(self.a_log), b, c)
        return self._out(y, x, z), MambaState(conv=conv, ssm=ssm)


class MambaStack(nn.Module):
    """``num_layers`` pre-norm residual Mamba-2 blocks and a final RMSNorm.

    ``x + Mamba2(RMSNorm(x))`` per layer; states are a tuple with one ``MambaState``
    per layer. ``__call__`` is the parallel form over ``[B, L, d_model]``, ``step`` the
    recurrent form over ``[B, d_model]``.
    """

    d_model: int
    num_layers: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    head_dim: int = 64
    chunk_size: int = 64

    def setup(self):
        kw = dict(
            d_model=self.d_model,
            d_state=self.d_state,
            d_conv=self.d_conv,
            expand=self.expand,
            head_dim=self.head_dim,
            chunk_size=self.chunk_size,
        )
        self.blocks = [Mamba2(**kw) for _ in range(self.num_layers)]
        self.norms = [RMSNorm() for _ in range(self.num_layers)]
        self.final_norm = RMSNorm()

    def initial_state(self, batch: int) -> tuple[MambaState, ...]:
        """Zero states, one per layer (uses only the fields: no params needed)."""
        d_inner = self.expand * self.d_model
        one = MambaState(
            conv=jnp.zeros((batch, self.d_conv - 1, d_inner + 2 * self.d_state), jnp.float32),
            ssm=jnp.zeros((batch, d_inner // self.head_dim, self.head_dim, self.d_state)),
        )
        return (one,) * self.num_layers

    def __call__(
        self, x: jax.Array, state: tuple[MambaState, ...] | None = None
    ) -> tuple[jax.Array, tuple[MambaState, ...]]:
        if state is None:
            state = self.initial_state(x.shape[0])
        new = []
        for block, norm, s in zip(self.blocks, self.norms, state, strict=True):
            y, s = block(norm(x), s)
            x = x + y
            new.append(s)
        return self.final_norm(x), tuple(new)

    def step(
        self, x: jax.Array, state: tuple[MambaState, ...]
    ) -> tuple[jax.Array, tuple[MambaState, ...]]:
        new = []
        for block, norm, s in zip(self.blocks, self.norms, state, strict=True):
            y, s = block.step(norm(x), s)
            x = x + y
            new.append(s)
        return self.final_norm(x), tuple(new)
