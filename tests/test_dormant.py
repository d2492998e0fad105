"""DrM machinery: dormant ratio, perturbation, schedules, the transform, MENTOR's snapshots, CLI."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import jaxrl.envs as E
from jaxrl import cli, sweep
from jaxrl.agents.actor_critic import drm, mentor
from jaxrl.core import Agent, LoopContext, Transition
from jaxrl.losses import expectile_loss
from jaxrl.transforms import dormant


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(8)(x))
        x = nn.relu(nn.Dense(4)(x))
        return nn.Dense(2)(x)


def _net_with_dead_units():
    x = jax.random.normal(jax.random.PRNGKey(0), (256, 5))
    params = jax.jit(Net().init)(jax.random.PRNGKey(1), x)
    p = jax.tree.map(np.array, params)["params"]
    p["Dense_0"]["bias"] = np.full(8, 0.1, np.float32)
    p["Dense_0"]["kernel"][:, :3] = 0.0  # 3 of 8 units dead: outputs exactly 0
    p["Dense_0"]["bias"][:3] = 0.0
    p["Dense_1"]["kernel"][:, 0] *= 1e-3  # 1 of 4: tiny next to its layer's mean
    p["Dense_1"]["bias"][0] = 0.0
    p["Dense_1"]["kernel"][:, 1] *= 0.1  # smaller but above tau * mean: not dormant
    return x, {"params": p}


def test_dormant_ratio_of_constructed_network_equals_known_fraction():
    x, params = _net_with_dead_units()
    overall, layers = jax.jit(lambda p, x: dormant.dormant_ratio(Net(), p, x))(params, x)
    np.testing.assert_allclose(overall, 4 / 14, rtol=1e-6)
    np.testing.assert_allclose(layers["Dense_0"], 3 / 8)
    np.testing.assert_allclose(layers["Dense_1"], 1 / 4)
    np.testing.assert_allclose(layers["Dense_2"], 0.0)
    # Float64 reference of the definition, layer by layer, at two thresholds.
    p = jax.tree.map(np.float64, params)["params"]
    h0 = np.float64(x) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    h1 = np.maximum(h0, 0) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    h2 = np.maximum(h1, 0) @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]
    for tau in (0.025, 0.5):
        s = [np.abs(h).mean(0) for h in (h0, h1, h2)]
        ref = [np.mean(si <= tau * si.mean()) for si in s]
        got = dormant.dormant_ratio(Net(), params, x, tau=tau)[1]
        np.testing.assert_allclose([got[f"Dense_{i}"] for i in range(3)], ref, rtol=1e-6)
    assert ref[1] > 0.25  # the weakened unit counts as dormant at tau = 0.5


def test_dead_relu_units_of_an_mlp_are_dormant_after_the_activation():
    # DrM's definition measures activations: a ReLU unit pushed far negative outputs 0
    # (dormant) although its pre-activation is large. Float64 reference on post-ReLU values.
    from jaxrl.nets import TanhGaussian

    net = TanhGaussian(2, hidden=(8, 6))
    x = jax.random.normal(jax.random.PRNGKey(0), (256, 5))
    p = jax.tree.map(np.array, jax.jit(net.init)(jax.random.PRNGKey(1), x))["params"]
    p["MLP_0"]["Dense_0"]["bias"][:3] = -100.0  # 3 of 8 dead: pre-activation ~ -100
    p["MLP_0"]["Dense_1"]["kernel"][:, 0] *= 1e-4  # 1 of 6 tiny
    params = {"params": p}
    overall, layers = jax.jit(lambda p, x: dormant.dormant_ratio(net, p, x))(params, x)
    assert set(layers) == {"MLP_0/Dense_0", "MLP_0/Dense_1", "Dense_0", "Dense_1"}
    f = jax.tree.map(np.float64, params)["params"]
    d0, d1 = f["MLP_0"]["Dense_0"], f["MLP_0"]["Dense_1"]
    h0 = np.maximum(np.float64(x) @ d0["kernel"] + d0["bias"], 0)
    h1 = np.maximum(h0 @ d1["kernel"] + d1["bias"], 0)
    heads = [h1 @ f[k]["kernel"] + f[k]["bias"] for k in ("Dense_0", "Dense_1")]  # pre-tanh
    s = [np.abs(h).mean(0) for h in (h0, h1, *heads)]
    dead = [np.sum(si <= 0.025 * si.mean()) for si in s]
    assert dead[0] == 3 and dead[1] >= 1
    np.testing.assert_allclose(layers["MLP_0/Dense_0"], 3 / 8)
    np.testing.assert_allclose(layers["MLP_0/Dense_1"], dead[1] / 6)
    np.testing.assert_allclose(overall, sum(dead) / (8 + 6 + 2 + 2), rtol=1e-6)
    # A layer that is all zeros is all dormant (<= tau * 0).
    np.testing.assert_array_equal(dormant.layer_dormant(jnp.zeros((4, 3)), 0.025), (3.0, 3.0))


def test_dormant_ratio_needs_a_dense_layer():
    class NoDense(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x * self.param("s", nn.initializers.ones, (1,))

    m = NoDense()
    with pytest.raises(ValueError, match="no Dense"):
        dormant.dormant_ratio(m, m.init(jax.random.PRNGKey(0), jnp.ones((2, 1))), jnp.ones((2, 1)))


def test_perturb_endpoints_and_coefficient():
    x, params = _net_with_dead_units()
    fresh = jax.jit(Net().init)(jax.random.PRNGKey(7), x)
    same = dormant.perturb(params, fresh, 1.0)
    new = dormant.perturb(params, fresh, 0.0)
    half = dormant.perturb(params, fresh, 0.25)
    for a, b, c, f, h in zip(*map(jax.tree.leaves, (same, new, params, fresh, half)), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, f)
        np.testing.assert_allclose(h, 0.25 * np.float64(c) + 0.75 * np.float64(f), rtol=1e-5)
    np.testing.assert_allclose(
        dormant.perturbation_coefficient(jnp.array([0.0, 0.1, 0.5])), [0.9, 0.8, 0.2], rtol=1e-6
    )
    # LayerNorm parameters stay (DrM perturbs only the Linear layers).
    ln = {"params": {"LayerNorm_0": {"scale": jnp.full(3, 2.0)}, "Dense_0": {"bias": jnp.ones(3)}}}
    zero = jax.tree.map(jnp.zeros_like, ln)
    out = dormant.perturb(ln, zero, 0.5)["params"]
    np.testing.assert_array_equal(out["LayerNorm_0"]["scale"], 2.0)
    np.testing.assert_array_equal(out["Dense_0"]["bias"], 0.5)


def test_schedules_hand_computed():
    # sigma(beta) = 1 / (1 + exp(-10 (beta - 0.2))): 0.5 at the target.
    np.testing.assert_allclose(dormant.awaken_std(0.2, 0.0, -1.0), 0.5, rtol=1e-6)
    # Awake for half the decay: max(sigma, 1 - 0.5 * 0.9) = 0.55 when sigma is small.
    std = dormant.awaken_std(0.0, 150.0, 100.0, duration=100.0)
    np.testing.assert_allclose(std, 0.55, rtol=1e-6)
    np.testing.assert_allclose(dormant.exploitation_lambda(0.2), 0.3, rtol=1e-6)
    np.testing.assert_allclose(dormant.exploitation_lambda(0.0), 0.6 / (1 + np.exp(-10)), rtol=1e-6)
    v, q = jnp.array([1.0, 3.0]), jnp.array([2.0, 1.0])  # under: 0.9 * 1, over: 0.1 * 4
    np.testing.assert_allclose(expectile_loss(q - v, 0.9), (0.9 + 0.4) / 2, rtol=1e-6)


def test_blended_target_hand_computed():
    y = drm.blended_target(
        jnp.array([1.0, 1.0]),
        jnp.array([False, True]),
        jnp.array([[2.0, 5.0], [3.0, 4.0]]),
        jnp.array([-1.0, 0.0]),
        jnp.array([10.0, 10.0]),
        0.25,
        0.5,
        0.9,
    )
    # 1 + 0.9 (0.25 * 10 + 0.75 (2 + 0.5)) = 4.9375; terminal: r.
    np.testing.assert_allclose(y, [4.9375, 1.0], rtol=1e-6)


def _batch(n=16):
    return Transition(
        obs=jnp.ones((n, 3)),
        action=jnp.full((n, 1), 1.5),
        reward=jnp.ones(n),
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
        next_obs=jnp.ones((n, 3)),
    )


def test_perturbation_coefficient_one_is_identity_zero_is_fresh_init_on_schedule():
    """DrM's agent under the transform: perturbs after every 2nd update, nothing in between."""
    env = E.make("pendulum")
    cfg = drm.Config(hidden=(8, 8), perturb_every=2, awaken_exploration=True, log_dormant=True)
    hp = drm.SPEC.default_hparams()
    base = drm.base_agent(cfg, env, hp)
    key, k1, k2 = jax.random.split(jax.random.PRNGKey(0), 3)

    @jax.jit
    def run(coef):  # coefficient traced: one compilation for both ends
        agent = dormant.with_dormant_perturbation(
            base,
            measure=lambda s, b: s.dormant_ratio,
            perturbed=drm.PERTURBED,
            reset=drm.RESET,
            perturb_every=2,
            min_coef=coef,
            max_coef=coef,
        )
        s0 = agent.init(key)
        s1, _ = agent.update(s0, _batch(), k1)
        s2, metrics = agent.update(s1, _batch(), k2)
        inner_key, perturb_key = jax.random.split(k2)
        unperturbed, _ = base.update(s1.inner, _batch(), inner_key)
        fresh = base.init(jax.random.split(perturb_key)[0])
        action, _ = agent.act(s2, jnp.ones((5, 3)), k1, explore=True)
        return s1, s2, unperturbed, fresh, metrics, action

    def assert_close(a, b, exact=False):
        for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True):
            if exact:
                np.testing.assert_array_equal(x, y)
            else:
                np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)

    for coef in (1.0, 0.0):
        s1, s2, unperturbed, fresh, metrics, action = run(jnp.float32(coef))
        assert int(s1.num_perturbations) == 0 and int(s2.num_perturbations) == 1
        assert float(metrics["perturb_coef"]) == coef
        assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
        assert 0.0 <= float(metrics["dormant_ratio"]) <= 1.0 and 0 < float(metrics["lambda"]) <= 0.6
        want = unperturbed if coef == 1.0 else fresh
        assert_close(drm.PERTURBED.get(s2.inner), drm.PERTURBED.get(want))
        # Adam states reset to a fresh init's; the temperature's kept.
        assert_close(drm.RESET.get(s2.inner), drm.RESET.get(fresh), exact=True)
        assert int(s2.inner.alpha_opt[0].count) == 2
        assert action.shape == (5, 1) and bool(jnp.all(jnp.abs(action) <= 2.0))


