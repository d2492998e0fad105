"""MuZero: the unrolled loss against a NumPy float64 hand computation, the model learning
a known chain MDP, PUCT and Gumbel search in a hand-set model, the training loop under
jit and vmap over seeds (deterministic), bad configs."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import agents, envs, sweep
from jaxrl.agents.planning import muzero as mz
from jaxrl.core import Transition
from jaxrl.envs.core import Box, Discrete

# ---- a NumPy float64 MuZero ----------------------------------------------------------


def np_dense(p: dict, x: np.ndarray) -> np.ndarray:
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def np_mlp(p: dict, x: np.ndarray) -> np.ndarray:
    for name in sorted(p, key=lambda n: int(n.split("_")[1])):
        x = np.maximum(np_dense(p[name], x), 0.0)
    return x


def np_min_max(s: np.ndarray) -> np.ndarray:
    lo, hi = s.min(-1, keepdims=True), s.max(-1, keepdims=True)
    return (s - lo) / np.maximum(hi - lo, 1e-5)


class NumpyMuZero:
    def __init__(self, params, num_actions: int):
        self.p, self.a = params["params"], num_actions

    def represent(self, obs):
        return np_min_max(np_dense(self.p["repr_out"], np_mlp(self.p["repr_torso"], obs)))

    def dynamics(self, s, action):
        x = np.concatenate([s, np.eye(self.a)[action]], -1)
        h = np_mlp(self.p["dyn_torso"], x)
        return np_min_max(np_dense(self.p["dyn_state"], h)), np_dense(self.p["dyn_reward"], h)[0]

    def predict(self, s):
        h = np_mlp(self.p["pred_torso"], s)
        return np_dense(self.p["pred_policy"], h), np_dense(self.p["pred_value"], h)[0]


def np_log_softmax(x):
    z = x - x.max()
    return z - np.log(np.exp(z).sum())


def np_reference(params, batch, K, n, gamma, value_coef, reward_coef, num_actions):
    """Loss and d loss / d (reward, value head biases), one sample and step at a time."""
    net = NumpyMuZero(params, num_actions)
    f = lambda x: np.asarray(x, np.float64)  # noqa: E731
    obs, next_obs, act, rew = (
        f(batch.obs),
        f(batch.next_obs),
        np.asarray(batch.action),
        f(batch.reward),
    )
    term, trunc = np.asarray(batch.terminated), np.asarray(batch.truncated)
    pol, searched = f(batch.extras["search_policy"]), f(batch.extras["searched"])
    B = obs.shape[1]
    loss, d_rbias, d_vbias = 0.0, 0.0, 0.0
    for b in range(B):
        ends = [i for i in range(K + n) if term[i, b] or trunc[i, b]]
        first = ends[0] if ends else None
        s = net.represent(obs[0, b])
        for k in range(K + 1):
            scale = 1.0 if k == 0 else 1.0 / K
            if k > 0:
                s, r = net.dynamics(s, act[k - 1, b])
            logits, v = net.predict(s)
            past = first is not None and first < k
            absorbed = past and term[first, b]
            # value target
            if not past:
                z, m, boot = 0.0, 0, True
                for i in range(n):
                    z += gamma**i * rew[k + i, b]
                    m = i + 1
                    if term[k + i, b] or trunc[k + i, b]:
                        boot = not term[k + i, b]
                        break
                if boot:
                    bs = net.represent(next_obs[k + m - 1, b])
                    z += gamma**m * net.predict(bs)[1]
                loss += value_coef * (v - z) ** 2 / B
                d_vbias += scale * value_coef * 2 * (v - z) / B
                if searched[k, b]:
                    loss += -np.sum(pol[k, b] * np_log_softmax(logits)) / B
            elif absorbed:
                loss += value_coef * v**2 / B
                d_vbias += scale * value_coef * 2 * v / B
            # reward target of the move into state k
            if k > 0:
                before = first is not None and first < k - 1
                if not before or term[first, b]:
                    u = 0.0 if before else rew[k - 1, b]
                    loss += reward_coef * (r - u) ** 2 / B
                    d_rbias += scale * reward_coef * 2 * (r - u) / B
    return loss, d_rbias, d_vbias


def run_batch(key, L, B, obs_dim, num_actions):
    ks = jax.random.split(key, 6)
    obs = jax.random.normal(ks[0], (L, B, obs_dim))
    # b0: no end; b1: terminates at step 0; b2: truncated at step 1; b3: terminates at 2.
    term = np.zeros((L, B), bool)
    trunc = np.zeros((L, B), bool)
    term[0, 1] = term[2, 3] = True
    trunc[1, 2] = True
    searched = np.ones((L, B), np.float32)
    searched[1, 0] = searched[0, 2] = 0.0
    return Transition(
        obs=obs,
        action=jax.random.randint(ks[1], (L, B), 0, num_actions),
        reward=jax.random.normal(ks[2], (L, B)),
        terminated=jnp.asarray(term),
        truncated=jnp.asarray(trunc),
        next_obs=jax.random.normal(ks[3], (L, B, obs_dim)),
        extras={
            "search_policy": jax.nn.softmax(jax.random.normal(ks[4], (L, B, num_actions))),
            "searched": jnp.asarray(searched),
        },
    )


def spec_env(obs_dim: int, num_actions: int) -> SimpleNamespace:
    """What ``make_agent`` reads of an env: its specs."""
    return SimpleNamespace(observation_spec=Box((obs_dim,)), action_spec=Discrete(num_actions))


def test_unrolled_loss_matches_numpy_float64_hand_computation():
    K, n, B, obs_dim, A = 3, 2, 4, 3, 2
    config = mz.Config(hidden=(5,), embed_size=4, unroll_steps=K, td_steps=n)
    gamma, vc, rc = 0.9, 0.25, 1.5
    agent = mz.make_agent(config, spec_env(obs_dim, A), mz.HParams())
    params = agent.init(jax.random.key(0)).params
    batch = run_batch(jax.random.key(1), K + n, B, obs_dim, A)
    model = mz.net_model(mz.MuZeroNet(A, (5,), 4))

    def loss(p):
        return mz.muzero_loss(config, model, p, batch, gamma, vc, rc)[0]

    got, grads = jax.jit(jax.value_and_grad(loss))(params)
    want, d_r, d_v = np_reference(params, batch, K, n, gamma, vc, rc, A)
    np.testing.assert_allclose(float(got), want, rtol=2e-5)
    # The 1/K scale of the steps k >= 1: the head biases' gradients.
    g = grads["params"]
    np.testing.assert_allclose(float(g["dyn_reward"]["bias"][0]), d_r, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(g["pred_value"]["bias"][0]), d_v, rtol=1e-4, atol=1e-6)


def test_scale_gradient_and_value_transform():
    x = jnp.array([-2.0, 0.5, 3.0])
    y, grad = jax.value_and_grad(lambda x: jnp.sum(mz.scale_gradient(x, 0.5) ** 2))(x)
    assert float(y) == pytest.approx(float(jnp.sum(x**2)))
    np.testing.assert_allclose(np.asarray(grad), 0.5 * 2 * np.asarray(x), rtol=1e-6)
    assert float(mz.h_transform(jnp.float32(3.0))) == pytest.approx(1.003, rel=1e-6)
    xs = jnp.linspace(-300.0, 300.0, 101)
    np.testing.assert_allclose(np.asarray(mz.h_inverse(mz.h_transform(xs))), xs, atol=1e-2)
    s = mz.min_max(jnp.array([[1.0, 3.0, 2.0]]))
    np.testing.assert_allclose(np.asarray(s), [[0.0, 1.0, 0.5]])


# ---- the model learns a known MDP -----------------------------------------------------


def chain_runs(rng: np.random.Generator, L: int, B: int) -> Transition:
    """A 4-state chain: 0 left, 1 right; 2 --right--> 3 pays 1 and terminates (then a new
    episode starts in a random state 0..2); every other move pays 0."""
    obs = np.zeros((L, B, 4), np.float32)
    nxt = np.zeros((L, B, 4), np.float32)
    act = rng.integers(0, 2, (L, B))
    rew = np.zeros((L, B), np.float32)
    term = np.zeros((L, B), bool)
    for b in range(B):
        s = rng.integers(0, 3)
        for t in range(L):
            obs[t, b, s] = 1.0
            s2 = min(s + 1, 3) if act[t, b] == 1 else max(s - 1, 0)
            nxt[t, b, s2] = 1.0
            if s2 == 3:
                rew[t, b], term[t, b] = 1.0, True
                s2 = rng.integers(0, 3)
            s = s2
    zeros = np.zeros((L, B), np.float32)
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(act, jnp.int32),
        reward=jnp.asarray(rew),
        terminated=jnp.asarray(term),
        truncated=jnp.asarray(term & False),
        next_obs=jnp.asarray(nxt),
        extras={"search_policy": jnp.full((L, B, 2), 0.5), "searched": jnp.asarray(zeros)},
    )


def test_dynamics_learns_a_chain_mdp():
    config = mz.Config(hidden=(32,), embed_size=8, unroll_steps=3, td_steps=2)
    agent = mz.make_agent(config, spec_env(4, 2), mz.HParams(lr=3e-3, gamma=0.9))
    state = agent.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    batches = [chain_runs(rng, 5, 64) for _ in range(4)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *batches)

    @jax.jit
    def train(state):
        def body(state, i):
            batch = jax.tree.map(lambda x: x[i % 4], stacked)
            return agent.update(state, batch, jax.random.key(0))

        return jax.lax.scan(body, state, jnp.arange(600))

    state, metrics = train(state)
    assert float(metrics["reward_loss"][-1]) < 0.2 * float(metrics["reward_loss"][0])
    model = mz.net_model(mz.MuZeroNet(2, (32,), 8))
    p = state.params
    s = model.represent(p, jnp.eye(4)[:3])  # states 0, 1, 2
    right = jnp.ones((3,), jnp.int32)
    _, r = model.dynamics(p, s, right)
    np.testing.assert_allclose(np.asarray(r), [0.0, 0.0, 1.0], atol=0.1)
    # Two moves right from state 1 (the second through the learned next state) pays 1.
    s2, r1 = model.dynamics(p, s, right)
    _, r2 = model.dynamics(p, s2, right)
    assert abs(float(r1[1])) < 0.1 and abs(float(r2[1]) - 1.0) < 0.15
    _, left = model.dynamics(p, s, jnp.zeros((3,), jnp.int32))
    np.testing.assert_allclose(np.asarray(left), 0.0, atol=0.1)


# ---- search in a hand-set model -------------------------------------------------------

# States: 0 start, 1 middle, 2 done, 3 trap (2 and 3 absorbing). Actions: 0 forward,
# 1 grab (into the trap, paying ``grab`` now), 2 wait. Forward then forward pays 1 at
# depth 2 (0.9 discounted); from 1 forward pays 1 now.
NEXT = np.array([[1, 3, 0], [2, 3, 1], [2, 2, 2], [3, 3, 3]])


def hand_model(grab: float) -> mz.Model:
    nxt = jnp.asarray(NEXT)
    reward = jnp.zeros((4, 3)).at[1, 0].set(1.0).at[:2, 1].set(grab)

    def dynamics(params, s, a):
        i = jnp.argmax(s, -1)
        return jax.nn.one_hot(nxt[i, a], 4), reward[i, a]

    def predict(params, s):  # a flat prior and a zero value: only search can tell
        return jnp.zeros(s.shape[:-1] + (3,)), jnp.zeros(s.shape[:-1])

    return mz.Model(lambda params, obs: obs, dynamics, predict)


# PUCT runs without the +0.1 grab: its sibling min-max Q normalisation makes any first
# positive reward the best sibling, and from some tie-breaks it kept grabbing at 100-200
# simulations; Gumbel's sequential halving finds the deferred reward despite it.
@pytest.mark.parametrize("search, sims, grab", [("puct", 64, 0.0), ("gumbel", 32, 0.1)])
def test_puct_and_gumbel_search_find_the_rewarding_move(search, sims, grab):
    config = mz.Config(search=search, num_simulations=sims, max_considered=3)
    obs = jnp.eye(4)[jnp.array([0, 1, 0, 1, 0, 0])]

    def plan(config, key):
        return mz.plan(config, hand_model(grab), None, key, obs, 0.9, explore=False)

    action, info = jax.jit(lambda key: plan(config, key))(jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(action), 0)
    np.testing.assert_allclose(np.asarray(info["search_policy"].sum(-1)), 1.0, rtol=1e-5)
    # The root values back up the deferred reward (at most 0.9 and 1).
    value = np.asarray(info["search_value"])
    assert np.all(value[[0, 2, 4, 5]] > 0.3) and np.all(value[[1, 3]] > 0.7), value
    assert np.all(value[[0, 2, 4, 5]] <= 0.9 + 1e-5) and np.all(value <= 1.0 + 1e-5), value
    if search == "gumbel":  # one simulation per action looks one move ahead: it grabs
        greedy = plan(dataclasses.replace(config, num_simulations=3), jax.random.key(0))[0]
        np.testing.assert_array_equal(np.asarray(greedy), [1, 0, 1, 0, 1, 1])


# ---- the training loop ----------------------------------------------------------------

TINY = {
    "total_steps": 192,
    "num_envs": 4,
    "batch_size": 8,
    "buffer_size": 192,
    "warmup_steps": 32,
    "hidden": (16,),
    "embed_size": 8,
    "unroll_steps": 2,
    "td_steps": 2,
    "num_simulations": 4,
    "max_considered": 4,
    "num_evals": 1,
    "num_eval_envs": 4,
}


def test_agent_under_jit_and_vmap_over_seeds_is_deterministic():
    config = mz.Config(hidden=(16,), embed_size=8, unroll_steps=3, td_steps=2)
    agent = mz.make_agent(config, spec_env(4, 2), mz.HParams())
    batch = chain_runs(np.random.default_rng(1), 5, 8)
    obs = batch.obs[0]

    @jax.jit
    @jax.vmap
    def init_act_update(key):
        k1, k2, k3 = jax.random.split(key, 3)
        state = agent.init(k1)
        action, info = agent.act(state, obs, k2, True)  # observations only: no env_state
        state, metrics = agent.update(state, batch, k3)
        return action, info, state, metrics

    keys = sweep.seed_keys(0, 2)
    out = init_act_update(keys)
    again = init_act_update(keys)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    action, info, state, metrics = out
    assert action.shape == (2, 8) and action.dtype == jnp.int32
    np.testing.assert_allclose(np.asarray(info["search_policy"].sum(-1)), 1.0, rtol=1e-5)
    assert np.all(np.asarray(state.step) == 1)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in metrics.values())
    p0, p1 = (jax.tree.map(lambda x, i=i: x[i], state.params) for i in (0, 1))
    assert any(  # the seeds differ
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(p0), jax.tree.leaves(p1), strict=True)
    )


@pytest.mark.slow  # ~45 s of compiles on 2 cores
def test_training_under_jit_and_vmap_over_seeds_is_deterministic():
    spec = agents.get("muzero")
    env = envs.make("assist/build-3x3")
    config = spec.make_config(**TINY)
    train = jax.jit(sweep.over_seeds(spec.make_train(config, env), 2))
    keys = sweep.seed_keys(0, 2)
    hp = spec.default_hparams()
    states, metrics = train(keys, hp)
    again = train(keys, hp)[0]
    for a, b in zip(jax.tree.leaves(states), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.all(np.asarray(states.step) > 0)  # updates ran
    for name in ("value_loss", "reward_loss", "policy_loss"):
        assert bool(jnp.all(jnp.isfinite(metrics[name]))), name
    # act reads observations only: with or without the simulator's state, the same.
    agent = spec.make_agent(config, env, hp)
    state0 = jax.tree.map(lambda x: x[0], states)
    env_state = envs.VmapWrapper(env, 3).reset(jax.random.key(5))
    k = jax.random.key(6)
    act = jax.jit(lambda s, o, e: agent.act(s, o, k, True, env_state=e)[0])
    with_sim, without = act(state0, env_state.obs, env_state), act(state0, env_state.obs, None)
    np.testing.assert_array_equal(np.asarray(with_sim), np.asarray(without))


def test_bad_configs_rejected():
    spec = agents.get("muzero")
    env = envs.make("assist/build-3x3")
    for field, value, match in [
        ("value_transform", "log", "value_transform"),
        ("search", "beam", "search"),
        ("unroll_steps", 0, "unroll_steps"),
        ("td_steps", 0, "td_steps"),
        ("embed_size", 0, "embed_size"),
        ("buffer_size", 16, "buffer_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            spec.validate(spec.make_config(**{field: value}), env)
    with pytest.raises(ValueError, match="discrete"):
        spec.validate(spec.make_config(), envs.make("pendulum"))
    with pytest.raises(ValueError, match="reward_coef"):
        spec.default_hparams(reward_coef=-1.0)
