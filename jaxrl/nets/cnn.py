"""Convolutional torsos for image observations."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.nets.dense import Dense
from jaxrl.nets.init import orthogonal


def conv_valid(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """VALID cross-correlation ``[N, H, W, C] x [k, k, C, O] -> [N, H', W', O]`` as strided
    slices and one matmul (what ``lax.conv`` computes).

    Under a vmap over parameters (seeds) a ``lax.conv`` becomes a grouped convolution,
    which XLA:CPU runs far slower than a batched matmul; this form stays a matmul.
    """
    k, c = kernel.shape[0], kernel.shape[2]
    oh = (x.shape[1] - k) // stride + 1
    ow = (x.shape[2] - k) // stride + 1
    cols = [
        x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
        for i in range(k)
        for j in range(k)
    ]
    patches = jnp.concatenate(cols, axis=-1)  # [N, H', W', k * k * C], (i, j, c) order
    return patches.astype(kernel.dtype) @ kernel.reshape(k * k * c, -1)


class NatureCNN(nn.Module):
    """The DQN torso (Mnih et al. 2015) as Atari PPO uses it (CleanRL, PureJaxRL).

    ``[..., H, W, C]`` pixels in ``[0, 255]`` (uint8 or float) -> ``[..., features]``:
    convolutions 32x8x8/4, 64x4x4/2, 64x3x3/1 (VALID), then a dense layer, ReLU after
    each, orthogonal init with gain sqrt(2), zero biases. Inputs are scaled by 1/255.
    """

    features: int = 512
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lead = x.shape[:-3]
        x = x.reshape((-1, *x.shape[-3:]))
        init = orthogonal(np.sqrt(2))
        for i, (ch, k, s) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            kernel = self.param(f"conv{i}_kernel", init, (k, k, x.shape[-1], ch), self.dtype)
            bias = self.param(f"conv{i}_bias", nn.initializers.zeros, (ch,), self.dtype)
            if i == 0:  # scale after the patches: uint8 pixels are copied at 1 byte each
                x = conv_valid(x, kernel / 255.0, s) + bias
            else:
                x = conv_valid(x, kernel, s) + bias
            x = nn.relu(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(Dense(self.features, kernel_init=init, dtype=self.dtype)(x))
        return x.reshape((*lead, self.features))