class Toy(struct.PyTreeNode):
    w: jax.Array


#: The toy state's only part, selected by functions.
W = dormant.Parts(get=lambda s: s.w, set=lambda s, w: s.replace(w=w))


def _toy_agent():
    """Each update sets ``w`` to ``batch.reward[0]`` (a value we control) times ones."""

    def update(s, batch, key):
        return Toy(w=jnp.full_like(s.w, batch.reward[0])), {}

    return Agent(
        init=lambda key: Toy(w=jax.random.normal(key, (20_000,))),
        act=lambda s, obs, key, explore=True, **_: (obs, {}),
        update=update,
    )


def _context(train_return: float, valid: bool) -> LoopContext:
    return LoopContext(jnp.int32(0), jnp.float32(train_return), jnp.bool_(valid))


def test_snapshot_prior_keeps_best_returns_and_samples_their_gaussian():
    agent = dormant.with_dormant_perturbation(
        _toy_agent(),
        measure=lambda s, b: jnp.float32(0.0),
        perturbed=W,
        perturb_every=6,
        min_coef=0.0,
        max_coef=0.0,
        prior="snapshots",
        num_snapshots=3,
        snapshot_every=1,
    )
    state = agent.init(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    # (w value, training return): the best three returns hold w = 2, 4, 6.
    for w, ret in ((1.0, -5.0), (2.0, 3.0), (9.0, -1.0), (4.0, 7.0), (6.0, 5.0)):
        batch = _batch().replace(reward=jnp.full(16, w))
        batch = batch.replace(context=_context(ret, True))
        state, _ = update(state, batch, jax.random.PRNGKey(int(w)))
    assert sorted(np.asarray(state.snapshot_scores).tolist()) == [3.0, 5.0, 7.0]
    assert sorted(np.asarray(state.snapshots[:, 0]).tolist()) == [2.0, 4.0, 6.0]
    # The 6th update perturbs with coefficient 0: w ~ N(mean 4, std sqrt(8/3)) elementwise
    # (the update's own w = 0 does not enter a snapshot: its return is invalid).
    batch = _batch().replace(reward=jnp.zeros(16), context=_context(100.0, False))
    state, metrics = update(state, batch, jax.random.PRNGKey(9))
    assert int(state.num_perturbations) == 1
    w = np.asarray(state.inner.w)
    np.testing.assert_allclose(w.mean(), 4.0, atol=0.05)
    np.testing.assert_allclose(w.std(), np.sqrt(8 / 3), rtol=0.03)


def test_snapshot_prior_needs_train_returns_and_bad_prior_raises():
    agent = dormant.with_dormant_perturbation(
        _toy_agent(),
        measure=lambda s, b: 0.0,
        perturbed=W,
        perturb_every=2,
        prior="snapshots",
    )
    with pytest.raises(ValueError, match="loop context"):
        agent.update(agent.init(jax.random.PRNGKey(0)), _batch(), jax.random.PRNGKey(1))
    with pytest.raises(ValueError, match="fresh, snapshots"):
        dormant.with_dormant_perturbation(
            _toy_agent(), measure=None, perturbed=W, perturb_every=1, prior="best"
        )
    with pytest.raises(ValueError, match="perturb_every"):
        dormant.with_dormant_perturbation(_toy_agent(), measure=None, perturbed=W, perturb_every=0)


def test_cli_log_dormant_writes_the_metric(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "sac", "--env", "pendulum", "--seeds", "1", "--steps", "600", "--no-progress"]
    argv += ["--out", str(out), "--set", "log_dormant=true", "--set", "hidden=8,8"]
    argv += ["--set", "warmup_steps=300", "--set", "num_evals=2", "--set", "batch_size=32"]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["dormant_ratio"] <= 1.0 for r in rows)
    assert any(k.startswith("dormant_ratio/") for k in rows[0])


