"""GAE, lambda-returns and n-step returns against a float64 NumPy reference, episode ends
mixed in."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.returns import gae, lambda_returns, n_step_return


def reference_gae(r, v, v_next, term, trunc, gamma, lam):
    """Textbook per-env backward loop in float64."""
    T, B = r.shape
    adv = np.zeros((T, B))
    for b in range(B):
        running = 0.0
        for t in reversed(range(T)):
            delta = r[t, b] + gamma * (1 - term[t, b]) * v_next[t, b] - v[t, b]
            cont = 0.0 if (term[t, b] or trunc[t, b]) else 1.0
            running = delta + gamma * lam * cont * running
            adv[t, b] = running
    return adv, adv + v


def reference_lambda_returns(r, v_next, term, trunc, gamma, lam):
    T, B = r.shape
    out = np.zeros((T, B))
    for b in range(B):
        g = v_next[T - 1, b]
        for t in reversed(range(T)):
            if term[t, b] or trunc[t, b] or t == T - 1:
                tail = v_next[t, b]
            else:
                tail = (1 - lam) * v_next[t, b] + lam * g
            g = r[t, b] + gamma * (1 - term[t, b]) * tail
            out[t, b] = g
    return out


def random_batch(seed, T=17, B=5):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(T, B))
    v = rng.normal(size=(T, B))
    v_next = rng.normal(size=(T, B))
    term = rng.random((T, B)) < 0.1
    trunc = (rng.random((T, B)) < 0.1) & ~term
    term[3, 0], trunc[5, 1] = True, True  # at least one of each
    return r, v, v_next, term, trunc


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (0.97, 1.0)])
def test_gae_matches_reference(seed, gamma, lam):
    r, v, v_next, term, trunc = random_batch(seed)
    adv_ref, tgt_ref = reference_gae(r, v, v_next, term, trunc, gamma, lam)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    adv, tgt = jax.jit(gae)(
        f32(r), f32(v), f32(v_next), jnp.asarray(term), jnp.asarray(trunc), gamma, lam
    )
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tgt, tgt_ref, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    # One step, reward 1, V(next) = 10: truncation keeps gamma * 10, termination drops it.
    r = jnp.ones((1, 2))
    v = jnp.zeros((1, 2))
    v_next = jnp.full((1, 2), 10.0)
    term = jnp.array([[True, False]])
    trunc = jnp.array([[False, True]])
    adv, _ = gae(r, v, v_next, term, trunc, 0.5, 0.9)
    np.testing.assert_allclose(adv, [[1.0, 6.0]])


@pytest.mark.parametrize("seed", [0, 3])
def test_lambda_returns_match_reference(seed):
    r, _, v_next, term, trunc = random_batch(seed)
    ref = reference_lambda_returns(r, v_next, term, trunc, 0.99, 0.8)
    out = lambda_returns(
        jnp.asarray(r, jnp.float32),
        jnp.asarray(v_next, jnp.float32),
        jnp.asarray(term),
        jnp.asarray(trunc),
        0.99,
        0.8,
    )
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_lambda_one_returns_equal_gae_targets_on_monte_carlo_tail():
    # With lam=1 and no episode end the lambda-return is the discounted sum + bootstrap,
    # which equals GAE(lam=1) targets.
    r, v, v_next, _, _ = random_batch(4)
    no = jnp.zeros(r.shape, bool)
    v_next = np.concatenate([v[1:], v_next[-1:]])
    _, tgt = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(v_next), no, no, 0.95, 1.0)
    lr = lambda_returns(jnp.asarray(r), jnp.asarray(v_next), no, no, 0.95, 1.0)
    np.testing.assert_allclose(tgt, lr, rtol=1e-4, atol=1e-4)


def reference_n_step(r, v_next, term, trunc, gamma):
    """Per-window float64 loop: discounted rewards up to the first episode end (or the
    window's end), then the bootstrap value unless that step terminated."""
    T, B = r.shape
    out = np.zeros(B)
    for b in range(B):
        g, disc = 0.0, 1.0
        for t in range(T):
            g += disc * r[t, b]
            disc *= gamma
            if term[t, b]:
                break
            if trunc[t, b] or t == T - 1:
                g += disc * v_next[t, b]
                break
        out[b] = g
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("T", [1, 3, 6])
def test_n_step_return_matches_reference_and_lambda_one(seed, T):
    rng = np.random.default_rng(seed)
    r, v_next = rng.normal(size=(T, 64)), rng.normal(size=(T, 64))
    term = rng.random((T, 64)) < 0.2
    trunc = (rng.random((T, 64)) < 0.2) & ~term
    term[0, 2], trunc[0, 2] = True, False  # terminated on the first step
    ret, discount, last = n_step_return(
        jnp.asarray(r, jnp.float32), jnp.asarray(term), jnp.asarray(trunc), 0.9
    )
    target = ret + discount * np.take_along_axis(v_next, np.asarray(last)[None], 0)[0]
    ref = reference_n_step(r, v_next, term, trunc, 0.9)
    np.testing.assert_allclose(target, ref, rtol=1e-5, atol=1e-5)
    lam_one = lambda_returns(
        jnp.asarray(r), jnp.asarray(v_next), jnp.asarray(term), jnp.asarray(trunc), 0.9, 1.0
    )[0]
    np.testing.assert_allclose(target, lam_one, rtol=1e-5, atol=1e-5)
    assert float(discount[2]) == 0.0 and int(last[2]) == 0  # terminated at once
