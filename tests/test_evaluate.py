"""The one evaluation routine: episodes capped at ``max_steps`` equal hand-truncated
episodes, the early exit equals running the whole horizon, and the run reports how long
evaluation took and how it was bounded."""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import loops, runner
from jaxrl.core import Agent
from jaxrl.envs import VmapWrapper
from jaxrl.loops.evaluate import act_step


def _agent(policy, recurrent=False):
    """A deterministic agent ``policy(obs [B, ...]) -> action [B]``; ``recurrent``: with a
    step-counting belief that it adds to its observation (so the carry matters)."""

    def act(state, obs, key, explore=True, *, carry=None, **_):
        if recurrent:
            obs = obs + 0.01 * carry[:, None]
        return policy(obs), {}

    if not recurrent:
        return Agent(init=lambda key: None, act=act, update=lambda s, b, k: (s, {}))
    return Agent(
        init=lambda key: None,
        act=act,
        update=lambda s, b, k: (s, {}),
        initial_carry=lambda n: jnp.zeros(n, jnp.float32),
        observe=lambda s, carry, obs, action, info: carry + 1.0,
    )


def _full_scan(agent, env, key, num_envs):
    """The reference: every step of the episode limit in a ``lax.scan`` (no early exit),
    with the keys ``evaluate`` splits; returns ``(mean, std, episode lengths [B])``."""
    horizon = env.max_episode_steps
    eval_env = VmapWrapper(env, num_envs)
    keys = jax.random.split(key, num_envs + horizon)
    state = eval_env.reset_each(keys[:num_envs])
    belief = agent.initial_carry(num_envs) if agent.recurrent else None

    def body(carry, k):
        state, belief, total, alive, length = carry
        _, _, state, belief = act_step(agent, None, eval_env, state, belief, k, explore=False)
        reward = jnp.where(alive, state.reward, 0.0)
        return (state, belief, total + reward, alive & ~state.done, length + alive), None

    zeros = jnp.zeros(num_envs)
    init = (state, belief, zeros, jnp.ones(num_envs, jnp.bool_), zeros.astype(jnp.int32))
    (_, _, returns, _, lengths), _ = jax.lax.scan(body, init, keys[num_envs:])
    return jnp.mean(returns), jnp.std(returns), lengths


CARTPOLE_AGENTS = {
    "falls": _agent(lambda obs: jnp.zeros(obs.shape[0], jnp.int32)),  # ~10-step episodes
    "leans": _agent(lambda obs: (obs[:, 2] + obs[:, 3] > 0).astype(jnp.int32)),  # balances
    "recurrent": _agent(lambda obs: (obs[:, 2] > 0).astype(jnp.int32), recurrent=True),
}


@pytest.mark.parametrize("name", sorted(CARTPOLE_AGENTS))
def test_early_exit_equals_the_full_scan_and_stops_at_the_last_episode_end(name):
    agent, env, n = CARTPOLE_AGENTS[name], E.make("cartpole"), 6
    calls = []

    def counted(state, obs, key, explore=True, **kw):
        jax.debug.callback(lambda: calls.append(1))
        return agent.act(state, obs, key, explore, **kw)

    counting = agent._replace(act=counted)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)  # two seeds: vmapped, as in a run
    mean, std = jax.jit(jax.vmap(lambda k: loops.evaluate(counting, None, env, k, n)))(keys)
    want_mean, want_std, lengths = jax.jit(jax.vmap(lambda k: _full_scan(agent, env, k, n)))(keys)
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(std, want_std)
    # The while loop ran until the last of all episodes ended (a vmapped loop runs until
    # every seed's is done); the callback takes no batched argument: one call a step.
    assert len(calls) == int(np.max(lengths))
    if name == "falls":
        assert np.max(lengths) < 50 < env.max_episode_steps


