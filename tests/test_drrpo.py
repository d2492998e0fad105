"""DR-RPO and the linear-MDP envs: the TV worst case against a linear programme, the
robust backup against float64 robust DP, learned values against exact robust DP, env
features and dynamics, jit/vmap over seeds and radii, and clear errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from jaxrl import agents, envs, runner
from jaxrl.agents.linear import drrpo as D
from jaxrl.core import Transition
from jaxrl.envs import linear as L


def lp_worst(q: np.ndarray, v: np.ndarray, rho: float) -> float:
    """``min p.v`` s.t. ``p`` on the simplex, ``|p - q|_1 <= 2 rho`` (variables p, t)."""
    n = len(q)
    c = np.concatenate([v, np.zeros(n)])
    eye = np.eye(n)
    a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, n)), np.ones((1, n))]])
    b_ub = np.concatenate([q, -q, [2 * rho]])
    a_eq = np.concatenate([np.ones(n), np.zeros(n)])[None]
    res = linprog(c, a_ub, b_ub, a_eq, [1.0], bounds=[(0, None)] * (2 * n))
    return float(res.fun)


def test_tv_worst_case_matches_linear_programme():
    rng = np.random.default_rng(0)
    for rho in (0.0, 0.07, 0.3, 1.0):
        q, v = rng.dirichlet(np.ones(7)), rng.uniform(0, 5, 7)
        assert L.tv_worst(q, v, rho) == pytest.approx(lp_worst(q, v, rho), abs=1e-7)


def test_robust_nu_dual_matches_float64_primal():
    """The JAX dual over alpha equals the NumPy mass-moving worst case, factor by factor."""
    rng = np.random.default_rng(1)
    mu = rng.dirichlet(0.5 * np.ones(9), size=4)  # [d, S]
    v = rng.uniform(0, 4, 9)
    for rho in (0.0, 0.05, 0.2, 0.6):
        got = np.asarray(D.robust_nu(jnp.asarray(mu, jnp.float32), jnp.asarray(v), rho))
        want = np.array([L.tv_worst(m, v, rho) for m in mu])
        np.testing.assert_allclose(got, want, atol=1e-5)


def exact_stats(mdp, n: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Statistics of ``n`` visits of every (s, a) at every step with the expected
    next-state counts, so that ``Lambda^{-1} M -> mu`` as ``n`` grows."""
    phi = mdp.features_np.reshape(-1, mdp.dim)
    gram = np.eye(mdp.dim) + n * phi.T @ phi
    counts = n * phi.T @ (phi @ mdp.nominal_mu)
    rsum = n * phi.T @ mdp.reward_np.reshape(-1)
    return tuple(jnp.asarray(x[None], jnp.float32) for x in (gram, counts, rsum))


@pytest.mark.parametrize("name", ["tabular", "drect"])
def test_robust_backup_matches_exact_dp(name):
    """Plans from exact statistics (n = 1e6) equal float64 robust DP for several radii,
    with and without the KL regularisation; one jitted plan vmapped over the settings."""
    mdp = envs.make(f"linear/{name}").unwrapped
    settings = ((0.0, 0.0), (0.1, 0.0), (0.3, 0.05))
    rho, kl = (jnp.array(x) for x in zip(*settings, strict=True))
    hp = D.HParams(rho=rho, beta=jnp.zeros(3), kl_coef=kl, ridge=jnp.ones(3))
    stats = exact_stats(mdp, 1e6)
    log_ref = jnp.full((mdp.horizon, mdp.num_states, mdp.num_actions), -np.log(mdp.num_actions))

    def planned(hp):
        return D.backward_plan(stats, mdp.features, hp, jnp.float32(0.0), log_ref, True)

    plans = jax.jit(jax.vmap(planned))(hp)
    values = []
    for i, (r, k) in enumerate(settings):
        q, v = L.robust_dp(mdp.features_np, mdp.nominal_mu, mdp.reward_np, mdp.horizon, r,
                           kl_coef=k)  # fmt: skip
        np.testing.assert_allclose(np.asarray(plans.q[i]), q, atol=2e-3)
        np.testing.assert_allclose(np.asarray(plans.v[i]), v, atol=2e-3)
        values.append(v[0, mdp.start])
    assert values[1] < values[0]  # robustness costs value


