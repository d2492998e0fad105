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
