"""The assistance game (hand-computed cases), the mctx planners under jit and vmap, bad
configs, and (slow) learning: AlphaZero beats PPO at equal steps; AssistanceZero helps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import agents, envs, sweep
from jaxrl.agents.planning import alphazero, assistancezero
from jaxrl.envs import assist
from jaxrl.envs.core import first_state

TINY = {"hidden": (16,), "num_envs": 4, "batch_size": 8, "warmup_steps": 8, "num_simulations": 4}


def game(**kw) -> assist.AssistGame:
    return assist.AssistGame(assist.Config(**kw))


def state_with(env: assist.AssistGame, grid, goal, key=0) -> envs.EnvState:
    n = env.config.num_cells
    zeros = jnp.zeros((n,), jnp.float32)
    board = assist.Board(jnp.asarray(grid, jnp.float32), zeros, zeros, zeros, jnp.int32(0))
    inner = assist.GameState(board, jnp.asarray(goal, jnp.float32), jnp.int32(0))
    return first_state(inner, assist.observe(board, env.config.horizon), jax.random.PRNGKey(key))


# ---- the game -------------------------------------------------------------------------


def test_wall_mask_hand_case():
    got = assist.wall_mask(3, 4, 1, 1, 3, False)
    want = np.zeros((3, 4))
    want[1, 1:4] = 1
    np.testing.assert_array_equal(np.asarray(got).reshape(3, 4), want)
    got = assist.wall_mask(3, 4, 0, 2, 2, True)
    want = np.zeros((3, 4))
    want[0:2, 2] = 1
    np.testing.assert_array_equal(np.asarray(got).reshape(3, 4), want)


def test_goal_sampling_distribution():
    # 3x3, one wall of length exactly 3: the 3 rows and 3 columns, each with prob 1/6.
    cfg = assist.Config(height=3, width=3, num_parts=1, min_len=3, max_len=3)
    goals = jax.jit(jax.vmap(lambda k: assist.sample_goal(cfg, k)))(
        jax.random.split(jax.random.key(0), 6000)
    )
    goals = np.asarray(goals).reshape(-1, 3, 3)
    rows = [(goals == np.eye(3)[i][:, None] * np.ones((1, 3))).all((1, 2)) for i in range(3)]
    cols = [(goals == np.ones((3, 1)) * np.eye(3)[i][None, :]).all((1, 2)) for i in range(3)]
    freq = np.array([m.mean() for m in rows + cols])
    assert freq.sum() == pytest.approx(1.0)  # nothing else is ever drawn
    np.testing.assert_allclose(freq, 1 / 6, atol=0.02)
    # Two walls of lengths 2..3 on 5x5: between 2 and 6 cells, every goal a union of lines.
    cfg = assist.Config(height=5, width=5, num_parts=2, min_len=2, max_len=3)
    sizes = jax.jit(jax.vmap(lambda k: assist.sample_goal(cfg, k).sum()))(
        jax.random.split(jax.random.key(1), 500)
    )
    assert 2 <= int(sizes.min()) and int(sizes.max()) <= 6


def test_human_model_distribution_hand_case():
    # 1x3 grid [0, 1, 0], goal [1, 0, 0]; actions: noop, place 0..2, remove 0..2.
    grid, goal = jnp.array([0.0, 1.0, 0.0]), jnp.array([1.0, 0.0, 0.0])
    q = np.asarray(assist.action_values(grid, goal))
    np.testing.assert_array_equal(q, [0, 1, 0, -1, 0, 1, 0])
    tau = 0.5
    want = np.exp(np.array([0, 1, 0, -1, 0, 1, 0], np.float64) / tau)
    want /= want.sum()
    got = jax.nn.softmax(assist.human_logits(grid, goal, tau))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    # The env's human draws from exactly that (assistant no-op): empirical frequencies.
    env = game(height=1, width=3, min_len=1, max_len=1, num_parts=1, human_temperature=tau)
    state = state_with(env, grid, goal)
    keys = jax.random.split(jax.random.key(2), 4000)
    planes = jax.jit(
        jax.vmap(lambda k: env.step(state.replace(key=k), jnp.int32(0)).inner.board.last_human)
    )(keys)
    actions = np.asarray(jax.vmap(assist.plane_action)(planes))
    freq = np.bincount(actions, minlength=7) / len(actions)
    np.testing.assert_allclose(freq, want, atol=0.025)


def test_reward_termination_and_human_count():
    # Goal [1, 1, 0], empty grid; the assistant places cell 0 and a near-greedy human can
    # only improve by placing cell 1: reward 2, goal complete, one human action.
    env = game(height=1, width=3, min_len=1, max_len=1, num_parts=1, human_temperature=0.01)
    state = state_with(env, [0, 0, 0], [1, 1, 0])
    nxt = env.step(state, jnp.int32(1))
    np.testing.assert_array_equal(np.asarray(nxt.inner.board.grid), [1, 1, 0])
    assert float(nxt.reward) == 2.0 and bool(nxt.terminated) and not bool(nxt.truncated)
    assert int(nxt.inner.human_actions) == 1
    np.testing.assert_array_equal(np.asarray(nxt.inner.board.placed), [0, 1, 0])
    # A wrong block costs 1; the human removes it (the only improving move): net 0.
    state = state_with(env, [1, 1, 0], [1, 0, 0])  # cell 1 holds debris
    nxt = env.step(state, jnp.int32(3))  # place cell 2 (not in the goal)
    assert float(nxt.reward) == 0.0  # -1 (assistant) + 1 (the human removes 1 or 2)
    assert not bool(nxt.terminated)
    # Truncation at the horizon when not done.
    env = game(
        height=1, width=3, min_len=1, max_len=1, num_parts=1, max_steps=1, human_temperature=100.0
    )
    nxt = env.step(state_with(env, [0, 0, 0], [1, 1, 1]), jnp.int32(0))
    assert bool(nxt.truncated) != bool(nxt.terminated)


def test_human_action_cost_reward_hand_case():
    # Goal [1, 1, 0], empty grid, a near-greedy human: the assistant places cell 0 and
    # the human cell 1. Progress +2; with cost c the human's one action costs c.
    kw = dict(height=1, width=3, min_len=1, max_len=1, num_parts=1, human_temperature=0.01)
    for cost, want in ((0.0, 2.0), (0.5, 1.5), (1.0, 1.0)):
        env = game(**kw, human_action_cost=cost)
        nxt = env.step(state_with(env, [0, 0, 0], [1, 1, 0]), jnp.int32(1))
        assert float(nxt.reward) == want and int(nxt.inner.human_actions) == 1
    # The human's no-op (nothing left to fix after the assistant) costs nothing.
    env = game(**kw, human_action_cost=0.5)
    nxt = env.step(state_with(env, [0, 1, 0], [1, 1, 0]), jnp.int32(1))
    assert float(nxt.reward) == 1.0 and bool(nxt.terminated)
    assert int(nxt.inner.human_actions) == 0
    # Whole episodes (NumPy): the return is cells_to_fix - cost * human_actions when
    # the human finishes alone (it never breaks a cell at temperature 0.01).
    base = envs.make("assist/build-3x3", human_temperature=0.01)
    cost = envs.make("assist/build-3x3-cost", human_temperature=0.01)
    assert cost.unwrapped.config.human_action_cost == 0.5
    noop = lambda obs, k, s: jnp.zeros(obs.shape[0], jnp.int32)  # noqa: E731
    a = assist.episode_metrics(noop, base, jax.random.key(4), 32)
    b = assist.episode_metrics(noop, cost, jax.random.key(4), 32)
    np.testing.assert_array_equal(np.asarray(a["return"]), np.asarray(a["cells_to_fix"]))
    want = np.asarray(b["cells_to_fix"]) - 0.5 * np.asarray(b["human_actions"], np.float64)
    np.testing.assert_allclose(np.asarray(b["return"]), want, rtol=1e-6)
    assert bool(np.all(np.asarray(b["completed"])))
    # The mask of grid-changing actions.
    np.testing.assert_array_equal(
        np.asarray(assist.effective(jnp.array([0.0, 1.0]))), [0, 1, 0, 0, 1]
    )


def test_observation_round_trip_and_reset():
    env = envs.make("assist/build")
    state = env.reset(jax.random.key(3))
    inner = state.inner
    assert state.obs.shape == env.observation_spec.shape == (4 * 25 + 1,)
    assert float(jnp.sum(inner.board.grid * inner.goal)) == 0.0  # goal cells start empty
    board = assist.board_from_obs(state.obs, env.unwrapped.config.horizon)
    for a, b in zip(jax.tree.leaves(board), jax.tree.leaves(inner.board), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a in [0, 1, 7, 25, 26, 50]:
        assert int(assist.plane_action(assist.action_plane(jnp.int32(a), 25))) == a


def test_bad_configs_rejected():
    with pytest.raises(ValueError, match="min_len"):
        assist.Config(min_len=4, max_len=2)
    with pytest.raises(ValueError, match="human_temperature"):
        assist.Config(human_temperature=0.0)
    with pytest.raises(ValueError, match="human_action_cost"):
        assist.Config(human_action_cost=-1.0)
    with pytest.raises(ValueError, match="unknown assistance game"):
        assist.make("nope")
    spec = agents.get("assistancezero")
    with pytest.raises(ValueError, match="search"):
        spec.validate(spec.make_config(search="beam"), envs.make("assist/build"))
    with pytest.raises(ValueError, match="assist/<name>"):
        spec.validate(spec.make_config(), envs.make("gymnax/CartPole-v1"))
    with pytest.raises(ValueError, match="num_simulations"):
        spec.validate(spec.make_config(num_simulations=0), envs.make("assist/build"))
    with pytest.raises(ValueError, match="imitate"):
        spec.validate(spec.make_config(imitate=True, human_model=False), envs.make("assist/build"))
    with pytest.raises(ValueError, match="discrete"):
        agents.get("alphazero").validate(alphazero.Config(), envs.make("pendulum"))


def test_search_reward_model_hand_case():
    # Grid [0, 1], goal belief p = [0.9, 0.2]: E[matches] = 0.1 + 0.2 = 0.3.
    grid, p = jnp.array([0.0, 1.0]), jnp.array([0.9, 0.2])
    assert float(assistancezero.expected_matches(grid, p)) == pytest.approx(0.3)
    assert float(assistancezero.done_prob(grid, p)) == pytest.approx(0.1 * 0.2)
    gains = np.asarray(assistancezero.human_gains(grid, p))
    np.testing.assert_allclose(gains, [0, 0.8, 0, 0, 0.6], atol=1e-6)
    for a in range(5):  # each gain is the change of E[matches] the action makes
        after = assistancezero.expected_matches(assist.apply_action(grid, jnp.int32(a)), p)
        assert float(after) - 0.3 == pytest.approx(gains[a], abs=1e-6)


# ---- mctx under jit and vmap ----------------------------------------------------------


@pytest.mark.slow  # ~30 s of compiles on 2 cores
def test_search_under_jit_and_vmap_over_seeds():
    algo, search = "assistancezero", "gumbel"
    spec = agents.get(algo)
    env = envs.make("assist/build-3x3")
    config = spec.make_config(**TINY, search=search)
    agent = spec.make_agent(config, env, spec.default_hparams())
    venv = envs.VmapWrapper(env, 3)

    @jax.jit
    @jax.vmap
    def act(key):
        state = agent.init(key)
        env_state = venv.reset(key)
        return agent.act(state, env_state.obs, key, True, env_state=env_state)

    action, info = act(sweep.seed_keys(0, 2))
    assert action.shape == (2, 3) and action.dtype == jnp.int32
    assert info["search_policy"].shape == (2, 3, env.action_spec.num_actions)
    np.testing.assert_allclose(np.asarray(info["search_policy"].sum(-1)), 1.0, rtol=1e-5)
    assert bool(jnp.all(jnp.isfinite(info["search_value"])))
    # Every simulation passes through one root action.
    assert bool(jnp.all(info["visit_counts"].sum(-1) == TINY["num_simulations"]))
    again = act(sweep.seed_keys(0, 2))[0]
    np.testing.assert_array_equal(np.asarray(action), np.asarray(again))  # deterministic
    assert info["goal"].shape == (2, 3, 9) and bool(jnp.all(info["goal_known"] == 1))


@pytest.mark.slow
def test_alphazero_search_finds_the_rewarding_move():
    # A known simulator and a near-greedy human: with enough simulations the root's best
    # action fixes a cell (a +1 step), never a harmful one.
    env = envs.make("assist/build-3x3", human_temperature=0.01)
    config = alphazero.Config(**{**TINY, "num_simulations": 32, "max_considered": 32})
    agent = alphazero.make_agent(config, env, alphazero.HParams())
    state = agent.init(jax.random.key(0))
    venv = envs.VmapWrapper(env, 8)
    env_state = venv.reset(jax.random.key(1))
    action, _ = jax.jit(lambda s, e: agent.act(s, e.obs, jax.random.key(2), False, env_state=e))(
        state, env_state
    )
    grid, goal = env_state.inner.board.grid, env_state.inner.goal
    q = jax.vmap(assist.action_values)(grid, goal)
    chosen = np.asarray(jnp.take_along_axis(q, action[:, None], 1)[:, 0])
    assert (chosen == 1).mean() >= 0.75, chosen


def test_human_reply_decodes_from_the_next_observation():
    # The human-action targets come from next_obs's last-action plane: applying the
    # decoded reply to the board the assistant left gives the env's next grid.
    env = envs.make("assist/build-3x3")
    venv = envs.VmapWrapper(env, 64)

    @jax.jit
    def run(key):
        s0 = venv.reset(key)
        action = jax.random.randint(key, (64,), 0, env.action_spec.num_actions)
        s1 = venv.step(s0, action)
        mid = jax.vmap(assist.apply_action)(s0.inner.board.grid, action)
        board = jax.vmap(lambda o: assist.board_from_obs(o, env.max_episode_steps))(s1.obs)
        human = jax.vmap(assist.plane_action)(board.last_human)
        return jax.vmap(assist.apply_action)(mid, human), s1.inner.board.grid

    got, want = run(jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.slow
def test_assistancezero_update_fits_the_heads():
    from jaxrl.core import Transition

    spec = agents.get("assistancezero")
    env = envs.make("assist/build-3x3")
    config = spec.make_config(**TINY)
    agent = spec.make_agent(config, env, spec.default_hparams(lr=1e-2))
    state = agent.init(jax.random.key(0))
    venv = envs.VmapWrapper(env, 8)
    s0 = venv.reset(jax.random.key(1))
    action, info = agent.act(state, s0.obs, jax.random.key(2), True, env_state=s0)
    s1 = venv.step(s0, action)
    batch = Transition(s0.obs, action, s1.reward, s1.terminated, s1.truncated, s1.obs, info)
    upd = jax.jit(agent.update)
    new, first = upd(state, batch, jax.random.key(3))
    assert int(new.step) == 1 and all(bool(jnp.isfinite(v)) for v in first.values())
    for _ in range(40):  # the heads fit the batch: the supervised losses fall
        new, last = upd(new, batch, jax.random.key(3))
    assert float(last["human_loss"]) < 0.7 * float(first["human_loss"])
    assert float(last["goal_loss"]) < 0.7 * float(first["goal_loss"])
    assert float(last["policy_loss"]) < float(first["policy_loss"])


# ---- learning (slow) ------------------------------------------------------------------


def trained_human_actions(
    algo: str, env_name: str, steps: int, seeds: int, gamma: float = 0.95, **config
) -> np.ndarray:
    """Trains ``algo`` for ``steps`` on ``seeds`` vmapped seeds; the mean human actions
    per episode (64 deterministic episodes per seed), ``[seeds]``."""
    spec = agents.get(algo)
    env = envs.make(env_name)
    cfg = spec.make_config(env_name, total_steps=steps, num_evals=2, **config)
    hp = spec.default_hparams(gamma=gamma)
    states, _ = sweep.over_seeds(spec.make_train(cfg, env), seeds)(sweep.seed_keys(0, seeds), hp)
    agent = spec.make_agent(cfg, env, hp, spec.schedule(cfg, env))

    def measure(state, key):
        def policy(obs, k, env_state):
            return agent.act(state, obs, k, False, env_state=env_state)[0]

        return assist.episode_metrics(policy, env, key, 64)["human_actions"].mean()

    keys = jax.random.split(jax.random.key(7), seeds)
    return np.asarray(jax.jit(jax.vmap(measure))(states, keys))


@pytest.mark.slow
def test_alphazero_beats_ppo_at_equal_steps():
    """Known-model planning saves the human more work than PPO at 8k env steps.

    gamma 0.5: the progress reward sums to the same total whoever fixes the cells (a
    wrong block costs -1 and the human's removal gives +1 back), so only discounting
    rewards speed; at gamma 0.95 fixing a cell beats breaking one by only 2 - 2 gamma."""
    az = trained_human_actions(
        "alphazero", "assist/build-3x3", 8192, 2, gamma=0.5, num_simulations=8
    )
    ppo = trained_human_actions("ppo", "assist/build-3x3", 8192, 2, rollout_len=32)
    assert az.mean() < ppo.mean() - 0.3, (az, ppo)


@pytest.mark.slow
def test_assistancezero_saves_human_actions():
    """AssistanceZero (learned goal and human heads) beats the human alone on build-3x3."""
    env = envs.make("assist/build-3x3")
    alone = assist.episode_metrics(
        lambda obs, k, s: jnp.zeros(obs.shape[0], jnp.int32), env, jax.random.key(7), 256
    )["human_actions"].mean()
    az = trained_human_actions("assistancezero", "assist/build-3x3", 8192, 2)
    assert az.mean() < float(alone) - 0.3, (az, float(alone))