@pytest.mark.slow
def test_learned_values_match_exact_robust_dp_vmapped_over_seeds_and_rho():
    """Tabular case, jit + vmap over 2 seeds x 2 radii: the learned bonus-free robust value
    at the start state is within 0.2 (6% of the value) of exact robust DP at each radius,
    and the seeds differ while a rerun is bitwise equal."""
    env = envs.make("linear/tabular")
    mdp = env.unwrapped
    config = D.Config(total_steps=6000, num_evals=2, share_steps=True)
    rhos = [0.0, 0.2]
    hp = D.HParams(
        rho=jnp.array(rhos), beta=jnp.full(2, 3.0), kl_coef=jnp.zeros(2), ridge=jnp.ones(2)
    )
    train = D.SPEC.make_train(config, env)
    f = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    state, metrics = f(keys, hp)

    def start_value(st, h):  # one learner's bonus-free robust value at the start state
        st = jax.tree.map(lambda x: x[0], st)
        return D.greedy_plan(config, env, h, st).v[0, mdp.start]

    value = np.asarray(jax.vmap(jax.vmap(start_value), in_axes=(0, None))(state, hp))
    for j, rho in enumerate(rhos):
        exact = L.robust_dp(mdp.features_np, mdp.nominal_mu, mdp.reward_np, mdp.horizon, rho)[1]
        np.testing.assert_allclose(value[:, j], exact[0, mdp.start], atol=0.2)
    assert np.all(value[:, 1] < value[:, 0])
    assert not np.array_equal(np.asarray(state.gram[0]), np.asarray(state.gram[1]))
    assert np.all(np.asarray(metrics["finite"]))
    again, _ = f(keys, hp)
    np.testing.assert_array_equal(np.asarray(again.gram), np.asarray(state.gram))


@pytest.mark.parametrize("name", L.names())
def test_env_features_and_dynamics(name):
    env = envs.make(f"linear/{name}")
    mdp = env.unwrapped
    s_count, a_count, d = mdp.features_np.shape
    np.testing.assert_allclose(mdp.features_np.sum(-1), 1.0, atol=1e-12)
    assert np.all(mdp.features_np >= 0) and np.all(mdp.nominal_mu >= 0)
    p = np.asarray(mdp.transition, np.float64)
    np.testing.assert_allclose(p, mdp.features_np @ mdp.nominal_mu, atol=1e-6)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert np.all((mdp.reward_np >= 0) & (mdp.reward_np <= 1))
    assert env.max_episode_steps == mdp.horizon
    if name == "drect":  # sampled next states follow phi^T mu (one compile: the env code is shared)
        n = 4000
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        states = jax.vmap(env.reset)(keys)
        nxt = jax.jit(jax.vmap(env.step))(states, jnp.ones(n, jnp.int32))
        counts = np.bincount(np.argmax(np.asarray(nxt.obs[:, :s_count]), -1), minlength=s_count)
        np.testing.assert_allclose(counts / n, p[mdp.start, 1], atol=0.03)
        np.testing.assert_allclose(np.asarray(nxt.reward), mdp.reward_np[mdp.start, 1], atol=1e-6)
        assert nxt.obs.shape == (n, s_count + mdp.horizon)
        np.testing.assert_array_equal(np.asarray(nxt.obs[:, s_count + 1]), 1.0)  # h = 1
    # the shift moves probability `shift` of the shifted factors onto the trap
    shifted = envs.make(f"linear/{name}", shift=0.3).unwrapped
    moved = shifted.mu_np - mdp.nominal_mu
    tv = 0.5 * np.abs(moved).sum(-1)
    assert np.all((np.isclose(tv, 0.3 * (1 - mdp.nominal_mu[:, mdp.trap]))) | (tv == 0))
    assert np.all(moved[:, mdp.trap] >= 0)


