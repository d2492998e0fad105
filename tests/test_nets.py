"""Networks and initialisers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.nets import MLP, Categorical, DiagGaussian
from jaxrl.nets.init import orthogonal, orthonormal_columns


def test_gram_schmidt_equals_qr_with_positive_diagonal():
    a = np.random.default_rng(0).normal(size=(64, 48))
    q = np.asarray(orthonormal_columns(jnp.asarray(a, jnp.float32)), np.float64)
    q_ref, r = np.linalg.qr(a)
    q_ref = q_ref * np.sign(np.diag(r))
    np.testing.assert_allclose(q, q_ref, atol=2e-4)
    np.testing.assert_allclose(q.T @ q, np.eye(48), atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 32), (32, 8), (16, 16)])
def test_orthogonal_init_is_scaled_orthogonal(shape):
    w = np.asarray(orthogonal(2.0)(jax.random.PRNGKey(0), shape), np.float64)
    small = min(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-4)


def test_orthogonal_init_vmaps_over_keys():
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    w = jax.jit(jax.vmap(lambda k: orthogonal()(k, (5, 4))))(keys)
    assert w.shape == (3, 5, 4) and not np.allclose(w[0], w[1])


def test_heads_shapes_and_log_probs():
    x = jnp.ones((7, 3))
    cat = Categorical(4, (16,))
    params = cat.init(jax.random.PRNGKey(0), x)
    dist = cat.apply(params, x)
    assert dist.logits.shape == (7, 4)
    np.testing.assert_allclose(jnp.exp(dist.logits).sum(-1) / jnp.exp(dist.logits).sum(-1), 1.0)
    gauss = DiagGaussian(2, (16,))
    params = gauss.init(jax.random.PRNGKey(0), x)
    dist = gauss.apply(params, x)
    a = dist.sample(seed=jax.random.PRNGKey(1))
    assert a.shape == (7, 2) and dist.log_prob(a).shape == (7,)
    out = MLP((8, 5), layer_norm=True).init_with_output(jax.random.PRNGKey(0), x)[0]
    assert out.shape == (7, 5)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation"):
        MLP((4,), act="nosuch").init(jax.random.PRNGKey(0), jnp.ones((1, 2)))


def test_dense_matches_flax_dense_in_value_and_gradient():
    import flax.linen as nn

    from jaxrl.nets.dense import Dense

    x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 5))
    ours, ref = Dense(4), nn.Dense(4)
    params = ref.init(jax.random.PRNGKey(1), x)

    def loss(module, p, x):
        return jnp.sum(jnp.sin(module.apply(p, x)))

    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-6)
    g_ours = jax.jit(jax.grad(lambda p, x: loss(ours, p, x), argnums=(0, 1)))(params, x)
    g_ref = jax.grad(lambda p, x: loss(ref, p, x), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Per-seed params under vmap, as in seed sweeps.
    stacked = jax.tree.map(lambda p: jnp.stack([p, 2 * p]), params)
    g_vmap = jax.vmap(jax.grad(lambda p: loss(ours, p, x)))(stacked)
    g_two = jax.grad(lambda p: loss(ref, p, x))(jax.tree.map(lambda p: 2 * p, params))
    for a, b in zip(jax.tree.leaves(g_vmap), jax.tree.leaves(g_two), strict=True):
        np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=1e-6)
