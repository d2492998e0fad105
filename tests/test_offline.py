"""Offline data layer: returns-to-go, loaders, recorder, sampler and MBRCSL's filter
against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl.agents.offline.mbrcsl import filter_rollouts
from jaxrl.data import datasets as offline


def _np_rtg(reward, valid, discount):
    t_len, n = reward.shape
    out = np.zeros((t_len, n), np.float64)
    for j in range(n):
        acc = 0.0
        for t in reversed(range(t_len)):
            acc = reward[t, j] * valid[t, j] + discount * acc
            out[t, j] = acc
    return out


@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_returns_to_go_matches_numpy(discount):
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(7, 5)).astype(np.float32)
    lengths = np.array([7, 3, 1, 5, 6])
    valid = np.arange(7)[:, None] < lengths[None, :]
    got = offline.returns_to_go(reward, valid, discount)
    np.testing.assert_allclose(got, _np_rtg(reward, valid, discount), rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(got)[~valid] == 0.0)


def _flat_table(rng, m=23, obs_dim=3, act_dim=2):
    terminals = np.zeros(m, bool)
    timeouts = np.zeros(m, bool)
    terminals[4] = True  # trajectory 0: rows 0..4 (ends terminal)
    timeouts[11] = True  # trajectory 1: rows 5..11 (time limit)
    # trajectory 2: rows 12..22 (table ends)
    return dict(
        observations=rng.normal(size=(m, obs_dim)).astype(np.float32),
        actions=rng.normal(size=(m, act_dim)).astype(np.float32),
        rewards=rng.normal(size=m).astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
    )


def test_from_flat_splits_trajectories_and_drops_steps_without_successor():
    table = _flat_table(np.random.default_rng(1))
    ds = offline.from_flat(**table)
    assert ds.obs.shape == (11, 3, 3) and ds.action.shape == (11, 3, 2)
    # Terminal trajectory keeps its last step; the others lose it (no next observation).
    np.testing.assert_array_equal(ds.length, [5, 6, 10])
    np.testing.assert_allclose(ds.obs[:5, 0], table["observations"][0:5])
    np.testing.assert_allclose(ds.next_obs[:4, 0], table["observations"][1:5])
    np.testing.assert_allclose(ds.next_obs[:6, 1], table["observations"][6:12])
    np.testing.assert_allclose(ds.obs[:10, 2], table["observations"][12:22])
    r = table["rewards"]
    np.testing.assert_allclose(ds.returns, [r[0:5].sum(), r[5:11].sum(), r[12:22].sum()], 1e-5)


def test_npz_roundtrip_and_d4rl_npz(tmp_path):
    env = E.make("pointmaze")
    ds = offline.scripted(env, jax.random.PRNGKey(0), num_episodes=4)
    offline.save_npz(tmp_path / "d.npz", ds)
    back = offline.load(tmp_path / "d.npz")
    for a, b in zip(jax.tree.leaves(ds), jax.tree.leaves(back), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    table = _flat_table(np.random.default_rng(2))
    np.savez(tmp_path / "flat.npz", **table)
    np.testing.assert_array_equal(offline.load(tmp_path / "flat.npz").length, [5, 6, 10])
    assert not list(tmp_path.glob("*.tmp*")), "atomic write left a temporary file"


def test_hdf5_d4rl_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    table = _flat_table(np.random.default_rng(3))
    table["next_observations"] = table["observations"] + 1.0
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        for k, v in table.items():
            f.create_dataset(k, data=v)
    ds = offline.load(tmp_path / "d.hdf5")
    np.testing.assert_array_equal(ds.length, [5, 7, 11])  # next_observations given: all kept
    np.testing.assert_allclose(ds.next_obs[:7, 1], table["observations"][5:12] + 1.0)


def test_bad_files_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        offline.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="unknown format"):
        offline.load(tmp_path / "data.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        offline.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", observations=np.zeros((3, 2)), actions=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="missing key"):
        offline.load(tmp_path / "partial.npz")
    np.savez(tmp_path / "objects.npz", reward=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        offline.load(tmp_path / "objects.npz")  # pickled object arrays are refused
    bad = _flat_table(np.random.default_rng(4))
    bad["rewards"] = bad["rewards"][:-1]
    np.savez(tmp_path / "short.npz", **bad)
    with pytest.raises(ValueError, match="must share M"):
        offline.load(tmp_path / "short.npz")


def test_record_is_deterministic_and_matches_env_steps():
    env = E.make("pointmaze", episode_length=20)
    policy = lambda obs, k: jax.random.uniform(k, (obs.shape[0], 2), minval=-1, maxval=1)
    rec = jax.jit(lambda k: offline.record(env, policy, k, 3))
    a, b = rec(jax.random.PRNGKey(4)), rec(jax.random.PRNGKey(4))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert a.obs.shape == (20, 3, 4) and bool(a.valid.all())
    np.testing.assert_array_equal(a.timeout[-1], True)
    np.testing.assert_allclose(a.obs[1:], a.next_obs[:-1])
    pm = env.unwrapped
    nxt, r = jax.vmap(jax.vmap(pm.dynamics))(a.obs, a.action)
    np.testing.assert_allclose(nxt, a.next_obs, atol=1e-6)
    np.testing.assert_allclose(r, a.reward, atol=1e-6)


def test_sample_draws_only_valid_steps_of_kept_trajectories():
    t_len, n = 6, 4
    reward = jnp.arange(t_len * n, dtype=jnp.float32).reshape(t_len, n)
    valid = jnp.arange(t_len)[:, None] < jnp.array([6, 2, 0, 4])[None, :]
    obs = jnp.stack([jnp.broadcast_to(jnp.arange(n), (t_len, n))] * 2, -1).astype(jnp.float32)
    ds = offline.make_dataset(
        obs, jnp.zeros((t_len, n, 1)), reward, valid & False, valid & False, obs, valid
    )
    batch = offline.sample(ds, jax.random.PRNGKey(0), 4000)
    t, j = np.asarray(batch.extras["timestep"]), np.asarray(batch.obs[:, 0]).astype(int)
    assert np.all(np.asarray(valid)[t, j])
    counts = np.bincount(j, minlength=n) / len(j)
    np.testing.assert_allclose(counts, [0.5, 2 / 12, 0.0, 4 / 12], atol=0.03)  # by length
    np.testing.assert_allclose(batch.reward, np.asarray(reward)[t, j])
    np.testing.assert_allclose(batch.extras["rtg"], np.asarray(ds.rtg)[t, j])
    kept = offline.sample(ds, jax.random.PRNGKey(1), 500, keep=jnp.array([False, True, 0, 0]))
    assert set(np.asarray(kept.obs[:, 0]).astype(int)) == {1}


def test_filter_keeps_first_passing_rollouts_like_numpy():
    rng = np.random.default_rng(5)
    returns = rng.normal(size=50).astype(np.float32)
    threshold = 0.8
    index, keep = filter_rollouts(jnp.asarray(returns), threshold, 4)
    passing = np.flatnonzero(returns > threshold)
    expected = passing[:4]
    np.testing.assert_array_equal(np.asarray(index)[: len(expected)], expected)
    np.testing.assert_array_equal(np.asarray(keep), np.arange(4) < len(expected))
    # Nothing passes: the best returns, all kept.
    index, keep = filter_rollouts(jnp.asarray(returns), 10.0, 3)
    np.testing.assert_array_equal(np.asarray(index), np.argsort(-returns)[:3])
    assert bool(keep.all())
