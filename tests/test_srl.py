"""SRL: the decision-interval transform against a hand-built env, the evaluation at a
decision interval, FAS against a hand computation, temporal recall with a perfect model,
jit/vmap over seeds, the planner, bad configs, and learning pendulum (slow)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import agents, loops, report, runner, sweep
from jaxrl.agents.actor_critic import srl
from jaxrl.core import Agent, Transition
from jaxrl.envs.core import Box, Env, first_state
from jaxrl.transforms.action_sequences import (
    SEQUENCE_KEY,
    ActionSequences,
    evaluate_intervals,
    sequence_policy,
    with_action_sequences,
)

PENDULUM = E.make("pendulum")
SMALL = srl.Config(
    hidden=(16, 16), gru_size=8, model_hidden=(16,), batch_size=8, seq_len=2, act_len=3
)


class Clock(Env):
    """obs = [t] (steps since reset); reward = the action taken; 5-step episodes."""

    observation_spec = Box((1,))
    action_spec = Box((1,), -100.0, 100.0)

    def reset(self, key):
        return first_state(jnp.zeros((), jnp.int32), jnp.zeros((1,)), key)

    def step(self, state, action):
        t = state.inner + 1
        return state.replace(
            inner=t,
            obs=jnp.full((1,), t, jnp.float32),
            reward=action[0].astype(jnp.float32),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
        )


def _seq_agent(length):
    """Decides at obs t the sequence [10 t, 10 t + 1, ...] of ``length`` actions."""

    def act(state, obs, key, explore=True, **_):
        seq = 10.0 * obs[:, None, :] + jnp.arange(length, dtype=jnp.float32)[None, :, None]
        return seq[:, 0], {SEQUENCE_KEY: seq}

    return Agent(lambda k: None, act, None)


def _single_agent():
    def act(state, obs, key, explore=True, **_):
        return 10.0 * obs, {}

    return Agent(lambda k: None, act, None)


def _played(agent, interval, steps, num_envs=2):
    env = E.AutoReset(E.VmapWrapper(E.EpisodeLimit(Clock(), 5), num_envs))
    agent = with_action_sequences(agent, interval, Clock.action_spec)
    state, belief = env.reset(jax.random.PRNGKey(0)), agent.initial_carry(num_envs)
    step = jax.jit(lambda s, b, k: loops.act_step(agent, None, env, s, b, k, explore=False))
    actions, truncated = [], []
    for t in range(steps):
        action, _, state, belief = step(state, belief, jax.random.PRNGKey(t))
        actions.append(np.asarray(action[:, 0]))
        truncated.append(np.asarray(state.truncated))
    return np.stack(actions), np.stack(truncated)


def test_sequence_played_in_order_and_restarted_with_each_episode():
    """Interval 3 in 5-step episodes: decide at t=0 and t=3, play the sequence in order,
    and decide afresh at the next episode's start, the truncation flag untouched."""
    actions, truncated = _played(_seq_agent(4), 3, 10)
    per_episode = [0, 1, 2, 30, 31]  # decisions at t=0 (plays 0,1,2) and t=3 (30,31)
    np.testing.assert_array_equal(actions[:, 0], per_episode * 2)
    np.testing.assert_array_equal(actions[:, 1], actions[:, 0])
    np.testing.assert_array_equal(truncated[:, 0], [0, 0, 0, 0, 1] * 2)


def test_single_action_held_and_short_sequence_holds_last():
    """A single-action policy is repeated; a sequence shorter than the interval holds its
    last action."""
    held, _ = _played(_single_agent(), 2, 5)
    np.testing.assert_array_equal(held[:, 0], [0, 0, 20, 20, 40])
    short, _ = _played(_seq_agent(2), 4, 5)
    np.testing.assert_array_equal(short[:, 0], [0, 1, 1, 1, 40])