def test_windy_ledge_dynamics():
    mdp = envs.make("linear/windy", shift=0.25).unwrapped
    p = np.asarray(mdp.transition)
    lava, start = L.WINDY_CELLS, L.WINDY_START
    np.testing.assert_allclose(p[start, 1, start + 1], 0.75, atol=1e-6)  # right, no gust
    np.testing.assert_allclose(p[start, 0, start - 1], 0.75, atol=1e-6)  # left
    np.testing.assert_allclose(p[start, :, lava], 0.25, atol=1e-6)  # gust into the lava
    np.testing.assert_allclose(p[0, :, 0], 1.0)  # exits and lava absorb
    np.testing.assert_allclose(p[lava, :, lava], 1.0)
    # nominal plan goes to the far exit; robust planning at rho >= 0.05 takes the near one
    q0 = L.robust_dp(mdp.features_np, mdp.nominal_mu, mdp.reward_np, mdp.horizon, 0.0)[0]
    q1 = L.robust_dp(mdp.features_np, mdp.nominal_mu, mdp.reward_np, mdp.horizon, 0.1)[0]
    assert np.argmax(q0[0, start]) == 1 and np.argmax(q1[0, start]) == 0


def test_graded_routes_robust_plan_changes_with_the_radius():
    """``linear/graded``: the exact robust plan takes the far, middle and near route at
    rho 0.05, 0.1 and 0.2 (three radii, three routes), and the shift is a gust in the
    corridor cells only."""
    mdp = envs.make("linear/graded", shift=0.25).unwrapped
    picks = {}
    for rho, route in L.GRADED_PICKS.items():
        q = L.robust_dp(mdp.features_np, mdp.nominal_mu, mdp.reward_np, mdp.horizon, rho)[0]
        top = np.sort(q[0, mdp.start])
        assert np.argmax(q[0, mdp.start]) == route and top[-1] - top[-2] > 0.05 * top[-1]
        picks[rho] = route
    assert len({picks[0.05], picks[0.1], picks[0.2]}) == 3
    p = np.asarray(mdp.transition, np.float64)
    lava, ends = mdp.trap, np.cumsum((1, *L.GRADED_LENGTHS))
    for k, (first, end) in enumerate(zip(ends[:-1], ends[1:], strict=True)):
        np.testing.assert_allclose(p[mdp.start, k, first], 1.0, atol=1e-6)  # no gust at start
        for cell in range(first, end - 1):  # corridor: a gust of 0.25 into the lava
            np.testing.assert_allclose(p[cell, :, cell + 1], 0.75, atol=1e-6)
            np.testing.assert_allclose(p[cell, :, lava], 0.25, atol=1e-6)
        np.testing.assert_allclose(p[end - 1, :, end - 1], 1.0, atol=1e-6)  # the exit absorbs
        np.testing.assert_allclose(mdp.reward_np[end - 1], L.GRADED_REWARDS[k])
    assert D.SPEC.make_config("linear/graded").share_steps


@pytest.mark.slow  # ~20-30 s of plan compiles on 2 busy cores
def test_softmax_evaluation_samples_the_regularised_bonus_free_policy():
    """``eval_policy="softmax"`` evaluates ``pi_h`` of the bonus-free plan (frequencies
    match its probabilities); the default takes that plan's argmax. The statistics are
    those of 100 visits of every (s, a) with expected next states (a learned model)."""
    env = envs.make("linear/drect")
    mdp = env.unwrapped
    hp = D.SPEC.default_hparams(kl_coef=0.3)
    soft = D.make_agent(D.Config(share_steps=True, eval_policy="softmax"), env, hp, None)
    greedy = D.make_agent(D.Config(share_steps=True), env, hp, None)
    phi = mdp.features_np.reshape(-1, mdp.dim)
    stats = {
        "gram": np.eye(mdp.dim) + 100 * phi.T @ phi,
        "next_counts": 100 * phi.T @ (phi @ mdp.nominal_mu),
        "reward_sum": 100 * phi.T @ mdp.reward_np.reshape(-1),
    }
    stats = {k: jnp.asarray(v[None], jnp.float32) for k, v in stats.items()}
    n = 4000
    obs = jnp.stack([mdp.observe(mdp.start, 0)] * n)

    @jax.jit  # one compile: the plan, its bonus-free policy, both evaluations
    def run(key):
        state = soft.init(key).replace(**stats)
        log_pi = D.greedy_plan(D.Config(share_steps=True), env, hp, state).log_pi[0, mdp.start]
        return log_pi, soft.act(state, obs, key, False)[0], greedy.act(state, obs, key, False)[0]

    log_pi, sampled, argmax = run(jax.random.PRNGKey(0))
    pi = np.exp(np.asarray(log_pi, np.float64))
    assert pi.max() - pi.min() > 0.05 and pi.max() < 0.95  # neither flat nor one-hot
    freq = np.bincount(np.asarray(sampled), minlength=mdp.num_actions) / n
    np.testing.assert_allclose(freq, pi, atol=0.03)
    np.testing.assert_array_equal(np.asarray(argmax), np.argmax(pi))
    with pytest.raises(ValueError, match="eval_policy"):
        runner.resolve("drrpo", "linear/graded", config={"eval_policy": "mode"})


