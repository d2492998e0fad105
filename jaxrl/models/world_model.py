"""Drama's world model: categorical latents, a Mamba-2 sequence model, reward and
termination heads (Wang et al., 2024, following STORM / DreamerV3 for the parts
around the sequence model).

Shapes, batch-major ``[B, T, ...]`` inside the model (the sequence model scans time):

- encoder: ``obs [..., *obs_shape] -> logits [..., stoch, classes]`` (CNN for
  ``[H, W, C]`` observations, MLP for vectors); a latent ``z [..., stoch * classes]`` is
  one one-hot sample per group with straight-through gradients and 1% unimix.
- sequence model: ``(z_t, a_t)`` for ``t < T`` -> ``h_t [B, T, d_model]`` (Mamba-2 stack,
  or a causal Transformer with a sliding-window KV cache; parallel over a sequence, or
  one step with an explicit state).
- heads on ``h_t``: prior logits of ``z_{t+1}``, reward ``r_t`` (two-hot over symlog
  bins), termination logit of step ``t``; decoder ``z_t -> obs_t``.

Loss (``world_model_loss``) = reconstruction MSE + reward cross-entropy + termination
BCE + ``dyn_scale`` KL[sg(post) || prior] + ``rep_scale`` KL[post || sg(prior)], each
KL averaged over the batch, then clipped below at ``free_bits`` nats (as the official
code's ``CategoricalKLDivLossWithFreeBits``: the clip is on the batch mean, not per
sample as DreamerV3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.nets.dense import Dense
from jaxrl.nets.mamba import MambaStack, MambaState
from jaxrl.nets.transformer import KVCache, TransformerStack

# --- symlog two-hot -------------------------------------------------------------------


def symlog(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def twohot_bins(num_bins: int, low: float = -20.0, high: float = 20.0) -> jax.Array:
    """``[num_bins]`` evenly spaced bin centres in symlog space."""
    return jnp.linspace(low, high, num_bins)


def twohot(x: jax.Array, bins: jax.Array) -> jax.Array:
    """Two-hot encoding of ``x [...]`` (already in bin space) -> ``[..., num_bins]``.

    The two neighbouring bins get weights that interpolate ``x`` linearly; values
    outside the range go wholly to the end bin.
    """
    x = jnp.clip(x, bins[0], bins[-1])
    above = jnp.clip(jnp.searchsorted(bins, x, side="right"), 1, bins.shape[0] - 1)
    below = above - 1
    width = bins[above] - bins[below]
    w_above = (x - bins[below]) / width
    n = bins.shape[0]
    return (
        jax.nn.one_hot(below, n) * (1 - w_above)[..., None]
        + jax.nn.one_hot(above, n) * w_above[..., None]
    )


def twohot_mean(logits: jax.Array, bins: jax.Array) -> jax.Array:
    """Expected value ``symexp(sum_i p_i bin_i)`` of a two-hot head: ``[..., n] -> [...]``."""
    return symexp(jnp.sum(jax.nn.softmax(logits, -1) * bins, -1))


def twohot_loss(logits: jax.Array, target: jax.Array, bins: jax.Array) -> jax.Array:
    """Cross-entropy of ``logits [..., n]`` against ``twohot(symlog(target))``: ``[...]``."""
    return -jnp.sum(twohot(symlog(target), bins) * jax.nn.log_softmax(logits, -1), -1)


# --- categorical latents -----------------------------------------------------------------


def unimix_log_probs(logits: jax.Array, unimix: float) -> jax.Array:
    """Log of ``(1 - unimix) softmax(logits) + unimix / classes`` over the last axis."""
    probs = jax.nn.softmax(logits, -1)
    probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return jnp.log(probs)


def sample_latent(key: jax.Array, log_probs: jax.Array) -> jax.Array:
    """One-hot samples with straight-through gradients: ``[..., S, K] -> [..., S * K]``."""
    idx = jax.random.categorical(key, log_probs)
    one_hot = jax.nn.one_hot(idx, log_probs.shape[-1], dtype=log_probs.dtype)
    probs = jnp.exp(log_probs)
    z = one_hot + probs - jax.lax.stop_gradient(probs)
    return z.reshape((*z.shape[:-2], -1))


def categorical_kl(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
    """KL[p || q] summed over the latent groups: ``[..., S, K] -> [...]``."""
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=(-2, -1))


# --- networks ------------------------------------------------------------------------------


class MLPBlock(nn.Module):
    """Dense -> LayerNorm -> SiLU, ``layers`` times."""

    width: int
    layers: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(self.layers):
            x = nn.silu(nn.LayerNorm()(Dense(self.width)(x)))
        return x


class Encoder(nn.Module):
    """``obs [..., *obs_shape] -> logits [..., stoch, classes]``.

    With ``cnn``, ``[H, W, C]`` observations go through convolutions (kernel ``kernel``,
    channels ``channels``, stride 2, or 1 for the first with ``first_stride_one`` as the
    official encoder; LayerNorm, SiLU); otherwise the flattened observation goes through
    ``mlp_layers`` dense layers.
    """

    obs_shape: tuple[int, ...]
    stoch: int
    classes: int
    channels: Sequence[int] = (32, 64)
    hidden: int = 256
    mlp_layers: int = 2
    cnn: bool = True
    kernel: int = 4
    first_stride_one: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        batch = obs.shape[: obs.ndim - len(self.obs_shape)]
        x = obs.reshape((-1, *self.obs_shape)).astype(jnp.float32)
        if self.cnn and len(self.obs_shape) == 3:
            k = (self.kernel, self.kernel)
            for i, ch in enumerate(self.channels):
                stride = 1 if i == 0 and self.first_stride_one else 2
                x = nn.Conv(ch, k, strides=(stride, stride), padding="SAME")(x)
                x = nn.silu(nn.LayerNorm()(x))
            x = x.reshape((x.shape[0], -1))
        else:
            x = MLPBlock(self.hidden, self.mlp_layers)(x.reshape((x.shape[0], -1)))
        logits = Dense(self.stoch * self.classes)(x)
        return logits.reshape((*batch, self.stoch, self.classes))


class Decoder(nn.Module):
    """``z [..., stoch * classes] -> obs [..., *obs_shape]`` (mirror of ``Encoder``)."""

    obs_shape: tuple[int, ...]
    channels: Sequence[int] = (32, 64)
    hidden: int = 256
    mlp_layers: int = 2
    cnn: bool = True
    kernel: int = 4
    first_stride_one: bool = False

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        batch = z.shape[:-1]
        x = z.reshape((-1, z.shape[-1]))
        if self.cnn and len(self.obs_shape) == 3:
            height, width, out_ch = self.obs_shape
            k = (self.kernel, self.kernel)
            last_stride = 1 if self.first_stride_one else 2
            halvings = len(self.channels) - (1 if self.first_stride_one else 0)
            h0, w0 = -(-height // 2**halvings), -(-width // 2**halvings)
            x = Dense(h0 * w0 * self.channels[-1])(x)
            x = x.reshape((-1, h0, w0, self.channels[-1]))
            for ch in reversed(self.channels[:-1]):
                x = nn.ConvTranspose(ch, k, strides=(2, 2), padding="SAME")(x)
                x = nn.silu(nn.LayerNorm()(x))
            x = nn.ConvTranspose(out_ch, k, strides=(last_stride,) * 2, padding="SAME")(x)
            x = x[:, :height, :width, :]
        else:
            x = MLPBlock(self.hidden, self.mlp_layers)(x)
            x = Dense(math.prod(self.obs_shape))(x)
        return x.reshape((*batch, *self.obs_shape))


@dataclasses.dataclass(frozen=True)
class WorldModelConfig:
    """Static sizes of the world model. The defaults are a CPU-sized model;
    ``jaxrl.agents.model_based.drama.paper_config().world_model`` gives Drama's (2-layer
    Mamba-2, d_model 512, 32x32 latents, the official CNN encoder/decoder widths).
    ``encoder``: ``"cnn"`` for ``[H, W, C]`` images (vectors always use the MLP) or
    ``"mlp"`` (flattened observation; cheaper for MinAtar's 10x10 grids on a CPU)."""

    stoch: int = 16
    classes: int = 16
    d_model: int = 128
    num_layers: int = 2
    d_state: int = 16
    head_dim: int = 32
    expand: int = 2
    chunk_size: int = 32
    channels: tuple[int, ...] = (32, 64)
    kernel: int = 4
    first_stride_one: bool = False
    hidden: int = 256
    mlp_layers: int = 1
    num_bins: int = 255
    unimix: float = 0.01
    encoder: str = "cnn"
    #: "mamba" (Drama), or "transformer" (causal attention of about equal size with a
    #: sliding-window KV cache of ``attention_window`` steps for the recurrent form;
    #: ``attention_rope``: rotary positions instead of additive sinusoids).
    sequence_model: str = "mamba"
    num_attention_heads: int = 4
    ff_mult: int = 1
    attention_window: int = 64
    attention_rope: bool = False

    @property
    def latent_dim(self) -> int:
        return self.stoch * self.classes

    @property
    def feat_dim(self) -> int:
        """Size of the agent's input ``[z, h]``."""
        return self.latent_dim + self.d_model


SeqState = tuple[MambaState, ...] | KVCache


class WorldModel(nn.Module):
    """Encoder, decoder, sequence model (Mamba or Transformer) and heads (module docstring).

    Methods (call with ``apply(..., method=...)``): ``__call__`` (every submodule, for
    ``init``), ``encode``, ``decode``, ``sequence`` (parallel), ``seq_step`` (recurrent),
    ``heads``, ``prior``.
    """

    config: WorldModelConfig
    obs_shape: tuple[int, ...]
    num_actions: int

    def setup(self):
        c = self.config
        if c.encoder not in ("cnn", "mlp"):
            raise ValueError(f"world model encoder must be 'cnn' or 'mlp', got {c.encoder!r}")
        cnn = c.encoder == "cnn"
        conv = dict(kernel=c.kernel, first_stride_one=c.first_stride_one)
        self.encoder = Encoder(
            self.obs_shape, c.stoch, c.classes, c.channels, c.hidden, c.mlp_layers, cnn, **conv
        )
        self.decoder = Decoder(self.obs_shape, c.channels, c.hidden, c.mlp_layers, cnn, **conv)
        self.input_proj = Dense(c.d_model)
        self.mamba = sequence_stack(c)  # the attribute name keeps the params' paths
        self.prior_mlp = MLPBlock(c.hidden, c.mlp_layers)
        self.prior_out = Dense(c.latent_dim)
        self.reward_mlp = MLPBlock(c.hidden, c.mlp_layers)
        self.reward_out = Dense(c.num_bins, kernel_init=nn.initializers.zeros)
        self.term_mlp = MLPBlock(c.hidden, c.mlp_layers)
        self.term_out = Dense(1)

    def __call__(self, obs: jax.Array, action: jax.Array) -> Any:
        """``obs [B, T, ...]``, ``action [B, T]`` -> every output (initialises all params)."""
        z = sample_latent(jax.random.PRNGKey(0), self.encode(obs))
        h, _ = self.sequence(z, action)
        return self.decode(z), self.heads(h)

    def encode(self, obs: jax.Array) -> jax.Array:
        """``obs [..., *obs_shape]`` -> unimix log-probs ``[..., stoch, classes]``."""
        return unimix_log_probs(self.encoder(obs), self.config.unimix)

    def decode(self, z: jax.Array) -> jax.Array:
        return self.decoder(z)

    def _inputs(self, z: jax.Array, action: jax.Array) -> jax.Array:
        return self.input_proj(
            jnp.concatenate([z, jax.nn.one_hot(action, self.num_actions, dtype=z.dtype)], -1)
        )

    def sequence(
        self, z: jax.Array, action: jax.Array, state: SeqState | None = None
    ) -> tuple[jax.Array, SeqState]:
        """Parallel form: ``z [B, T, latent]``, ``action [B, T]`` -> ``(h [B, T, d], state)``."""
        return self.mamba(self._inputs(z, action), state)

    def seq_step(
        self, z: jax.Array, action: jax.Array, state: SeqState
    ) -> tuple[jax.Array, SeqState]:
        """Recurrent form: ``z [B, latent]``, ``action [B]`` -> ``(h [B, d], state)``."""
        return self.mamba.step(self._inputs(z, action), state)

    def prior(self, h: jax.Array) -> jax.Array:
        """``h [..., d]`` -> unimix log-probs of the next latent ``[..., stoch, classes]``."""
        logits = self.prior_out(self.prior_mlp(h))
        logits = logits.reshape((*h.shape[:-1], self.config.stoch, self.config.classes))
        return unimix_log_probs(logits, self.config.unimix)

    def heads(self, h: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``h [..., d]`` -> ``(prior log-probs, reward logits [..., bins], term logit [...])``."""
        reward = self.reward_out(self.reward_mlp(h))
        term = self.term_out(self.term_mlp(h))[..., 0]
        return self.prior(h), reward, term


def sequence_stack(config: WorldModelConfig) -> MambaStack | TransformerStack:
    """The (unbound) sequence model ``config.sequence_model`` names."""
    if config.sequence_model == "mamba":
        return MambaStack(
            d_model=config.d_model,
            num_layers=config.num_layers,
            d_state=config.d_state,
            expand=config.expand,
            head_dim=config.head_dim,
            chunk_size=config.chunk_size,
        )
    if config.sequence_model == "transformer":
        return TransformerStack(
            d_model=config.d_model,
            num_layers=config.num_layers,
            num_heads=config.num_attention_heads,
            ff_mult=config.ff_mult,
            window=config.attention_window,
            rope=config.attention_rope,
        )
    raise ValueError(
        f"sequence_model must be 'mamba' or 'transformer', got {config.sequence_model!r}"
    )


def world_model_loss(
    model: WorldModel,
    params: Any,
    batch: dict[str, jax.Array],
    key: jax.Array,
    *,
    free_bits: jax.Array | float = 1.0,
    dyn_scale: jax.Array | float = 1.0,
    rep_scale: jax.Array | float = 0.1,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Drama's world-model loss -> ``(loss, metrics)``.

    ``batch`` holds ``obs [B, T, ...]``, ``action [B, T]``, ``reward [B, T]`` and
    ``terminated [B, T]``: step ``t`` is the transition from ``obs_t`` under ``action_t``.
    """
    obs, action = batch["obs"], batch["action"]
    bsz, length = action.shape
    chex.assert_shape([batch["reward"], batch["terminated"]], (bsz, length))
    post = model.apply(params, obs, method=WorldModel.encode)  # [B, T, S, K]
    z = sample_latent(key, post)
    recon = model.apply(params, z, method=WorldModel.decode)
    recon_loss = jnp.mean(
        jnp.sum(jnp.square(recon - obs.astype(jnp.float32)).reshape((bsz, length, -1)), -1)
    )
    h, _ = model.apply(params, z, action, method=WorldModel.sequence)
    prior, reward_logits, term_logit = model.apply(params, h, method=WorldModel.heads)
    bins = twohot_bins(reward_logits.shape[-1])
    reward_loss = jnp.mean(twohot_loss(reward_logits, batch["reward"], bins))
    term = batch["terminated"].astype(jnp.float32)
    term_loss = jnp.mean(optax_sigmoid_bce(term_logit, term))
    # h_t predicts z_{t+1}: compare prior[:, :-1] with the posterior of obs[:, 1:].
    post_next, prior_now = post[:, 1:], prior[:, :-1]
    dyn = categorical_kl(jax.lax.stop_gradient(post_next), prior_now)
    rep = categorical_kl(post_next, jax.lax.stop_gradient(prior_now))
    # Free bits on the batch-mean KL (official): no gradient while the mean is below.
    dyn_loss = jnp.maximum(jnp.mean(dyn), free_bits)
    rep_loss = jnp.maximum(jnp.mean(rep), free_bits)
    loss = recon_loss + reward_loss + term_loss + dyn_scale * dyn_loss + rep_scale * rep_loss
    return loss, {
        "wm_loss": loss,
        "recon_loss": recon_loss,
        "reward_loss": reward_loss,
        "term_loss": term_loss,
        "kl_dyn": jnp.mean(dyn),
        "kl_rep": jnp.mean(rep),
    }


def optax_sigmoid_bce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Elementwise binary cross-entropy with logits (stable form)."""
    return jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def count_params(params: Any) -> int:
    """Number of scalars in a params pytree."""
    return int(sum(x.size for x in jax.tree.leaves(params)))