def test_evaluate_at_interval_one_is_the_plain_evaluation():
    """Interval 1 leaves the evaluation as it was; k=2 changes the return."""
    env = E.EpisodeLimit(Clock(), 5)
    agent = _seq_agent(4)
    key = jax.random.PRNGKey(0)
    plain = loops.evaluate(agent, None, env, key, 2)[0]
    one = loops.evaluate(with_action_sequences(agent, 1, Clock.action_spec), None, env, key, 2)[0]
    assert float(plain) == float(one) == 10.0 * (0 + 1 + 2 + 3 + 4)
    # k=2: decisions at t=0, 2, 4 -> actions 0, 1, 20, 21, 40.
    two = loops.evaluate(with_action_sequences(agent, 2, Clock.action_spec), None, env, key, 2)[0]
    assert float(two) == 0 + 1 + 20 + 21 + 40
    rets = evaluate_intervals(agent, None, env, key, 2, (1, 2, 5))
    np.testing.assert_allclose(rets, [100.0, 82.0, 9.0])  # k=5: 0,1,2,3, then 3 held
    # An agent already acting every 2 steps is re-timed, to k=1 included.
    timed = with_action_sequences(agent, 2, Clock.action_spec)
    assert float(loops.evaluate(timed, None, env, key, 2)[0]) == 82.0
    rets = evaluate_intervals(timed, None, env, key, 2, (1, 2, 5))
    np.testing.assert_allclose(rets, [100.0, 82.0, 9.0])


def test_the_inner_policy_is_data_that_wrappers_and_re_timing_keep():
    """The transform's ``act`` is an ``ActionSequences`` record: a wrapper that keeps ``act``
    (here one that replaces ``update``) keeps the inner policy, so transforming it again,
    twice over, re-times that policy instead of sequencing a sequence."""
    env, key = E.EpisodeLimit(Clock(), 5), jax.random.PRNGKey(0)
    agent = _seq_agent(4)
    timed = with_action_sequences(agent, 2, Clock.action_spec)
    assert isinstance(timed.act, ActionSequences) and timed.act.policy.act is agent.act
    assert timed.act.interval == 2 and sequence_policy(agent) is agent

    def update(state, batch, key):  # a wrapper's own update
        return state, {"wrapped": jnp.ones(())}

    wrapped = timed._replace(update=update)
    inner = sequence_policy(wrapped)
    assert inner.act is agent.act and inner.update is update and not inner.recurrent
    five = with_action_sequences(with_action_sequences(wrapped, 3, Clock.action_spec), 5,
                                 Clock.action_spec)  # fmt: skip
    assert five.act.policy.act is agent.act and five.act.interval == 5 and five.update is update
    # k=5 plays 0, 1, 2, 3 and holds 3 (as evaluate_intervals at 5 above).
    assert float(loops.evaluate(five, None, env, key, 2)[0]) == 9.0


def test_bad_intervals_rejected():
    with pytest.raises(ValueError, match="positive int"):
        with_action_sequences(_single_agent(), 0, Clock.action_spec)
    with pytest.raises(ValueError, match="continuous"):
        with_action_sequences(_single_agent(), 2, E.make("cartpole").action_spec)


def test_fas_matches_hand_computation():
    """The paper's FAS (table2.ipynb): trapezoid area of ``R_k + offset`` over ``k``,
    divided by ``max_reward * 30``; worked by hand on 3 intervals."""
    returns = np.array([[-200.0, -400.0, -800.0], [-150.0, -150.0, -1300.0]])
    # Pendulum: R + 1550 = [1350, 1150, 750] and [1400, 1400, 250] at k = 1, 2, 4.
    hand = [
        (1 * (1350 + 1150) / 2 + 2 * (1150 + 750) / 2) / (1350 * 30),
        (1 * (1400 + 1400) / 2 + 2 * (1400 + 250) / 2) / (1350 * 30),
    ]
    got = report.frequency_averaged_score(returns, (1, 2, 4), *report.fas_norm("pendulum"))
    np.testing.assert_allclose(got, hand, rtol=1e-12)
    np.testing.assert_allclose(hand[0], 3150 / 40500)
    # Without a norm: the raw area over the span 30.
    raw = report.frequency_averaged_score(returns[0], (1, 2, 4))
    np.testing.assert_allclose(raw, (-300.0 - 1200.0) / 30)
    with pytest.raises(ValueError, match="increasing"):
        report.frequency_averaged_score(returns, (1, 4, 2))
    with pytest.raises(ValueError, match="one per interval"):
        report.frequency_averaged_score(returns, (1, 2))
    with pytest.raises(ValueError, match="max_reward"):
        report.frequency_averaged_score(returns, (1, 2, 4), 0.0, 0.0)