def _final_returns(algo, config, seeds):
    train = algo.SPEC.make_train(config, E.make("pendulum"))
    _, metrics = sweep.over_seeds(train, seeds)(
        sweep.seed_keys(0, seeds), algo.SPEC.default_hparams()
    )
    assert bool(np.all(metrics["finite"]))
    return np.asarray(metrics["eval_return"])[:, -1], metrics


@pytest.mark.slow  # ~90 s; ../shared/acceptance/offpolicy trains drm on pendulum
def test_drm_learns_pendulum_small_budget():
    """Learning check: 2 seeds x 8k steps, one perturbation, beat random (-1200)."""
    config = drm.Config(total_steps=8_000, num_evals=4, hidden=(64, 64), perturb_every=4_000)
    final, metrics = _final_returns(drm, config, 2)
    print("drm pendulum 8k final returns:", final)
    assert final.mean() >= -700, final
    assert float(np.max(metrics["perturbations"])) >= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("algo", [drm, mentor], ids=["drm", "mentor"])
def test_pendulum_reaches_sac_threshold_within_20k_steps(algo):
    config = algo.Config(total_steps=20_000, **algo.SPEC.presets["pendulum"])
    final, _ = _final_returns(algo, config, 4)
    print(f"{algo.__name__} pendulum 20k final returns:", final)
    assert final.mean() >= -250, final


