"""Networks and initialisers."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.nets import MLP, Categorical, DiagGaussian, ValueHead
from jaxrl.nets.init import KernelSpec, draw_kernels, orthogonal, orthonormal_columns
from jaxrl.nets.mlp import head_specs


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


def test_draw_kernels_padded_batch_equals_each_layer_alone():
    """One batched Gram-Schmidt over zero-padded layers gives each layer's own Q."""
    specs = [KernelSpec((4, 64), True, 2.0), KernelSpec((64, 64), True), KernelSpec((64, 2), True)]
    kernels = draw_kernels(jax.random.PRNGKey(0), specs)
    for spec, w in zip(specs, kernels, strict=True):
        w = np.asarray(w, np.float64)
        assert w.shape == spec.shape
        tall = w if w.shape[0] >= w.shape[1] else w.T
        np.testing.assert_allclose(tall.T @ tall, spec.scale**2 * np.eye(tall.shape[1]), atol=1e-4)
        # Q of the layer's own Gaussian (unpadded) recovers the same kernel up to float error.
        alone = np.asarray(orthonormal_columns(jnp.asarray(tall / spec.scale, jnp.float32)))
        np.testing.assert_allclose(alone * spec.scale, tall, atol=1e-4)


def test_draw_kernels_lecun_statistics_and_keys():
    """lecun-normal: std sqrt(1/fan_in) of a normal truncated at 2 std; new key, new draw."""
    specs = [KernelSpec((256, 512), False), KernelSpec((16, 512), False)]
    big, small = (np.asarray(w) for w in draw_kernels(jax.random.PRNGKey(0), specs))
    for w, fan_in in ((big, 256), (small, 16)):
        std = np.sqrt(1.0 / fan_in)
        assert abs(w.std() / std - 1.0) < 0.02 and abs(w.mean()) < 0.05 * std
        assert np.abs(w).max() <= 2.0 * std / 0.87962566103423978 + 1e-6
    again = np.asarray(draw_kernels(jax.random.PRNGKey(1), specs)[0])
    assert not np.allclose(again, big)


def test_heads_init_every_kernel_from_one_draw_and_apply_draws_nothing():
    """Categorical's kernels (MLP + head) are orthogonal with their gains, and ``apply``
    (no "params" rng) runs without drawing."""
    x = jnp.ones((3, 4))
    cat = Categorical(2, (8, 8), ortho=True)
    params = cat.init(jax.random.PRNGKey(0), x)
    gains = {"MLP_0/Dense_0": 2.0, "MLP_0/Dense_1": 2.0, "Dense_0": 1e-4}
    flat = {
        "/".join(k.key for k in p[1:-1]): v
        for p, v in jax.tree_util.tree_leaves_with_path(params)
        if p[-1].key == "kernel"
    }
    assert set(flat) == set(gains)
    for name, w in flat.items():
        w = np.asarray(w, np.float64)
        tall = w if w.shape[0] >= w.shape[1] else w.T
        np.testing.assert_allclose(
            tall.T @ tall, gains[name] * np.eye(tall.shape[1]), rtol=1e-3, atol=1e-7
        )
    assert cat.apply(params, x).logits.shape == (3, 2)


def test_heads_take_given_kernels_and_check_their_shapes():
    """``kernels`` (drawn by the caller) become the init's kernels as they are; wrong
    shapes are a clear error naming both."""
    x = jnp.ones((3, 4))
    specs = head_specs(4, (8, 8), 1, True, 1.0)
    kernels = tuple(draw_kernels(jax.random.PRNGKey(5), specs))
    params = ValueHead((8, 8), "tanh", ortho=True, kernels=kernels).init(jax.random.PRNGKey(0), x)
    got = [params["params"]["MLP_0"][f"Dense_{i}"]["kernel"] for i in range(2)]
    got.append(params["params"]["Dense_0"]["kernel"])
    for g, k in zip(got, kernels, strict=True):
        np.testing.assert_array_equal(g, k)
    with pytest.raises(ValueError, match="kernels of shapes"):
        Categorical(2, (8, 8), kernels=kernels).init(jax.random.PRNGKey(0), x)


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


@pytest.mark.parametrize("which", ["drama_actor", "drama_critic", "srl_actor"])
def test_recurrent_and_head_inits_hold_no_qr_custom_call(which):
    """A batched LAPACK QR (flax's orthogonal init, GRUCell's default recurrent init)
    vmapped over seeds can deadlock XLA:CPU's thread pool on 2 cores (seen as a hung,
    idle ``golden.py`` run in ``lapack_sgeqrf_ffi``): these modules use jaxrl's
    Gram-Schmidt ``orthogonal`` instead, so their vmapped init has no ``qr``."""
    from jaxrl.agents.actor_critic.srl import SequenceActor
    from jaxrl.agents.model_based.drama import Actor, Critic

    x = jnp.zeros((2, 6))
    module, args = {
        "drama_actor": (Actor(num_actions=3, hidden=8, layers=1), (x,)),
        "drama_critic": (Critic(num_bins=5, hidden=8, layers=1), (x,)),
        "srl_actor": (SequenceActor(action_dim=1, hidden=(8,), gru_size=8), (x, 2)),
    }[which]
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    init = jax.vmap(lambda k: module.init(k, *args))
    text = str(jax.make_jaxpr(init)(keys))
    assert re.search(r"\bqr\[", text) is None  # the qr primitive: LAPACK geqrf on CPU