def test_fas_of_a_perfect_pendulum_policy_is_29_over_30():
    """The paper's 16 intervals (1, 2, 4, ..., 30): a return of -200 at every interval
    (1350 after the shift) scores 29/30 = 0.967, the paper's perfect score."""
    assert report.FAS_INTERVALS == (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
    perfect = np.full(len(report.FAS_INTERVALS), -200.0)
    fas = report.frequency_averaged_score(perfect, report.FAS_INTERVALS, 1550.0, 1350.0)
    np.testing.assert_allclose(fas, 29 / 30)
    assert round(float(fas), 3) == 0.967


def test_fas_hook_scores_the_agent_states_it_is_given():
    """``fas.run`` evaluates the states handed over (the runner hands the best checkpoint
    under the absolute protocol) and reports the paper's FAS of their returns: on Clock,
    acting ``10 s t`` at obs ``t`` and holding it ``k`` steps returns ``100 s``, ``80 s``,
    ``40 s`` at k = 1, 2, 4, so the raw FAS is ``(90 s + 120 s) / 30 = 7 s``."""
    import types

    from jaxrl.transforms import fas

    def act(state, obs, key, explore=True, **_):
        return 10.0 * state * obs, {}

    config = types.SimpleNamespace(fas_intervals=(1, 2, 4), num_eval_envs=2)
    given = loops.HookInput(
        Agent(lambda k: None, act, None),
        jnp.array([1.0, 2.0]),  # two "seeds": s = 1, 2
        E.EpisodeLimit(Clock(), 5),
        "clock",
        config,
        0,
        lambda x: np.asarray(x),
        "best",
    )
    out = fas.run(given)
    np.testing.assert_allclose(out["fas_returns"], [[100, 80, 40], [200, 160, 80]], rtol=1e-6)
    np.testing.assert_allclose(out["fas_per_seed"], [7.0, 14.0], rtol=1e-6)
    assert out["fas_norm"] is None and out["fas_agent"] == "best"
    assert fas.rows(out)[0][1].startswith("10.500 (best agent")


def test_interval_mean_score_matches_hand_computation():
    """jaxrl's earlier stand-in (kept under its own name): the mean over intervals of
    the return normalised to [low, high]."""
    returns = np.array([[-200.0, -400.0, -800.0], [-150.0, -150.0, -1300.0]])
    low, high = -1300.0, -100.0
    hand = [
        ((1100 / 1200) + (900 / 1200) + (500 / 1200)) / 3,
        ((1150 / 1200) + (1150 / 1200) + 0.0) / 3,
    ]
    np.testing.assert_allclose(report.interval_mean_score(returns, low, high), hand)
    np.testing.assert_allclose(report.interval_mean_score(returns[0]), -1400 / 3)
    with pytest.raises(ValueError, match="high > low"):
        report.interval_mean_score(returns, 1.0, 0.0)
    with pytest.raises(ValueError, match="both"):
        report.interval_mean_score(returns, 1.0)


def test_temporal_recall_with_a_perfect_model_scores_true_states():
    """With the true dynamics as the model, recall scores the true intermediate states:
    a damped linear system stepped by hand in float64, the critic called there."""
    A = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.7]])
    B = np.array([[1.0], [-0.5], [0.3]])
    w = np.array([1.0, 2.0, 3.0])

    def model(s, a):
        return s @ jnp.asarray(A.T, jnp.float32) + a @ jnp.asarray(B.T, jnp.float32)

    def q_fn(s, a):
        return jnp.sum(s * jnp.asarray(w, jnp.float32), -1) + 5.0 * a[:, 0] ** 2

    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    actions = jax.random.uniform(jax.random.PRNGKey(1), (4, 5, 1), minval=-2, maxval=2)
    q, recalled = jax.jit(lambda o, a: srl.temporal_recall(model, q_fn, o, a))(obs, actions)
    s, a = np.asarray(obs, np.float64), np.asarray(actions, np.float64)
    for j in range(5):
        np.testing.assert_allclose(recalled[:, j], s, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(q[:, j], s @ w + 5.0 * a[:, j, 0] ** 2, rtol=1e-5)
        s = s @ A.T + a[:, j] @ B.T
    # The recalled states carry no gradient to the actions: only Q(s_j, a_j) does.
    g = jax.grad(lambda a: srl.temporal_recall(model, q_fn, obs, a)[0].sum())(actions)
    np.testing.assert_allclose(g[..., 0], 10.0 * actions[..., 0], rtol=1e-5)


@pytest.mark.slow  # ~1 minute of compiles on 2 cores
def test_update_jit_vmap_and_sequence_shapes():
    agent = srl.make_sequence_agent(SMALL, PENDULUM, srl.SPEC.default_hparams())
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    states = jax.vmap(agent.init)(keys)
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    batch = Transition(
        obs=jax.random.normal(k[0], (8, 3)),
        action=jax.random.uniform(k[1], (8, 1), minval=-2.0, maxval=2.0),
        reward=jax.random.normal(k[2], (8,)),
        terminated=jnp.zeros(8, bool),
        truncated=jnp.zeros(8, bool),
        next_obs=jax.random.normal(k[0], (8, 3)) + 0.1,
    )
    new, metrics = jax.jit(jax.vmap(agent.update, in_axes=(0, None, 0)))(states, batch, keys)
    assert metrics["critic_loss"].shape == (2,)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in metrics.values())
    assert int(new.step[0]) == 1
    action, info = agent.act(jax.tree.map(lambda x: x[0], new), batch.obs, keys[0], False)
    assert action.shape == (8, 1) and info[SEQUENCE_KEY].shape == (8, SMALL.act_len, 1)
    assert float(jnp.max(jnp.abs(info[SEQUENCE_KEY]))) <= 2.0
    np.testing.assert_array_equal(action, info[SEQUENCE_KEY][:, 0])