def test_off_policy_loop_passes_its_context_to_the_agent():
    """Each replay batch carries the loop context: the training envs' last finished return,
    whether every env has finished one, and the env step."""
    from jaxrl import loops

    def update(s, batch, key):
        return s, {
            "seen_return": batch.context.train_return,
            "seen_valid": batch.context.train_return_valid.astype(jnp.float32),
            "seen_step": batch.context.env_step.astype(jnp.float32),
        }

    agent = Agent(
        init=lambda key: Toy(w=jnp.zeros(())),
        act=lambda s, obs, key, explore=True, **_: (jnp.zeros((obs.shape[0], 1)), {}),
        update=update,
    )
    train = loops.make_train(
        loops.Replay(num_envs=1, batch_size=4, buffer_size=800, warmup_steps=0, updates_per_iter=1),
        lambda hp, schedule: agent,
        E.make("pendulum"),  # 200-step episodes: one finishes at the end of each period
        total_steps=800,
        num_evals=4,
        num_eval_envs=1,
    )
    _, m = jax.jit(train)(jax.random.PRNGKey(0), None)
    m = jax.tree.map(np.asarray, m)
    np.testing.assert_allclose(m["seen_valid"], [1 / 200, 1, 1, 1], rtol=1e-5)
    # ``train_return`` (the loop's metric) is the last finished return at each period's end;
    # within period p the agent saw period p-1's for 199 updates, then period p's.
    r = m["train_return"]
    np.testing.assert_allclose(m["seen_return"][1:], (199 * r[:-1] + r[1:]) / 200, rtol=1e-5)
    assert np.all(r < 0)
    # The env step counts every training step so far: mean of 200p+1 .. 200p+200 in period p.
    np.testing.assert_allclose(m["seen_step"], 200 * np.arange(4) + 100.5)


