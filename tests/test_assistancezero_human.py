"""AssistanceZero's human data and value targets: recorded play of the simulated human,
behaviour cloning on it, the n-step value target (hand computation), the search's tree
depth, and (slow) the learned human model and cloned assistant on the game."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest

from jaxrl import agents, envs
from jaxrl.agents.planning import assistancezero, human_data
from jaxrl.agents.planning import common as pc
from jaxrl.core import Transition
from jaxrl.envs import assist

CFG3 = dict(height=3, width=3, num_parts=1, min_len=2, max_len=3)


def test_record_human_alone_is_consistent():
    # A near-greedy human alone fixes one cell per step: every live step changes the
    # grid, the episode ends when the goal is done, and the recorded action applied to
    # the recorded board gives the next recorded board.
    cfg = assist.Config(**CFG3, human_temperature=0.01)
    human, seat = jax.jit(lambda k: human_data.record(cfg, k, 16))(jax.random.key(0))
    n, horizon = cfg.num_cells, cfg.horizon
    obs = np.asarray(human.obs).reshape(horizon, 16, -1)
    act = np.asarray(human.action).reshape(horizon, 16)
    live = np.asarray(human.mask).reshape(horizon, 16)
    assert set(np.unique(np.asarray(seat.action))) == {0}  # the assistant seat: no-ops
    np.testing.assert_array_equal(np.asarray(seat.mask), np.asarray(human.mask))
    assert bool(np.all(act[live > 0] != 0))  # the human always acts while the goal is open
    lengths = live.sum(0)
    assert 2 <= lengths.min() and lengths.max() <= n  # 2-3 goal cells plus the debris
    for t in range(horizon - 1):
        for e in range(16):
            if live[t + 1, e]:
                after = assist.apply_action(jnp.asarray(obs[t, e, :n]), jnp.int32(act[t, e]))
                np.testing.assert_array_equal(np.asarray(after), obs[t + 1, e, :n])
    # Live steps come first in every episode (the mask is a prefix).
    assert bool(np.all(np.diff(live, axis=0) <= 0))


def test_record_human_human_seat_follows_the_scripted_human():
    # The assistant seat is a second scripted human: at temperature 0.01 its every live
    # action fixes a cell (the seat's grid changes), so episodes are about twice as fast.
    cfg = assist.Config(**CFG3, human_temperature=0.01)
    alone, _ = human_data.record(cfg, jax.random.key(1), 64)
    _, seat = human_data.record(cfg, jax.random.key(1), 64, assistant=True)
    live = np.asarray(seat.mask) > 0
    acts = np.asarray(seat.action)[live]
    assert bool(np.all(acts != 0))
    grid = np.asarray(seat.obs)[live][:, : cfg.num_cells]
    cells = (acts - 1) % cfg.num_cells
    placing = acts <= cfg.num_cells
    # A placement goes to an empty cell, a removal to a block.
    np.testing.assert_array_equal(grid[np.arange(len(acts)), cells], (~placing).astype(float))
    assert np.asarray(seat.mask).sum() < 0.75 * np.asarray(alone.mask).sum()


def test_bc_loss_masks_and_matches_numpy():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [5.0, 1.0, 0.0]])
    demos = human_data.Demos(jnp.zeros((3, 1)), jnp.array([0, 2, 1]), jnp.array([1.0, 1.0, 0.0]))
    lp = np.asarray(jax.nn.log_softmax(logits))
    want = -(lp[0, 0] + lp[1, 2]) / 2
    assert float(human_data.bc_loss(logits, demos)) == pytest.approx(want, rel=1e-6)


def test_n_step_value_target_hand_case():
    # Runs of L = 3 steps, B = 3: (a) no end, bootstraps at step 2; (b) terminates at
    # step 1, no bootstrap; (c) truncated at step 0, bootstraps from that next_obs.
    g = 0.5
    reward = jnp.array([[1.0, 1.0, 2.0], [2.0, 3.0, 5.0], [4.0, 7.0, 1.0]])  # [L, B]
    term = jnp.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], bool)
    trunc = jnp.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]], bool)
    next_obs = jnp.arange(9, dtype=jnp.float32).reshape(3, 3, 1) * 10  # value = obs
    batch = Transition(
        obs=jnp.zeros((3, 3, 1)),
        action=jnp.zeros((3, 3), jnp.int32),
        reward=reward,
        terminated=term,
        truncated=trunc,
        next_obs=next_obs,
        extras={"search_value": jnp.full((3, 3), -9.0), "searched": jnp.ones((3, 3))},
    )
    first = assistancezero.n_step_first(batch, lambda o: o[..., 0], g)
    want = [
        1 + g * 2 + g**2 * 4 + g**3 * 60,  # next_obs[2, 0] = 60
        1 + g * 3,  # terminated at step 1
        2 + g * 20,  # truncated at step 0: bootstraps from next_obs[0, 2] = 20
    ]
    np.testing.assert_allclose(np.asarray(first.extras["search_value"]), want, rtol=1e-6)
    assert first.obs.shape == (3, 1) and first.reward.shape == (3,)


def test_tree_depth_of_a_hand_built_search():
    # A chain-like search: one action only, so every simulation goes one level deeper.
    def recurrent_fn(params, key, action, emb):
        out = mctx.RecurrentFnOutput(
            reward=jnp.zeros(2),
            discount=jnp.ones(2),
            prior_logits=jnp.zeros((2, 1)),
            value=jnp.zeros(2),
        )
        return out, emb

    root = mctx.RootFnOutput(
        prior_logits=jnp.zeros((2, 1)), value=jnp.zeros(2), embedding=jnp.zeros(2)
    )
    for sims in (1, 4):
        out = mctx.muzero_policy(None, jax.random.key(0), root, recurrent_fn, sims)
        np.testing.assert_array_equal(np.asarray(pc.tree_depth(out.search_tree)), [sims] * 2)


def az_act_info(env_name: str, **config) -> dict:
    spec = agents.get("assistancezero")
    env = envs.make(env_name)
    cfg = spec.make_config(hidden=(16,), num_envs=4, batch_size=8, warmup_steps=8, **config)
    agent = spec.make_agent(cfg, env, spec.default_hparams())
    venv = envs.VmapWrapper(env, 4)

    @jax.jit
    def act(key):
        env_state = venv.reset(key)
        return agent.act(agent.init(key), env_state.obs, key, True, env_state=env_state)[1]

    return act(jax.random.key(0))


@pytest.mark.slow  # two search compiles, ~10 s
def test_search_tree_reaches_depth_two_with_more_simulations_than_considered():
    # 64 simulations over 8 considered root actions (Gumbel) and 64 PUCT simulations grow
    # the tree below the root's children; 16 simulations over 16 actions stay at depth 1.
    deep = az_act_info("assist/build-3x3-cost", num_simulations=64, max_considered=8)
    assert bool(np.all(np.asarray(deep["search_depth"]) >= 2)), deep["search_depth"]
    assert bool(np.all(np.asarray(deep["visit_counts"]).sum(-1) == 64))
    puct = az_act_info("assist/build-3x3-cost", num_simulations=64, search="puct")
    assert bool(np.all(np.asarray(puct["search_depth"]) >= 2)), puct["search_depth"]
    flat = az_act_info("assist/build-3x3-cost", num_simulations=16, max_considered=16)
    np.testing.assert_array_equal(np.asarray(flat["search_depth"]), 1)


@pytest.mark.slow  # a BC fit of a few hundred steps
def test_bc_human_model_learns_the_scripted_human():
    # Fitted on recorded episodes at temperature 0.1, the BC model is far better than
    # uniform on held-out episodes, and its best action changes the grid (as every
    # action the scripted human takes there does) in nearly every state.
    cfg = assist.Config(**CFG3, human_temperature=0.1)
    net = human_data.BCPolicy(cfg.num_actions, (64, 64))
    train, _ = human_data.record(cfg, jax.random.key(0), 512)
    params = jax.jit(lambda k: human_data.fit_bc(net, k, train, 600))(jax.random.key(1))
    test, _ = human_data.record(cfg, jax.random.key(2), 128)
    logits = net.apply(params, test.obs)
    loss = float(human_data.bc_loss(logits, test))
    uniform = float(np.log(cfg.num_actions))
    assert loss < 0.6 * uniform, (loss, uniform)
    best = jnp.argmax(logits, -1)
    grids = test.obs[:, : cfg.num_cells]
    changes = np.asarray(jnp.take_along_axis(assist.effective(grids), best[:, None], 1)[:, 0])
    live = np.asarray(test.mask)
    assert (changes * live).sum() / live.sum() > 0.95


def test_learned_bc_and_imitate_configs_checked():
    spec = agents.get("assistancezero")
    env = envs.make("assist/build-3x3-cost")
    with pytest.raises(ValueError, match="human_source"):
        spec.validate(spec.make_config(human_source="oracle"), env)
    with pytest.raises(ValueError, match="value_target"):
        spec.validate(spec.make_config(value_target="mc"), env)
    with pytest.raises(ValueError, match="td_steps"):
        spec.validate(spec.make_config(td_steps=0), env)
    assert assistancezero.fits_bc(assistancezero.Config(human_source="learned_bc"))
    assert assistancezero.fits_bc(assistancezero.Config(imitate=True))
    assert not assistancezero.fits_bc(assistancezero.Config())
    ablation = assistancezero.Config(human_source="learned_bc", human_model=False)
    assert not assistancezero.fits_bc(ablation)
    seq = spec.data(assistancezero.Config(value_target="n_step", td_steps=7), env)
    assert seq.sequence_len == 7