@pytest.mark.slow
def test_train_vmapped_seeds_deterministic_and_distinct():
    cfg = dataclasses.replace(SMALL, total_steps=300, warmup_steps=200, num_evals=1)
    cfg = dataclasses.replace(cfg, num_eval_envs=2)
    train = jax.jit(sweep.over_seeds(srl.SPEC.make_train(cfg, PENDULUM), 2))
    keys = sweep.seed_keys(0, 2)
    _, m1 = train(keys, srl.SPEC.default_hparams())
    _, m2 = train(keys, srl.SPEC.default_hparams())
    np.testing.assert_array_equal(m1["eval_return"], m2["eval_return"])
    assert m1["eval_return"].shape == (2, 1)
    assert m1["eval_return"][0, 0] != m1["eval_return"][1, 0]
    assert bool(jnp.all(m1["finite"]))


@pytest.mark.slow  # CEM over the learned model: a long compile
def test_planner_returns_a_sequence_in_bounds():
    hp = srl.SPEC.default_hparams()
    plan = srl.planner(SMALL, PENDULUM, hp, horizon=3, population=8, elites=2, iterations=2)
    state = plan.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (2, 3))
    action, info = jax.jit(plan.act)(state, obs, jax.random.PRNGKey(2))
    assert info[SEQUENCE_KEY].shape == (2, 3, 1)
    assert float(jnp.max(jnp.abs(info[SEQUENCE_KEY]))) <= 2.0
    with pytest.raises(ValueError, match="elites"):
        srl.planner(SMALL, PENDULUM, hp, horizon=3, population=4, elites=5)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"seq_len": 0}, "seq_len must be positive"),
        ({"seq_len": 8, "act_len": 4}, "act_len"),
        ({"train_interval": -1}, "train_interval"),
        ({"train_interval": 32}, "train_interval"),
        ({"fas_intervals": (1, 0)}, "fas_intervals"),
        ({"fas_intervals": (4, 2)}, "increasing"),
    ],
)
def test_bad_configs_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        runner.resolve("srl", "pendulum", config=overrides)


def test_discrete_env_rejected():
    with pytest.raises(ValueError, match="continuous"):
        runner.resolve("srl", "cartpole")


def test_registered():
    assert agents.get("srl").default_env == "pendulum"


@pytest.mark.slow
def test_learns_pendulum_and_reports_fas(tmp_path):
    """20k steps, 2 seeds: final return >= -400 and a FAS in summary.json."""
    result = runner.run(
        "srl", "pendulum", seeds=2, steps=20_000, out=tmp_path, progress=False, log=None
    )
    s = result.summary
    assert s["final_return_mean"] >= -400, s["final_returns"]
    assert len(s["fas_returns"][0]) == len(report.FAS_INTERVALS)
    assert s["fas_agent"] == "final" and s["fas_norm"] == [1550.0, 1350.0]
    assert 0.0 < s["fas"] <= 29 / 30
