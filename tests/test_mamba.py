"""Mamba-2 block: the parallel (chunked SSD) and recurrent forms agree, and both match a
float64 NumPy recurrence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.nets.mamba import Mamba2, MambaStack, ssd_chunked, ssd_step

CHUNK = 8


def _stack() -> MambaStack:
    return MambaStack(d_model=32, num_layers=2, d_state=8, head_dim=16, chunk_size=CHUNK)


def _run_recurrent(model, params, x, state):
    def body(s, xt):
        y, s = model.apply(params, xt, s, method=type(model).step)
        return s, y

    state, ys = jax.lax.scan(body, state, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(ys, 0, 1), state


def _both_forms(model, params, x, state):
    """Parallel and recurrent outputs and final states, in one compiled call."""
    return jax.jit(lambda p, x, s: (model.apply(p, x, s), _run_recurrent(model, p, x, s)))(
        params, x, state
    )


def _max_err(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(u - v)))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _block() -> Mamba2:
    return Mamba2(d_model=32, d_state=8, head_dim=16, chunk_size=CHUNK)


@pytest.mark.parametrize("length", [5, 37])
def test_mamba_parallel_matches_recurrent(length):
    """One block, lengths below, at and not a multiple of the chunk size (8)."""
    model = _block()
    x = jax.random.normal(jax.random.PRNGKey(length), (3, length, 32))
    params = model.init(jax.random.PRNGKey(1), x)
    (y_par, s_par), (y_rec, s_rec) = _both_forms(model, params, x, model.initial_state(3))
    assert y_par.shape == (3, length, 32)
    assert _max_err(y_par, y_rec) <= 1e-4
    assert _max_err(s_par, s_rec) <= 1e-4


def test_mamba_stack_parallel_matches_recurrent():
    """The 2-layer residual stack at a length that is not a multiple of the chunk."""
    model = _stack()
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 13, 32))
    params = model.init(jax.random.PRNGKey(1), x)
    (y_par, s_par), (y_rec, s_rec) = _both_forms(model, params, x, model.initial_state(3))
    assert _max_err(y_par, y_rec) <= 1e-4
    assert _max_err(s_par, s_rec) <= 1e-4


def test_mamba_random_lengths_and_nonzero_start_state():
    """Several random lengths, each continuing from a random (non-zero) state."""
    model = _block()
    rng = np.random.default_rng(0)
    params = model.init(jax.random.PRNGKey(2), jnp.zeros((2, 4, 32)))
    warm = jax.random.normal(jax.random.PRNGKey(3), (2, 11, 32))
    _, start = jax.jit(model.apply)(params, warm)  # a state with a history in every leaf
    for length in rng.integers(2, 50, size=2):
        x = jax.random.normal(jax.random.PRNGKey(int(length)), (2, int(length), 32))
        (y_par, s_par), (y_rec, s_rec) = _both_forms(model, params, x, start)
        assert _max_err(y_par, y_rec) <= 1e-4, int(length)
        assert _max_err(s_par, s_rec) <= 1e-4, int(length)


def test_mamba_sequence_split_equals_whole():
    """Running 30 steps in two parallel calls (state passed between) equals one call."""
    model = _block()
    x = jax.random.normal(jax.random.PRNGKey(4), (2, 30, 32))
    params = model.init(jax.random.PRNGKey(5), x)

    @jax.jit
    def run(p, x):
        y1, s1 = model.apply(p, x[:, :11])
        return model.apply(p, x), y1, model.apply(p, x[:, 11:], s1)

    (y, s), y1, (y2, s2) = run(params, x)
    assert _max_err(y, jnp.concatenate([y1, y2], 1)) <= 1e-5
    assert _max_err(s, s2) <= 1e-5


def _numpy_ssm(x, dt, a, b, c, h0):
    """float64 reference: h_t = exp(dt_t a) h_{t-1} + dt_t x_t b_t^T, y_t = h_t c_t."""
    x, dt, a, b, c, h = (np.asarray(v, np.float64) for v in (x, dt, a, b, c, h0))
    ys = np.zeros_like(x)
    for t in range(x.shape[1]):
        decay = np.exp(dt[:, t] * a)[:, :, None, None]
        h = decay * h + np.einsum("bhp,bn->bhpn", x[:, t] * dt[:, t, :, None], b[:, t])
        ys[:, t] = np.einsum("bhpn,bn->bhp", h, c[:, t])
    return ys, h


def test_ssd_chunked_and_step_match_float64_reference():
    length = 21
    keys = jax.random.split(jax.random.PRNGKey(length), 6)
    bsz, heads, p, n = 2, 3, 4, 5
    x = jax.random.normal(keys[0], (bsz, length, heads, p))
    dt = jax.nn.softplus(jax.random.normal(keys[1], (bsz, length, heads)))
    a = -jnp.exp(jax.random.normal(keys[2], (heads,)))
    b = jax.random.normal(keys[3], (bsz, length, n))
    c = jax.random.normal(keys[4], (bsz, length, n))
    h0 = jax.random.normal(keys[5], (bsz, heads, p, n))
    y_ref, h_ref = _numpy_ssm(x, dt, a, b, c, h0)
    y, h = jax.jit(ssd_chunked, static_argnums=5)(x, dt, a, b, c, CHUNK, h0)
    np.testing.assert_allclose(y, y_ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(h, h_ref, atol=1e-4, rtol=1e-4)

    def body(state, xs):
        xt, dtt, bt, ct = xs
        yt, state = ssd_step(state, xt, dtt, a, bt, ct)
        return state, yt

    seq = [jnp.swapaxes(v, 0, 1) for v in (x, dt, b, c)]
    _, ys = jax.jit(lambda h0, seq: jax.lax.scan(body, h0, seq))(h0, seq)
    np.testing.assert_allclose(jnp.swapaxes(ys, 0, 1), y_ref, atol=1e-4, rtol=1e-4)


def test_mamba_is_causal_grad_finite_and_vmappable():
    model = _block()
    x = jax.random.normal(jax.random.PRNGKey(6), (1, 20, 32))
    params = model.init(jax.random.PRNGKey(7), x)

    @jax.jit
    def run(p, x):
        y = model.apply(p, x)[0]
        y2 = model.apply(p, x.at[:, 15].add(1.0))[0]
        grads = jax.grad(lambda p: jnp.sum(model.apply(p, x)[0] ** 2))(p)
        batched = jax.vmap(lambda xi: model.apply(p, xi[None])[0][0])(x.repeat(3, 0))
        return y, y2, grads, batched

    y, y2, grads, batched = run(params, x)
    # Changing step 15 leaves outputs before 15 unchanged.
    assert float(jnp.max(jnp.abs(y[:, :15] - y2[:, :15]))) == 0.0
    assert float(jnp.max(jnp.abs(y[:, 15:] - y2[:, 15:]))) > 1e-3
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(batched[1], y[0], atol=1e-5)


def test_mamba_bad_head_dim_raises_value_error():
    model = Mamba2(d_model=24, head_dim=7)
    with pytest.raises(ValueError, match="head_dim"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 24)))
