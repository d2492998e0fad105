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