def test_bad_configs_raise_clear_errors():
    spec = agents.get("drrpo")
    with pytest.raises(ValueError, match="reference"):
        runner.resolve("drrpo", "linear/windy", config={"reference": "nope"})
    with pytest.raises(ValueError, match="linear MDP"):
        runner.resolve("drrpo", "cartpole")
    with pytest.raises(ValueError, match="horizon"):
        spec.validate(spec.make_config(), envs.make("linear/windy", episode_length=5))
    with pytest.raises(ValueError, match="num_envs"):
        runner.resolve("drrpo", "linear/windy", config={"num_envs": 0})
    for bad in ({"rho": 1.5}, {"rho": -0.1}, {"beta": -1.0}, {"kl_coef": -0.5}, {"ridge": 0.0}):
        field = next(iter(bad))  # the declared domains (jaxrl.core.domains)
        with pytest.raises(ValueError, match=f"^drrpo: {field}=.* is outside its domain"):
            spec.default_hparams(**bad)
    with pytest.raises(ValueError, match="shift"):
        envs.make("linear/windy", shift=1.5)
    with pytest.raises(ValueError, match="unknown environment"):
        envs.make("linear/nope")


def test_update_keeps_ridge_statistics_and_replans_at_episode_end():
    env = envs.make("linear/windy")
    mdp = env.unwrapped
    agent = D.make_agent(D.Config(), env, D.SPEC.default_hparams(), None)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    zero = jnp.zeros((), jnp.bool_)

    def transition(s, h, a, s_next, r):
        return Transition(mdp.observe(s, h), jnp.int32(a), jnp.float32(r), zero, zero,
                          mdp.observe(s_next, h + 1))  # fmt: skip

    start = L.WINDY_START
    new, _ = update(state, transition(start, 0, 1, start + 1, 0.0), jax.random.PRNGKey(1))
    x = mdp.features_np[start, 1]
    np.testing.assert_allclose(new.gram[0] - state.gram[0], np.outer(x, x), atol=1e-6)
    np.testing.assert_allclose(
        new.next_counts[0, :, start + 1] - state.next_counts[0, :, start + 1], x
    )
    np.testing.assert_array_equal(new.gram[1:], state.gram[1:])
    np.testing.assert_array_equal(new.act.q, state.act.q)  # no re-plan mid-episode
    assert int(new.episodes) == 0
    h_last = mdp.horizon - 1
    end, _ = update(new, transition(7, h_last, 2, 7, 1.0), jax.random.PRNGKey(2))
    assert int(end.episodes) == 1
    np.testing.assert_allclose(end.reward_sum[h_last], mdp.features_np[7, 2], atol=1e-6)
    assert not np.array_equal(np.asarray(end.act.q), np.asarray(new.act.q))
    # acting samples the optimistic softmax policy: one int32 action per observation
    obs = jnp.stack([mdp.observe(start, 0)] * 64)
    sampled, _ = jax.jit(agent.act)(end, obs, jax.random.PRNGKey(5))
    assert sampled.shape == (64,) and sampled.dtype == jnp.int32
    pi = np.exp(np.asarray(end.act.log_pi[0, start]))
    freq = np.bincount(np.asarray(sampled), minlength=3) / 64
    assert np.all(freq[pi < 1e-6] == 0)  # never an action the policy excludes
