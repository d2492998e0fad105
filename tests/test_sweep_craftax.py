"""The Craftax adapter (``craftax/<id>``): spaces, the time limit as truncation (not
termination), and the jaxrl env protocol under jit. Slow: Craftax compiles for minutes
on 2 CPU cores."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E

pytestmark = pytest.mark.slow  # importing Craftax alone takes ~30 s on the shared machine


def test_craftax_is_listed():
    pytest.importorskip("craftax")
    assert "Craftax-Classic-Symbolic-v1" in E.families()["craftax"]
    with pytest.raises(ValueError, match="unknown environment"):
        E.make("craftax/Nope-v1")


def test_craftax_classic_truncates_at_its_limit():  # ~5 min of compilation on 2 busy cores
    pytest.importorskip("craftax")
    env = E.make("craftax/Craftax-Classic-Symbolic-v1", env_params={"max_timesteps": 20})
    assert env.observation_spec.shape == (1345,) and env.action_spec.num_actions == 17
    assert env.max_episode_steps == 20

    def body(s, a):
        s = env.step(s, a)
        return s, (s.reward, s.terminated, s.truncated, s.obs)

    state = env.reset(jax.random.PRNGKey(0))
    _, (reward, term, trunc, obs) = jax.jit(lambda s, a: jax.lax.scan(body, s, a))(
        state,
        jnp.zeros(25, jnp.int32),  # NOOP: no death within 20 steps
    )
    assert np.asarray(trunc)[19] and not np.asarray(trunc)[:19].any()
    assert not np.asarray(term).any()
    assert obs.shape == (25, 1345) and obs.dtype == jnp.float32
    assert np.isfinite(np.asarray(reward)).all()
