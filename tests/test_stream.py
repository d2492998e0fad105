"""Stream-x: ObGD and traces by hand, Welford against NumPy, sparse init, the streaming
loop (vmapped seeds equal separate runs) and learning on cartpole and pendulum."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import agents, core, loops, sweep
from jaxrl.agents.stream import common as sx
from jaxrl.agents.stream import stream_ac, stream_q, stream_td
from jaxrl.nets import StreamMLP
from jaxrl.nets.init import sparse_uniform

# --- ObGD and traces -----------------------------------------------------------------------


def _linear_grads(x):
    """Gradients of ``v = w . x + b`` with respect to ``{"w", "b"}``."""
    return {"w": jnp.asarray(x, jnp.float32), "b": jnp.ones((), jnp.float32)}


@pytest.mark.parametrize(
    "lr, kappa, delta, bound_active",
    [(0.2, 2.0, 0.5, False), (1.0, 2.0, 3.0, True), (1.0, 2.0, -0.4, True)],
)
def test_obgd_one_update_on_a_linear_model_matches_hand_computation(lr, kappa, delta, bound_active):
    x = np.array([0.1, -0.2, 0.05])
    params = {"w": jnp.array([0.3, 0.0, -1.0]), "b": jnp.zeros(())}
    tx = sx.obgd(lr, 0.99, 0.8, kappa)
    updates, state = tx.update(_linear_grads(x), tx.init(params), delta=delta, reset=False)
    # By hand: z = grad = (x, 1); ||z||_1 = 0.35 + 1; M = lr kappa max(|delta|, 1) ||z||_1.
    m = lr * kappa * max(abs(delta), 1.0) * 1.35
    assert (m > 1) == bound_active
    step = lr / m if m > 1 else lr
    np.testing.assert_allclose(updates["w"], step * delta * x, rtol=1e-6)
    np.testing.assert_allclose(updates["b"], step * delta, rtol=1e-6)
    np.testing.assert_allclose(state.trace["w"], x, rtol=1e-6)
    if bound_active:
        # The bound keeps the new prediction from overshooting the target: it moves
        # towards it by step * delta * ||z||_2^2, less than |delta|.
        new_params = jax.tree.map(lambda p, u: p + u, params, updates)
        change = float(jnp.dot(new_params["w"] - params["w"], x) + new_params["b"])
        assert abs(change) < abs(delta) and np.sign(change) == np.sign(delta)


def test_obgd_trace_decays_then_resets_after_the_update():
    gamma, lam = 0.9, 0.5
    tx = sx.obgd(0.1, gamma, lam, 2.0)
    params = {"w": jnp.zeros(2), "b": jnp.zeros(())}
    g1, g2 = _linear_grads([1.0, -2.0]), _linear_grads([0.5, 0.25])
    _, state = tx.update(g1, tx.init(params), delta=0.1, reset=False)
    updates, state2 = tx.update(g2, state, delta=0.1, reset=False)
    z = np.array([1.0, -2.0]) * gamma * lam + np.array([0.5, 0.25])
    np.testing.assert_allclose(state2.trace["w"], z, rtol=1e-6)
    np.testing.assert_allclose(state2.trace["b"], gamma * lam + 1.0, rtol=1e-6)
    # A reset step still updates with the full trace, then leaves a zero trace behind.
    updates_r, state_r = tx.update(g2, state, delta=0.1, reset=True)
    jax.tree.map(np.testing.assert_allclose, updates_r, updates)
    assert all(float(jnp.abs(z).sum()) == 0.0 for z in jax.tree.leaves(state_r.trace))


def test_trace_helpers():
    tree = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
    assert float(sx.trace_l1(tree)) == 6.0
    acc = sx.trace_accumulate(tree, tree, 0.5)
    np.testing.assert_allclose(acc["a"], [1.5, -3.0])
    kept = sx.trace_reset(tree, jnp.array(False))
    np.testing.assert_allclose(kept["a"], tree["a"])
    assert float(sx.trace_l1(sx.trace_reset(tree, jnp.array(True)))) == 0.0


def test_trace_adam_resets_its_trace_and_moves_against_the_loss():
    tx = sx.trace_adam(1e-2, 0.99, 0.8)
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    updates, state = tx.update(
        _linear_grads([1.0, 0.0, -1.0]), tx.init(params), delta=2.0, reset=True
    )
    # Adam's first step is lr * sign(delta * z) where z is non-zero.
    np.testing.assert_allclose(updates["w"], [1e-2, 0.0, -1e-2], atol=1e-6)
    assert float(sx.trace_l1(state.trace)) == 0.0


# --- normalisation, schedules, init --------------------------------------------------------


def test_welford_observation_stats_match_numpy():
    rng = np.random.default_rng(0)
    xs = rng.normal([1.0, -3.0, 10.0], [0.5, 2.0, 4.0], size=(1000, 3)).astype(np.float32)

    def step(norm, x):
        return sx.observe_obs(norm, x), None

    norm, _ = jax.lax.scan(step, sx.StreamNorm.create((3,)), jnp.asarray(xs))
    np.testing.assert_allclose(norm.obs.mean, xs.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.obs.var, xs.var(0, ddof=1), rtol=1e-4)
    one = sx.observe_obs(sx.StreamNorm.create((3,)), jnp.asarray(xs[0]))
    np.testing.assert_allclose(one.obs.var, 1.0)  # 1 until two samples, as the reference
    y = sx.normalize_obs(norm, jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(y).mean(0), 0.0, atol=1e-2)
    np.testing.assert_allclose(np.asarray(y).std(0), 1.0, atol=1e-2)


def test_reward_scaling_divides_by_the_std_of_the_discounted_return_trace():
    rng = np.random.default_rng(1)
    rewards = rng.normal(2.0, 1.0, 300).astype(np.float32)
    dones = rng.random(300) < 0.05
    gamma = 0.9
    u, us = 0.0, []
    for r, d in zip(rewards, dones, strict=True):
        u = gamma * (1.0 - d) * u + r
        us.append(u)

    def step(norm, xs):
        return sx.scale_reward(norm, xs[0], xs[1], gamma)

    norm, scaled = jax.lax.scan(
        step, sx.StreamNorm.create((1,)), (jnp.asarray(rewards), jnp.asarray(dones))
    )
    np.testing.assert_allclose(norm.ret_trace, us[-1], rtol=1e-5)
    var = np.var(us, ddof=1)
    np.testing.assert_allclose(norm.ret.var, var, rtol=1e-4)
    np.testing.assert_allclose(scaled[-1], rewards[-1] / np.sqrt(var + 1e-8), rtol=1e-4)
    np.testing.assert_allclose(scaled[0], rewards[0], rtol=1e-6)  # variance 1 at first


def test_linear_schedule():
    f = sx.linear_schedule
    np.testing.assert_allclose(
        [f(1.0, 0.01, 100.0, t) for t in (0, 50, 100, 500)], [1.0, 0.505, 0.01, 0.01], rtol=1e-6
    )


@pytest.mark.parametrize("fan_in, fan_out", [(32, 64), (128, 7), (4, 32)])
def test_sparse_init_zeroes_ceil_90_percent_of_each_units_inputs(fan_in, fan_out):
    w = np.asarray(sparse_uniform(0.9)(jax.random.PRNGKey(0), (fan_in, fan_out)))
    zeros = (w == 0).sum(axis=0)
    np.testing.assert_array_equal(zeros, math.ceil(0.9 * fan_in))  # each output unit
    assert np.abs(w).max() <= 1 / math.sqrt(fan_in)
    # Different units lose different inputs.
    if fan_in > math.ceil(0.9 * fan_in):
        assert len({tuple(col) for col in (w != 0).T}) > 1
    dense = np.asarray(sparse_uniform(0.0)(jax.random.PRNGKey(0), (fan_in, fan_out)))
    assert (dense != 0).all()


def test_stream_mlp_has_no_layer_norm_parameters_and_zero_biases():
    net = StreamMLP(3, (16, 16))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros(5))["params"]
    assert sorted(params) == ["Dense_0", "Dense_1", "Dense_2"]
    assert all(float(jnp.abs(p["bias"]).sum()) == 0.0 for p in params.values())
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 5))
    assert net.apply({"params": params}, x).shape == (7, 3)


# --- loop and contract ---------------------------------------------------------------------


def test_stream_algorithms_are_registered_specs_that_validate():
    for name in ("stream_ac", "stream_q", "stream_td"):
        spec = agents.get(name)
        assert spec.name == name and spec.default_env == "cartpole"
        assert isinstance(spec.data(spec.config(), E.make("cartpole")), loops.Stream)
    with pytest.raises(ValueError, match="stream_ac: unknown optimizer"):
        stream_ac.SPEC.validate(stream_ac.Config(optimizer="sgd"), E.make("cartpole"))
    with pytest.raises(ValueError, match="num_eval_envs"):
        stream_q.SPEC.validate(stream_q.Config(num_envs=3, num_eval_envs=16), E.make("cartpole"))
    with pytest.raises(ValueError, match="discrete"):
        stream_q.SPEC.validate(stream_q.Config(), E.make("pendulum"))


def test_vmapped_seeds_equal_separate_runs_and_learners_batch():
    env = E.make("cartpole")
    # Short: batched and single matmuls round differently, and learning amplifies that.
    config = stream_q.Config(total_steps=400, num_envs=2, num_evals=2, num_eval_envs=4)
    hparams = stream_q.SPEC.default_hparams()
    train = stream_q.SPEC.make_train(config, env)
    keys = sweep.seed_keys(3, 2)
    states, metrics = sweep.over_seeds(train, 2)(keys, hparams)
    assert metrics["eval_return"].shape == (2, 2)
    assert metrics["env_steps"][0, -1] == 400
    assert states.step.shape == (2, 2)  # [seeds, learners]
    np.testing.assert_array_equal(states.step, 200)
    single = jax.jit(train)
    for i in range(2):
        state_i, metrics_i = single(keys[i], hparams)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
            metrics_i,
            jax.tree.map(lambda x, i=i: x[i], metrics),
        )
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
            state_i.params,
            jax.tree.map(lambda x, i=i: x[i], states.params),
        )
    # The two learners of one seed are independent: their parameters differ.
    w = states.params["params"]["Dense_2"]["kernel"]
    assert not np.allclose(w[0, 0], w[0, 1])


def test_learners_act_groups_env_states_with_zero_size_leaves():
    """Brax env states hold empty arrays (no contacts); each learner gets its own rows."""

    def act(state, obs, key, explore=True, *, env_state=None, carry=None):
        assert env_state["contacts"].shape == (2, 0, 3)
        return obs.sum(-1) + state, {}

    agent = core.Agent(init=lambda key: jnp.float32(0.0), act=act, update=None)
    many = loops.learners(agent, 3)
    states = jnp.arange(3.0) * 10
    obs = jnp.arange(12.0).reshape(6, 2)
    env_state = {"contacts": jnp.zeros((6, 0, 3))}
    action, _ = many.act(states, obs, jax.random.PRNGKey(0), env_state=env_state)
    np.testing.assert_allclose(action, obs.sum(-1) + jnp.repeat(states, 2))


# --- learning ------------------------------------------------------------------------------


def _final_returns(algo, config, env_name, num_seeds=4, **hparams):
    train = algo.SPEC.make_train(config, E.make(env_name))
    _, metrics = sweep.over_seeds(train, num_seeds)(
        sweep.seed_keys(0, num_seeds), algo.SPEC.default_hparams(**hparams)
    )
    assert bool(np.all(metrics["finite"]))
    return np.asarray(metrics["eval_return"])


# Slow since the planning notebook joined CI: ../shared/acceptance/stream trains stream_ac and
# stream_q on cartpole (4 seeds, 200k steps, asserts >= 200 each).
@pytest.mark.slow
def test_stream_ac_cartpole_learns():
    """Measured at 40k steps: 500 in all of 16 seeds (final evaluation, 16 episodes)."""
    config = stream_ac.Config(total_steps=40_000, num_evals=5)
    returns = _final_returns(stream_ac, config, "cartpole")
    print("stream_ac cartpole eval returns (seeds x evals):", returns)
    assert returns[:, -1].mean() >= 450, returns[:, -1]


@pytest.mark.slow  # covered by ../shared/acceptance/stream (see above)
def test_stream_q_cartpole_learns():
    """Measured at 50k steps: means of 4 seeds 493, 494, 442, 485 (16 seeds)."""
    config = stream_q.Config(total_steps=50_000, num_evals=5)
    returns = _final_returns(stream_q, config, "cartpole")
    print("stream_q cartpole eval returns (seeds x evals):", returns)
    assert returns[:, -1].mean() >= 350, returns[:, -1]


@pytest.mark.slow
def test_stream_ac_pendulum_learns():
    """Measured: mean of the last 3 evaluations -182 over 4 seeds (per seed -200, -196,
    -164, -169; 2x128 nets, 300k steps); a random policy scores about -1200 to -1500."""
    config = stream_ac.Config(**stream_ac.SPEC.presets["pendulum"])
    assert config.total_steps <= 300_000
    returns = _final_returns(stream_ac, config, "pendulum")
    print("stream_ac pendulum eval returns (seeds x evals):", returns)
    assert returns[:, -3:].mean() >= -300, returns[:, -3:]


def test_stream_td_predicts_the_random_policy_value_on_cartpole():
    env = E.make("cartpole")
    config = stream_td.Config(total_steps=40_000, num_evals=1)
    states, _ = sweep.over_seeds(stream_td.SPEC.make_train(config, env), 4)(
        sweep.seed_keys(0, 4), stream_td.SPEC.default_hparams()
    )
    starts = jax.vmap(lambda k: env.reset(k).obs)(jax.random.split(jax.random.PRNGKey(9), 256))
    predict = stream_td.make_predict(config, env)
    pred = jax.vmap(lambda s: predict(jax.tree.map(lambda x: x[0], s), starts).mean())(states)

    def discounted_return(key):  # Monte Carlo, uniform random actions, gamma 0.99
        reset_key, key = jax.random.split(key)

        def body(c, k):
            s, g, disc, alive = c
            s = env.step(s, jax.random.randint(k, (), 0, 2))
            return (s, g + alive * disc * s.reward, disc * 0.99, alive & ~s.done), None

        init = (env.reset(reset_key), 0.0, 1.0, True)
        return jax.lax.scan(body, init, jax.random.split(key, 200))[0][1]

    target = float(
        jax.vmap(discounted_return)(jax.random.split(jax.random.PRNGKey(1), 2048)).mean()
    )
    # A constant-step TD(lambda) estimate keeps seed-to-seed noise: the seed mean must be
    # close, each seed roughly right. Measured: 22.7, 18.5, 16.4, 22.0 (mean 19.9) vs 19.7.
    print("stream_td V(s0) per seed:", pred, "Monte Carlo:", target)
    np.testing.assert_allclose(float(np.mean(pred)), target, rtol=0.1)
    np.testing.assert_allclose(pred, target, rtol=0.25)
