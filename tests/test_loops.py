"""The loops: act-time extras kept in replay, the env state given to ``act``, a recurrent
carry stepped and reset by the loop, and data declarations validated."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import loops
from jaxrl.core import Agent
from jaxrl.envs import AutoReset, VmapWrapper


def _train(data, agent, env="pendulum", total_steps=400, num_evals=2):
    train = loops.make_train(
        data, lambda hp, schedule: agent, E.make(env), total_steps=total_steps,
        num_evals=num_evals, num_eval_envs=1,
    )  # fmt: skip
    return jax.tree.map(np.asarray, jax.jit(train)(jax.random.PRNGKey(0), None)[1])


def test_replay_keeps_the_declared_act_time_extras():
    """The policy tags its actions with 7; warm-up rows (random actions) carry zeros."""

    def act(state, obs, key, explore=True, **_):
        return jnp.zeros((obs.shape[0], 1)), {"tag": jnp.full(obs.shape[0], 7.0), "other": obs}

    def update(state, batch, key):
        tag = batch.extras["tag"]
        assert set(batch.extras) == {"tag"}  # only the declared keys are stored
        return state, {"tag_mean": jnp.mean(tag), "zero_frac": jnp.mean(tag == 0.0)}

    agent = Agent(init=lambda key: jnp.zeros(()), act=act, update=update)
    data = loops.Replay(1, batch_size=64, buffer_size=400, warmup_steps=100, updates_per_iter=1,
                        extras=("tag",))  # fmt: skip
    m = _train(data, agent)
    # Second period (buffer of n = 201..400 rows, the first 100 from the warm-up): a
    # uniform draw is a warm-up row with probability 100 / n, ln(2) / 2 on average.
    np.testing.assert_allclose(m["zero_frac"][1], np.log(2) / 2, atol=0.03)
    np.testing.assert_allclose(m["tag_mean"][1], 7.0 * (1.0 - m["zero_frac"][1]), rtol=1e-5)

    bad = loops.Replay(1, 64, 400, 100, 1, extras=("missing",))
    with pytest.raises(ValueError, match="missing"):
        _train(bad, agent)


def test_act_sees_the_env_state_of_its_observations():
    def act(state, obs, key, explore=True, *, env_state=None, carry=None):
        same = jnp.all(env_state.obs == obs, axis=-1)
        return jnp.zeros(obs.shape[0], jnp.int32), {"same": same.astype(jnp.float32)}

    def update(state, batch, key):
        return state, {"same": jnp.mean(batch.extras["same"])}

    agent = Agent(init=lambda key: jnp.zeros(()), act=act, update=update)
    m = _train(loops.Rollout(num_envs=2, rollout_len=8), agent, env="cartpole", total_steps=64)
    np.testing.assert_array_equal(m["same"], 1.0)


def test_recurrent_carry_observes_each_step_and_restarts_with_each_episode():
    """A counting belief: +1 per step, back to 0 when the episode ends (3-step episodes)."""
    env = AutoReset(VmapWrapper(E.make("cartpole", episode_length=3), 2))
    agent = Agent(
        init=lambda key: jnp.zeros(()),
        act=lambda s, obs, key, explore=True, *, carry, **_: (
            jnp.zeros(obs.shape[0], jnp.int32),
            {"seen": carry},
        ),
        update=lambda s, b, k: (s, {}),
        initial_carry=lambda n: jnp.zeros(n, jnp.int32),
        observe=lambda s, carry, obs, action, info: carry + 1,
    )
    state, belief = env.reset(jax.random.PRNGKey(0)), agent.initial_carry(2)
    seen = []
    for t in range(7):
        _, info, state, belief = loops.act_step(
            agent, None, env, state, belief, jax.random.PRNGKey(t), explore=True
        )
        seen.append(int(info["seen"][0]))
    assert seen == [0, 1, 2, 0, 1, 2, 0]
    mean, _ = loops.evaluate(agent, None, E.make("cartpole"), jax.random.PRNGKey(1), 2)
    assert np.isfinite(float(mean))


def test_make_train_rejects_an_unknown_data_declaration():
    with pytest.raises(TypeError, match="unknown data declaration"):
        loops.make_train(object(), None, E.make("cartpole"), total_steps=10, num_evals=1,
                         num_eval_envs=1)  # fmt: skip


# The carry channel: one agent deciding every 3 steps in every loop that can take it.

INTERVAL, EPISODE = 3, 5
#: Per episode: decisions at t=0 (plays 0, 1, 2) and t=3 (30, 31); a plan's first action
#: is a multiple of 10, the others are not.
PER_EPISODE = [0.0, 1.0, 2.0, 30.0, 31.0]


class Ticker(E.Env):
    """obs = [t / 8] (t: steps since reset, exact in float32); reward = the action."""

    observation_spec = E.Box((1,), 0.0, 1.0)
    action_spec = E.Box((1,), -100.0, 100.0)

    def reset(self, key):
        return E.first_state(jnp.zeros((), jnp.int32), jnp.zeros((1,)), key)

    def step(self, state, action):
        t = state.inner + 1
        return state.replace(
            inner=t,
            obs=jnp.full((1,), t / 8, jnp.float32),
            reward=action[0].astype(jnp.float32),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
        )


class HostTicker:
    """``Ticker`` as a host env (Python state, ``EPISODE``-step episodes) that records the
    actions it is stepped with."""

    observation_spec, action_spec = Ticker.observation_spec, Ticker.action_spec

    def __init__(self):
        self.t, self.actions = 0, []

    def reset(self):
        self.t = 0
        return np.zeros(1, np.float32)

    def step(self, action):
        self.actions.append(float(action[0]))
        self.t += 1
        return np.full(1, self.t / 8, np.float32), float(action[0]), False, self.t >= EPISODE


def _every_interval():
    """A sequence policy deciding ``[10 t, 10 t + 1, ...]`` at step ``t``, played every
    ``INTERVAL`` steps by ``with_action_sequences``."""
    from jaxrl.transforms.action_sequences import SEQUENCE_KEY, with_action_sequences

    def act(state, obs, key, explore=True, **_):
        seq = 80.0 * obs[:, None, :] + jnp.arange(4, dtype=jnp.float32)[None, :, None]
        return seq[:, 0], {SEQUENCE_KEY: seq}

    policy = Agent(lambda key: jnp.zeros(()), act, lambda s, b, k: (s, {}))
    return with_action_sequences(policy, INTERVAL, Ticker.action_spec)


def _decisions(actions):
    return int(np.sum(np.asarray(actions) % 10 == 0))


def _sequence_actions(warmup, steps):
    from jaxrl.data.sequences import DFSSampler

    data = loops.Sequences(1, steps, warmup, 1, DFSSampler(1, 2, 1, 2), first_update=10**6)
    trainer = loops.make_train(data, lambda hp, s: _every_interval(),
                               E.EpisodeLimit(Ticker(), EPISODE), total_steps=steps,
                               num_evals=1, num_eval_envs=1)  # fmt: skip
    state, _ = jax.jit(lambda k: trainer.run_periods(trainer.init(k, None), None, 1))(
        jax.random.PRNGKey(0)
    )
    return np.asarray(state.carry.data.data["action"][:steps, 0, 0])


def _replay_actions(warmup, steps):
    data = loops.Replay(1, batch_size=2, buffer_size=steps, warmup_steps=warmup,
                        updates_per_iter=1)  # fmt: skip
    trainer = loops.make_train(data, lambda hp, s: _every_interval(),
                               E.EpisodeLimit(Ticker(), EPISODE), total_steps=steps,
                               num_evals=1, num_eval_envs=1)  # fmt: skip
    state, _ = jax.jit(lambda k: trainer.run_periods(trainer.init(k, None), None, 1))(
        jax.random.PRNGKey(0)
    )
    return np.asarray(state.carry.data.data.action[:steps, 0])


def _host_actions(warmup, steps):
    from jaxrl.data.sequences import DFSSampler

    env = HostTicker()
    data = loops.Sequences(1, 1, warmup, 1, DFSSampler(1, 2, 1, 2), first_update=10**6)
    loops.host_sequences(data, _every_interval(), env, jax.random.PRNGKey(0), steps)
    return np.asarray(env.actions)


def _act_step_actions(steps):
    """The step ``on_policy``, ``streaming`` and ``evaluate`` share."""
    agent = _every_interval()
    env = E.AutoReset(E.VmapWrapper(E.EpisodeLimit(Ticker(), EPISODE), 1))
    state, belief = env.reset(jax.random.PRNGKey(0)), loops.first_carry(agent, 1)
    step = jax.jit(lambda s, b, k: loops.act_step(agent, None, env, s, b, k, explore=True))
    actions = []
    for t in range(steps):
        action, _, state, belief = step(state, belief, jax.random.PRNGKey(t))
        actions.append(float(action[0, 0]))
    return np.asarray(actions)


def test_action_sequences_decide_every_interval_in_every_loop():
    """No warm-up: every loop plays the same actions, 2 decisions per 5-step episode (one
    per ``INTERVAL`` steps, restarting with each episode), not one per step."""
    steps = 2 * EPISODE
    played = {
        "act_step": _act_step_actions(steps),
        "sequences": _sequence_actions(0, steps),
        "replay": _replay_actions(0, steps),
        "host": _host_actions(0, steps),
    }
    for loop, actions in played.items():
        np.testing.assert_array_equal(actions, PER_EPISODE * 2, err_msg=loop)
        assert _decisions(actions) == 4, loop


def test_action_sequences_decide_afresh_after_a_warm_up():
    """Two random warm-up steps (the agent's plan is not played): the first policy step
    decides (t=2: 20, 21, 22), then each episode as usual; the same in the sequence,
    replay and host loops."""
    steps, warmup = 2 * EPISODE, 2
    expected = [20.0, 21.0, 22.0] + PER_EPISODE
    for loop, actions in {
        "sequences": _sequence_actions(warmup, steps),
        "replay": _replay_actions(warmup, steps),
        "host": _host_actions(warmup, steps),
    }.items():
        assert not np.any(actions[:warmup] % 1 == 0), loop  # uniform random actions
        np.testing.assert_array_equal(actions[warmup:], expected, err_msg=loop)
        assert _decisions(actions[warmup:]) == 3, loop


def test_warm_up_steps_reach_a_belief_through_observe():
    """A counting belief (+1 per step, 0 at an episode start) counts the replay loop's
    random warm-up steps too: ``observe`` sees them with zeros for the info."""

    def act(s, obs, key, explore=True, *, carry, **_):
        return jnp.zeros((obs.shape[0], 1)), {"seen": carry, "asked": jnp.ones_like(carry)}

    def observe(s, carry, obs, action, info):
        return carry + 1 + 100 * (1 - info["asked"])  # +100 where the agent was not asked

    agent = Agent(lambda key: jnp.zeros(()), act, lambda s, b, k: (s, {}),
                  initial_carry=lambda n: jnp.zeros(n, jnp.int32), observe=observe)  # fmt: skip
    data = loops.Replay(1, batch_size=2, buffer_size=12, warmup_steps=2, updates_per_iter=1,
                        extras=("seen",))  # fmt: skip
    trainer = loops.make_train(data, lambda hp, s: agent, E.EpisodeLimit(Ticker(), EPISODE),
                               total_steps=12, num_evals=1, num_eval_envs=1)  # fmt: skip
    state = jax.jit(lambda k: trainer.run_periods(trainer.init(k, None), None, 1)[0])(
        jax.random.PRNGKey(0)
    )
    seen = np.asarray(state.carry.data.data.extras["seen"][:12])
    # Warm-up rows store zeros; t=2 has seen two silent steps (101 each), then +1 a step.
    np.testing.assert_array_equal(seen, [0, 0, 202, 203, 204, 0, 1, 2, 3, 4, 0, 1])
