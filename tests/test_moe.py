"""Mixture-of-experts layer: one expert is an MLP, top-k weights, aux loss, jit/vmap/grad."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.nets.moe import MoE, MoETanhGaussian, aux_losses, top_k_weights


def _params_with_biases(module, x, key=0):
    """Init params plus noise, so that biases are non-zero (one jitted call)."""

    @jax.jit
    def make(k):
        init_key, noise_key = jax.random.split(k)
        params = module.init(init_key, x)["params"]
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(noise_key, len(leaves))
        noisy = [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
        return {"params": jax.tree.unflatten(treedef, noisy)}

    return make(jax.random.PRNGKey(key))


def test_one_expert_equals_a_plain_mlp():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 6))
    moe = MoE(features=3, num_experts=1, top_k=1, expert_hidden=5)
    params = _params_with_biases(moe, x)
    p = params["params"]

    class Plain(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.relu(nn.Dense(5)(x))
            return nn.Dense(3)(h)

    plain_params = {
        "params": {
            "Dense_0": {"kernel": p["w1"][0], "bias": p["b1"][0]},
            "Dense_1": {"kernel": p["w2"][0], "bias": p["b2"][0]},
        }
    }
    expected = jax.jit(Plain().apply)(plain_params, x)
    y = jax.jit(moe.apply)(params, x)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    x64, w1, b1, w2, b2 = (
        np.float64(a) for a in (x, p["w1"][0], p["b1"][0], p["w2"][0], p["b2"][0])
    )
    ref = np.maximum(x64 @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_top_k_weights_renormalise_the_k_largest():
    probs = jax.jit(lambda k: jax.nn.softmax(jax.random.normal(k, (5, 8))))(jax.random.PRNGKey(1))
    w = np.asarray(jax.jit(top_k_weights, static_argnums=1)(probs, 3))
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    assert np.all((w > 0).sum(-1) == 3)
    p = np.float64(probs)
    for row, wrow in zip(p, w, strict=True):
        top = np.argsort(row)[-3:]
        expected = np.zeros(8)
        expected[top] = row[top] / row[top].sum()
        np.testing.assert_allclose(wrow, expected, rtol=1e-5, atol=1e-7)


def test_output_shape_and_aux_loss_against_numpy():
    x = jax.random.normal(jax.random.PRNGKey(2), (7, 6))
    moe = MoE(features=4, num_experts=5, top_k=2, expert_hidden=3)
    params = _params_with_biases(moe, x)
    y, state = jax.jit(lambda p, x: moe.apply(p, x, mutable=["losses", "intermediates"]))(params, x)
    assert y.shape == (7, 4)
    assert state["intermediates"]["activated:experts"][0].shape == (7, 5 * 3)
    g = params["params"]["gate"]
    logits = np.float64(x) @ np.float64(g["kernel"]) + np.float64(g["bias"])
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    w = np.zeros_like(probs)
    for i, row in enumerate(probs):
        top = np.argsort(row)[-2:]
        w[i, top] = row[top] / row[top].sum()
    expected = np.var(w.mean(0)) + np.mean(-np.sum(probs * np.log(probs), -1))
    np.testing.assert_allclose(jax.jit(aux_losses)(state), expected, rtol=1e-4)
    # The output is the weighted sum of the experts' outputs.
    p = {k: np.float64(v) for k, v in params["params"].items() if k != "gate"}
    experts = (
        np.einsum(
            "neh,eho->neo", np.maximum(np.einsum("ni,eih->neh", x, p["w1"]) + p["b1"], 0), p["w2"]
        )
        + p["b2"]
    )
    np.testing.assert_allclose(y, np.einsum("ne,neo->no", w, experts), rtol=1e-4, atol=1e-5)


def test_jit_vmap_grad_and_routing():
    x = jax.random.normal(jax.random.PRNGKey(3), (6,))
    moe = MoE(features=2, num_experts=4, top_k=1, expert_hidden=3)
    params = jax.jit(moe.init)(jax.random.PRNGKey(4), x)

    def loss(p, x):
        y, state = moe.apply(p, x, mutable=["losses"])
        return jnp.sum(y**2) + aux_losses(state)

    grads = jax.jit(jax.grad(loss))(params, x)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    # top-1 on a single input: only the chosen expert's weights get a gradient.
    norms = np.asarray(jnp.sum(jnp.abs(grads["params"]["w2"]), axis=(1, 2)))
    assert (norms > 0).sum() == 1
    xs = jax.random.normal(jax.random.PRNGKey(5), (3, 6))
    batched = jax.jit(jax.vmap(lambda x: moe.apply(params, x)))(xs)
    np.testing.assert_allclose(batched, jax.jit(moe.apply)(params, xs), rtol=1e-5, atol=1e-6)


def test_bad_top_k_raises():
    with pytest.raises(ValueError, match="top_k"):
        MoE(features=2, num_experts=2, top_k=3).init(jax.random.PRNGKey(0), jnp.ones((1, 4)))


def test_moe_actor_shapes_and_std_range():
    actor = MoETanhGaussian(2, hidden=(16, 16), num_experts=4, top_k=2, expert_hidden=4)
    obs = jnp.ones((5, 3))
    mean, std = jax.jit(lambda k: actor.apply(actor.init(k, obs), obs))(jax.random.PRNGKey(0))
    assert mean.shape == std.shape == (5, 2)
    assert bool(jnp.all((std >= np.exp(-5.0) - 1e-6) & (std <= np.exp(2.0) + 1e-5)))
