"""Replay buffer, running statistics, hyperparameter handling, schedules."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl import loops
from jaxrl.core import adam, clip_by_global_norm, hparams_from, tree_finite
from jaxrl.core.optim import last_grad_norm
from jaxrl.data.replay import (
    replay_add,
    replay_init,
    replay_sample,
    replay_sample_sequences,
)
from jaxrl.normalize import RunningStats, update_stats


def test_replay_ring_buffer_wraps_and_keeps_newest():
    buf = replay_init({"x": jnp.zeros(2), "i": jnp.int32(0)}, capacity=5)
    for start in (0, 3, 6):
        items = {
            "x": jnp.arange(start, start + 3, dtype=jnp.float32)[:, None] * jnp.ones(2),
            "i": jnp.arange(start, start + 3, dtype=jnp.int32),
        }
        buf = jax.jit(replay_add)(buf, items)
    assert int(buf.size) == 5 and int(buf.pos) == 4
    # 9 items written into 5 slots: the newest five (4..8) remain.
    assert sorted(np.asarray(buf.data["i"]).tolist()) == [4, 5, 6, 7, 8]
    np.testing.assert_array_equal(buf.data["x"][:, 0], buf.data["i"].astype(np.float32))
    sample = replay_sample(buf, jax.random.PRNGKey(0), 1000)
    assert set(np.asarray(sample["i"]).tolist()) == {4, 5, 6, 7, 8}


def test_replay_samples_only_filled_slots():
    buf = replay_init(jnp.zeros(()), capacity=100)
    buf = replay_add(buf, jnp.arange(1.0, 4.0))
    sample = replay_sample(buf, jax.random.PRNGKey(1), 500)
    assert set(np.asarray(sample).tolist()) == {1.0, 2.0, 3.0}


def test_running_stats_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    data = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 50, 3)]
    stats = RunningStats.create((4,))
    for batch in data:
        stats = update_stats(stats, jnp.asarray(batch, jnp.float32))
    allx = np.concatenate(data)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.var, allx.var(0), rtol=1e-3, atol=1e-4)


@dataclasses.dataclass
class _HP:
    lr: float = 1e-3
    gamma: float = 0.99


def test_hparams_from_overrides_and_errors():
    hp = hparams_from(_HP, {"lr": 5e-4})
    assert hp.lr.dtype == jnp.float32 and float(hp.lr) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="unknown hyperparameter 'nope'"):
        hparams_from(_HP, {"nope": 1})
    with pytest.raises(ValueError, match="must be a number"):
        hparams_from(_HP, {"lr": "fast"})


def test_tree_finite_flags_nan():
    assert bool(tree_finite({"a": jnp.ones(3), "n": jnp.int32(1)}))
    assert not bool(tree_finite({"a": jnp.array([1.0, jnp.nan])}))
    mixed = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3, jnp.bfloat16), "n": jnp.int32(7)}
    assert bool(tree_finite(mixed))
    assert not bool(tree_finite({**mixed, "b": jnp.array([jnp.inf], jnp.bfloat16)}))
    assert bool(jax.jit(tree_finite)({"a": jnp.ones(2)}))


@pytest.mark.parametrize("max_norm", [0.5, 3.0, float("inf")])
def test_clip_by_global_norm_matches_float64_reference(max_norm):
    grads = {"a": jnp.array([[3.0, -1.0], [0.5, 2.0]]), "b": jnp.array([-4.0, 1.5])}
    flat = np.concatenate([np.ravel(np.asarray(g, np.float64)) for g in jax.tree.leaves(grads)])
    norm = np.sqrt(np.sum(flat**2))
    scale = min(1.0, max_norm / norm)

    def clip(grads, max_norm):
        tx = clip_by_global_norm(max_norm)
        clipped, state = tx.update(grads, tx.init(grads))
        return clipped, state.norm

    clipped, got_norm = jax.jit(clip)(grads, jnp.float32(max_norm))
    np.testing.assert_allclose(float(got_norm), norm, rtol=1e-6)
    for k in grads:
        np.testing.assert_allclose(np.asarray(clipped[k]), np.asarray(grads[k]) * scale, rtol=1e-6)
    zero, zero_norm = clip(jax.tree.map(jnp.zeros_like, grads), jnp.float32(1.0))
    assert float(zero_norm) == 0.0 and all(bool(jnp.all(z == 0)) for z in jax.tree.leaves(zero))


def test_adam_builder_equals_optax_adam_and_clips_first():
    """Without a clip the builder is optax.adam exactly (state and updates, traced lr); with
    one, the update equals clipping by hand and then optax.adam."""
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = {"w": jnp.array([0.3, -4.0, 2.0])}
    lr = jnp.float32(3e-3)
    ours, ref = adam(lr), optax.adam(lr)
    u1, s1 = ours.update(grads, ours.init(params))
    u2, s2 = ref.update(grads, ref.init(params))
    assert jax.tree.structure(s1) == jax.tree.structure(s2)
    np.testing.assert_array_equal(u1["w"], u2["w"])
    clipped = adam(lr, max_grad_norm=1.0)
    u3, s3 = clipped.update(grads, clipped.init(params))
    norm = float(np.linalg.norm(np.asarray(grads["w"], np.float64)))
    u4, _ = ref.update({"w": grads["w"] / norm}, ref.init(params))
    np.testing.assert_allclose(u3["w"], u4["w"], rtol=1e-6)
    np.testing.assert_allclose(float(last_grad_norm(s3)), norm, rtol=1e-6)


def test_flat_adam_equals_per_leaf_adam_over_steps():
    """``flat=True`` keeps one moment vector for all leaves; updates, the clip and the
    recorded norm equal the per-leaf chain's over several steps."""
    params = {"a": jnp.array([[1.0, -2.0], [0.5, 0.0]]), "b": jnp.array([3.0, 0.1, -1.0])}
    per_leaf, flat = (adam(1e-2, eps=1e-5, max_grad_norm=0.7, flat=f) for f in (False, True))
    s1, s2 = per_leaf.init(params), flat.init(params)
    assert jax.tree.leaves(s2)[2].shape == (7,)  # [clip norm, count, mu, nu]: mu, one vector
    for step in range(3):
        grads = jax.tree.map(lambda x, i=step: jnp.sin(x * (i + 2.0)) * (i + 1.0), params)
        u1, s1 = per_leaf.update(grads, s1)
        u2, s2 = flat.update(grads, s2)
        for k in params:
            np.testing.assert_allclose(u2[k], u1[k], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(last_grad_norm(s2), last_grad_norm(s1), rtol=1e-6)
        params = optax.apply_updates(params, u1)


def test_adam_weight_decay_equals_optax_adamw():
    """``weight_decay > 0`` is optax.adamw (decoupled decay before the lr) over steps; with
    zero gradients the first update is ``-lr * weight_decay * params`` exactly."""
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array([0.5])}
    ours, ref = adam(3e-3, weight_decay=0.1), optax.adamw(3e-3, weight_decay=0.1)
    s1, s2 = ours.init(params), ref.init(params)
    for step in range(3):
        grads = jax.tree.map(lambda x, i=step: jnp.cos(x * (i + 1.0)), params)
        u1, s1 = ours.update(grads, s1, params)
        u2, s2 = ref.update(grads, s2, params)
        for k in params:
            np.testing.assert_allclose(u1[k], u2[k], rtol=1e-6)
        params = optax.apply_updates(params, u1)
    zeros = jax.tree.map(jnp.zeros_like, params)
    fresh = adam(3e-3, weight_decay=0.1)
    u, _ = fresh.update(zeros, fresh.init(params), params)
    np.testing.assert_allclose(u["w"], -3e-3 * 0.1 * np.asarray(params["w"]), rtol=1e-6)
    assert jax.tree.structure(adam(1e-3, weight_decay=0.0).init(params)) == jax.tree.structure(
        optax.adam(1e-3).init(params)
    )  # no decay: the plain Adam chain


