"""jaxrl lowers Cholesky and triangular solves on CPU with XLA's own ops (no LAPACK
custom call whose batched kernel can deadlock XLA:CPU's thread pool)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl  # noqa: F401  (applies jaxrl.cpu_linalg.use_xla_linalg_on_cpu)


def _solve(m, b):
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(m), b)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU lowering")
def test_vmapped_cholesky_solve_holds_no_lapack_call():
    m = jnp.broadcast_to(jnp.eye(4), (3, 4, 4))
    text = jax.jit(jax.vmap(_solve)).lower(m, jnp.ones((3, 4, 1))).compile().as_text()
    targets = set(re.findall(r'custom_call_target="([^"]+)"', text))
    assert not {t for t in targets if "lapack" in t}, targets


def test_cholesky_solve_matches_numpy_float64():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 6, 6))
    m = a @ a.transpose(0, 2, 1) + 6 * np.eye(6)
    b = rng.normal(size=(5, 6, 2))
    out = jax.jit(jax.vmap(_solve))(jnp.float32(m), jnp.float32(b))
    np.testing.assert_allclose(np.asarray(out), np.linalg.solve(m, b), rtol=1e-4, atol=1e-5)
    lower = jax.jit(jax.vmap(jnp.linalg.cholesky))(jnp.float32(m))
    np.testing.assert_allclose(np.asarray(lower), np.linalg.cholesky(m), rtol=1e-4, atol=1e-5)