def test_a_recurrent_agent_keeps_its_carry_under_the_transform():
    """A counting belief (+1 a step, read by ``act``) passes through the wrapper, observed
    with the inner state (which ``observe`` checks it gets)."""
    from jaxrl import loops

    def act(state, obs, key, explore=True, *, carry, **_):
        return jnp.zeros(obs.shape[0], jnp.int32), {"seen": carry}

    def observe(state, carry, obs, action, info):
        return carry + 1 + 0 * state  # the inner state: a scalar, not a PerturbState

    inner = Agent(
        init=lambda key: jnp.zeros((), jnp.int32),
        act=act,
        update=lambda s, b, k: (s, {}),
        initial_carry=lambda n: jnp.zeros(n, jnp.int32),
        observe=observe,
    )
    parts = dormant.Parts(get=lambda s: s, set=lambda s, p: p)
    agent = dormant.with_dormant_perturbation(
        inner, measure=lambda s, b: jnp.zeros(()), perturbed=parts, perturb_every=1
    )
    assert agent.recurrent
    env = E.AutoReset(E.VmapWrapper(E.make("cartpole", episode_length=3), 2))
    state, belief = env.reset(jax.random.PRNGKey(0)), loops.first_carry(agent, 2)
    agent_state, seen = agent.init(jax.random.PRNGKey(1)), []
    for t in range(4):
        _, info, state, belief = loops.act_step(
            agent, agent_state, env, state, belief, jax.random.PRNGKey(t), explore=True
        )
        seen.append(int(info["seen"][0]))
    assert seen == [0, 1, 2, 0]