def test_replay_sequences_are_consecutive_steps_of_one_env_after_wrapping():
    """3 envs write rows of (step, env); after the ring wraps, every sampled run is n
    consecutive stored steps of one env, time-major, and reaches every stored start."""
    buf = replay_init({"t": jnp.int32(0), "env": jnp.int32(0)}, capacity=3 * 7)
    for t in range(11):  # 11 rows into 7: rows 4..10 remain
        buf = replay_add(buf, {"t": jnp.full(3, t, jnp.int32), "env": jnp.arange(3)})
    run = replay_sample_sequences(buf, jax.random.PRNGKey(0), 2000, 3, 3)
    t, env = np.asarray(run["t"]), np.asarray(run["env"])
    assert t.shape == (3, 2000)
    np.testing.assert_array_equal(t[1:] - t[:-1], np.ones((2, 2000)))
    np.testing.assert_array_equal(env, np.broadcast_to(env[0], env.shape))
    assert set(t[0].tolist()) == set(range(4, 9)) and set(env[0].tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="multiple of stride"):
        replay_sample_sequences(buf, jax.random.PRNGKey(0), 4, 2, 4)


def test_adam_rectified_equals_optax_radam():
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    ours, ref = adam(1e-3, rectified=True), optax.radam(1e-3)
    s1, s2 = ours.init(params), ref.init(params)
    for g in (0.3, -1.0, 2.0, 0.5, 4.0, -0.2, 1.5):  # past RAdam's 5-step warm-up
        grads = {"w": jnp.array([g, -4.0 * g, 2.0])}
        u1, s1 = ours.update(grads, s1)
        u2, s2 = ref.update(grads, s2)
        np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-6)


def test_schedule_rounds_down_and_rejects_tiny_budgets():
    s = loops.make_schedule(10_000, 128, 5)
    assert s.total_steps == 128 * 75 and s.num_evals == 5 and s.iters_per_eval == 15
    with pytest.raises(ValueError, match="num_evals"):
        loops.make_schedule(100, 128, 5)
    with pytest.raises(ValueError, match="positive"):
        loops.make_schedule(-1, 128, 5)


def test_weighted_indices_follow_the_weights_and_skip_zero_rows():
    from jaxrl.data.sampling import weighted_indices

    weights = jnp.array([0, 3, 0, 1, 0], jnp.int32)
    idx = jax.jit(weighted_indices, static_argnums=2)(jax.random.PRNGKey(0), weights, (40_000,))
    counts = np.bincount(np.asarray(idx), minlength=5) / 40_000
    np.testing.assert_allclose(counts, [0, 0.75, 0, 0.25, 0], atol=0.01)
    mask = jnp.array([True, False, True])  # a bool mask: uniform over the True rows
    idx = weighted_indices(jax.random.PRNGKey(1), mask, (1000,))
    assert set(np.unique(np.asarray(idx)).tolist()) == {0, 2} and idx.dtype == jnp.int32


def test_expectile_loss_matches_float64_reference():
    from jaxrl.losses import expectile_loss

    diff = np.array([-2.0, -0.5, 0.0, 0.3, 4.0])
    for tau in (0.5, 0.7, 0.9):
        w = np.where(diff < 0, 1 - tau, tau)
        want = np.mean(w * diff**2)
        np.testing.assert_allclose(expectile_loss(jnp.float32(diff), tau), want, rtol=1e-6)