def test_a_capped_evaluation_equals_hand_truncated_episodes():
    """Pendulum never terminates: capped at 17 steps, each episode's return is the sum of
    its first 17 rewards, and equals the uncapped evaluation of a 17-step env."""
    agent = _agent(lambda obs: jnp.clip(-2.0 * obs[:, 1:2] - 0.5 * obs[:, 2:3], -2.0, 2.0))
    env, n, cap, key = E.make("pendulum"), 5, 17, jax.random.PRNGKey(7)
    mean, std = jax.jit(lambda k: loops.evaluate(agent, None, env, k, n, max_steps=cap))(key)

    eval_env = VmapWrapper(env, n)
    keys = jax.random.split(key, n + cap)
    state = eval_env.reset_each(keys[:n])
    totals = np.zeros(n, np.float32)
    for t in range(cap):
        state = eval_env.step(state, agent.act(None, state.obs, keys[n + t], False)[0])
        assert not np.asarray(state.done).any()
        totals += np.asarray(state.reward, np.float32)
    np.testing.assert_allclose(mean, totals.mean(), rtol=1e-5)
    np.testing.assert_allclose(std, totals.std(), rtol=1e-4)

    short = E.make("pendulum", episode_length=cap)
    want = jax.jit(lambda k: loops.evaluate(agent, None, short, k, n))(key)
    np.testing.assert_array_equal((mean, std), want)


def test_a_cap_above_the_env_limit_changes_nothing():
    agent, env, key = CARTPOLE_AGENTS["leans"], E.make("cartpole"), jax.random.PRNGKey(0)
    full = jax.jit(lambda k: loops.evaluate(agent, None, env, k, 4))(key)
    capped = jax.jit(lambda k: loops.evaluate(agent, None, env, k, 4, max_steps=10_000))(key)
    np.testing.assert_array_equal(full, capped)
    assert loops.episode_limit(env, 10_000) == 500 and loops.episode_limit(env, 20) == 20


def test_bad_episode_limits_raise_before_compiling():
    with pytest.raises(ValueError, match="eval_max_steps must be positive"):
        loops.episode_limit(E.make("cartpole"), 0)
    with pytest.raises(ValueError, match="episode limit"):
        loops.episode_limit(types.SimpleNamespace(max_episode_steps=None), 100)
    with pytest.raises(ValueError, match="eval_max_steps must be positive"):
        runner.run("ppo", config={"eval_max_steps": 0}, seeds=1, progress=False)


def test_the_summary_says_how_evaluation_was_bounded():
    from jaxrl.runner.outputs import eval_bound

    default = runner.options.prepare(runner.RunOptions("ppo", "cartpole", progress=False))
    assert eval_bound(default) == {
        "eval_episodes": 16,
        "eval_episode_limit": 500,
        "eval_episodes_capped": False,
    }
    opts = runner.RunOptions("sac", "pendulum", config={"eval_max_steps": 50, "num_eval_envs": 3})
    assert eval_bound(runner.options.prepare(opts)) == {
        "eval_episodes": 3,
        "eval_episode_limit": 50,
        "eval_episodes_capped": True,
    }


def test_the_progress_bar_times_each_evaluation_once_over_seeds(monkeypatch):
    from jaxrl.runner import display

    clock = iter([0.0, 1.0, 1.5, 3.0, 3.5, 10.0, 12.0])  # the bar's readings, in order
    monkeypatch.setattr(display.time, "perf_counter", lambda: next(clock))
    bar = display.ProgressBar(100)
    assert bar.hooks() == (bar, bar.evaluation)
    assert display.ProgressBar(100, enabled=False).hooks() == (None, None)
    bar(np.asarray(50))  # the bar appears at t = 0
    started = functools.partial(bar.evaluation, finished=False)
    ended = functools.partial(bar.evaluation, finished=True)
    for call in (started, started, ended, ended):  # two seeds: the first start and the
        call(50, 0)  # last end count
    started(100, 0)
    ended(100, 0)
    bar.close()
    assert bar.eval_seconds == pytest.approx((3.5 - 1.0) + (12.0 - 10.0))