def _awaken_numpy(beta, step, awaken_step, duration, target=0.2, temp=10.0, final=0.1):
    """DrM's code (``agents/drm.py``, ``stddev_type: awake``; ``utils.schedule``'s
    ``linear(1.0, final, duration)``) in float64 NumPy, one value at a time."""
    sigmoid = 1.0 / (1.0 + np.exp(-temp * (beta - target)))
    if awaken_step < 0:
        return sigmoid
    mix = np.clip((step - awaken_step) / duration, 0.0, 1.0)
    return max(sigmoid, (1.0 - mix) * 1.0 + mix * final)


def test_awaken_schedule_matches_drms_formula_over_a_grid():
    rng = np.random.default_rng(0)
    beta = rng.uniform(0.0, 0.6, 64)
    step = rng.integers(0, 3000, 64).astype(np.float64)
    awaken = np.where(rng.uniform(size=64) < 0.3, -1.0, rng.integers(0, 3000, 64))
    got = jax.jit(lambda b, s, a: dormant.awaken_std(b, s, a, duration=1000.0))(
        jnp.asarray(beta, jnp.float32), jnp.asarray(step, jnp.float32), jnp.asarray(awaken)
    )
    want = [_awaken_numpy(b, s, a, 1000.0) for b, s, a in zip(beta, step, awaken, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The decay floor binds once awake with a low ratio; before awakening it does not.
    assert float(dormant.awaken_std(0.0, 500.0, 0.0, duration=1000.0)) == pytest.approx(0.55)
    assert float(dormant.awaken_std(0.0, 500.0, -1.0, duration=1000.0)) < 0.12


def test_window_slots_place_every_update_once_around_each_perturbation():
    t, w, p = 10, 3, 2
    n = jnp.arange(1, 40)
    k, j, inside = jax.vmap(lambda x: dormant.window_slot(x, t, w, p))(n)
    want = {}  # NumPy: update n lies at offset n - m T of perturbation m when -W < d <= W
    for x in range(1, 40):
        for m in range(1, p + 1):
            if -w < x - m * t <= w:
                want[x] = (m - 1, x - m * t + w - 1)
    got = {int(x): (int(a), int(b)) for x, a, b, i in zip(n, k, j, inside, strict=True) if i}
    assert got == want
    assert sorted(got.values()) == [(m, s) for m in range(p) for s in range(2 * w)]


def test_transform_records_the_measured_ratio_in_its_windows():
    # The toy measure returns the batch's reward: update n measures n / 100.
    agent = dormant.with_dormant_perturbation(
        _toy_agent(),
        measure=lambda s, b: b.reward[0],
        perturbed=W,
        perturb_every=4,
        window=2,
        num_windows=2,
    )
    state = agent.init(jax.random.PRNGKey(0))
    assert state.window.shape == (2, 4)
    update = jax.jit(agent.update)
    for n in range(1, 12):
        batch = _batch().replace(reward=jnp.full(16, n / 100))
        state, _ = update(state, batch, jax.random.PRNGKey(n))
    # Perturbations after updates 4 and 8; windows hold updates 3..6 and 7..10.
    want = [[0.03, 0.04, 0.05, 0.06], [0.07, 0.08, 0.09, 0.10]]
    np.testing.assert_allclose(state.window, want, rtol=1e-6)
    with pytest.raises(ValueError, match="window"):
        dormant.with_dormant_perturbation(
            _toy_agent(), measure=None, perturbed=W, perturb_every=4, window=3, num_windows=1
        )
    with pytest.raises(ValueError, match="dormant_window"):
        drm.SPEC.validate(drm.Config(perturb_every=10, dormant_window=6), E.make("pendulum"))
