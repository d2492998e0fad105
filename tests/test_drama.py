"""Drama: DFS sampling, sequence replay, symlog two-hot, world-model training, imagination,
the model-based loop and config validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents.model_based import drama
from jaxrl.cli import main
from jaxrl.data import sequences as replay_dfs
from jaxrl.data.sequences import SequenceBatch
from jaxrl.models.world_model import (
    WorldModel,
    WorldModelConfig,
    symexp,
    symlog,
    twohot,
    twohot_bins,
    twohot_loss,
    world_model_loss,
)
from jaxrl.transforms.world_model import Imagined, imagine

TINY = dict(
    stoch=4,
    classes=4,
    d_model=32,
    head_dim=16,
    chunk_size=8,
    hidden=64,
    ac_hidden=64,
    num_bins=31,
    wm_batch=4,
    wm_seq_len=8,
    img_batch=8,
    context_len=4,
    horizon=5,
)


def _counts_buffer():
    """One env, capacity 5, 4 steps stored; hand-picked counters."""
    example = {"x": jnp.zeros((1,), jnp.float32)}
    buf = replay_dfs.sequence_replay_init(example, 5)
    buf = replay_dfs.sequence_replay_add(buf, {"x": jnp.arange(4.0)[:, None]})
    wm = jnp.array([[0.0], [2.0], [5.0], [1.0], [0.0]])
    img = jnp.array([[0.0], [4.0], [1.0], [3.0], [0.0]])
    return buf.replace(wm_counts=wm, img_counts=img)


def test_dfs_probabilities_match_hand_computed_case():
    buf = _counts_buffer()
    valid = replay_dfs.valid_starts(buf, 1)  # starts 0..3 stored, 4 not yet
    assert valid[:, 0].tolist() == [True, True, True, True, False]
    # World model: p_i ~ exp(-c_i / 10) over c = 0, 2, 5, 1.
    w = [1.0, math.exp(-0.2), math.exp(-0.5), math.exp(-0.1)]
    expected = [x / sum(w) for x in w] + [0.0]
    p = jax.nn.softmax(replay_dfs.wm_logits(buf.wm_counts, valid, 10.0).reshape(-1))
    np.testing.assert_allclose(p, expected, atol=1e-6)
    np.testing.assert_allclose(p[:4], [0.3003, 0.2459, 0.1821, 0.2717], atol=1e-4)
    # Imagination, the official form (replay_buffer.py of github.com/realwenlongwang/Drama,
    # Alpha = Beta = 1): imagination counts divided by the batch ratio img_batch / wm_batch,
    # score = c - a c' - b max(0, c - c'), softmax(score / tau). Here the ratio is 8 / 4 = 2.
    sampler = replay_dfs.DFSSampler(wm_batch=4, wm_seq_len=1, img_batch=8, context_len=1)
    assert sampler.batch_ratio == 2.0
    c, c_img = np.array([0.0, 2.0, 5.0, 1.0]), np.array([0.0, 4.0, 1.0, 3.0])
    c_scaled = c_img / 2.0  # 0, 2, 0.5, 1.5
    score = c - 1.0 * c_scaled - 1.0 * np.maximum(0.0, c - c_scaled)  # 0, 0, 0, -0.5
    np.testing.assert_allclose(score, [0.0, 0.0, 0.0, -0.5])
    expected = np.exp(score / 10.0) / np.exp(score / 10.0).sum()
    logits = replay_dfs.imagination_logits(
        buf.wm_counts, buf.img_counts, valid, 10.0, batch_ratio=sampler.batch_ratio
    )
    np.testing.assert_allclose(jax.nn.softmax(logits.reshape(-1)), [*expected, 0.0], atol=1e-6)
    # Without DFS: uniform over the stored starts.
    uniform = replay_dfs.wm_logits(buf.wm_counts, valid, 10.0, dfs=False)
    np.testing.assert_allclose(jax.nn.softmax(uniform.reshape(-1)), [0.25] * 4 + [0], atol=1e-6)


def test_dfs_sampling_frequencies_and_counts():
    buf = _counts_buffer()
    logits = replay_dfs.wm_logits(buf.wm_counts, replay_dfs.valid_starts(buf, 1), 10.0)
    p = np.asarray(jax.nn.softmax(logits.reshape(-1)))
    seqs, starts = jax.jit(replay_dfs.sample_sequences, static_argnums=(3, 4, 5))(
        buf, jax.random.PRNGKey(0), logits, 20_000, 1, True
    )
    freq = np.bincount(np.asarray(starts), minlength=5) / 20_000
    np.testing.assert_allclose(freq, p, atol=0.015)
    np.testing.assert_array_equal(seqs["x"][:, 0], starts.astype(jnp.float32))
    # Without replacement, one draw is still a draw from softmax(logits) (Gumbel top-1).
    one = jax.vmap(lambda k: replay_dfs.draw_starts(k, logits.reshape(-1), 1)[0])
    freq = np.bincount(np.asarray(one(jax.random.split(jax.random.PRNGKey(1), 20_000))), None, 5)
    np.testing.assert_allclose(freq / 20_000, p, atol=0.015)
    counts = replay_dfs.count_draws(jnp.zeros((3, 2)), jnp.array([0, 5, 5, 2]))
    np.testing.assert_array_equal(counts, [[1, 0], [1, 0], [0, 2]])


def test_dfs_draws_are_without_replacement():
    """Distinct starts per draw (official: multinomial without replacement); only when
    fewer starts are stored than the batch do the extra draws repeat stored starts."""
    logits = jnp.where(jnp.arange(50) < 40, -jnp.arange(50) / 10.0, -jnp.inf)
    for seed in range(5):
        starts = np.asarray(replay_dfs.draw_starts(jax.random.PRNGKey(seed), logits, 16))
        assert len(set(starts.tolist())) == 16 and starts.max() < 40
    starts = np.asarray(replay_dfs.draw_starts(jax.random.PRNGKey(0), logits, 48))
    assert set(starts.tolist()) == set(range(40)) and starts.max() < 40  # all 40, then 8 more
    starts = np.asarray(replay_dfs.draw_starts(jax.random.PRNGKey(0), logits[:10], 12))
    assert set(starts.tolist()) == set(range(10))  # a batch larger than the buffer
    # The sampler's draws: 4 distinct world-model starts of the 4 stored, each counted once.
    sampler = replay_dfs.DFSSampler(wm_batch=4, wm_seq_len=1, img_batch=4, context_len=1)
    before = _counts_buffer()
    _, after = sampler.sample(before, jax.random.split(jax.random.PRNGKey(3), 2))
    np.testing.assert_array_equal(after.wm_counts - before.wm_counts, [[1], [1], [1], [1], [0]])
    np.testing.assert_array_equal(after.img_counts - before.img_counts, [[1], [1], [1], [1], [0]])


def test_sequence_replay_keeps_each_env_stream_in_order():
    example = {"obs": jnp.zeros((3, 2)), "action": jnp.zeros((3,), jnp.int32)}
    buf = replay_dfs.sequence_replay_init(example, 10)
    for block in range(3):  # three blocks of 2 steps from 3 envs: value = 10 * t + env
        t = 2 * block + jnp.arange(2)[:, None]
        value = 10 * t + jnp.arange(3)[None, :]
        buf = replay_dfs.sequence_replay_add(
            buf, {"obs": jnp.repeat(value[..., None], 2, -1).astype(jnp.float32), "action": value}
        )
    assert int(buf.size) == 6
    valid = replay_dfs.valid_starts(buf, 4)
    assert valid.sum() == 3 * 3  # starts t = 0, 1, 2 in each of 3 envs
    logits = replay_dfs.wm_logits(buf.wm_counts, valid, 10.0, dfs=False)
    seqs, starts = replay_dfs.sample_sequences(buf, jax.random.PRNGKey(1), logits, 64, 4)
    a = np.asarray(seqs["action"])
    assert a.shape == (64, 4) and seqs["obs"].shape == (64, 4, 2)
    np.testing.assert_array_equal(np.diff(a, axis=1), 10)  # consecutive steps of one env
    np.testing.assert_array_equal(a[:, 0] % 10, np.asarray(starts) % 3)  # env of the start
    assert a.max() < 60  # never reads unwritten steps


def test_symlog_twohot_against_numpy():
    x = np.array([-50.0, -1.5, 0.0, 0.3, 7.0, 1e5])
    np.testing.assert_allclose(symlog(x), np.sign(x) * np.log1p(np.abs(x)), rtol=1e-6)
    np.testing.assert_allclose(symexp(symlog(x)), x, rtol=1e-5)
    bins = twohot_bins(41, -5.0, 5.0)  # spacing 0.25
    y = np.array([-6.0, -0.3, 0.0, 1.1, 4.99])
    enc = np.asarray(twohot(jnp.asarray(y), bins))
    assert np.allclose(enc.sum(-1), 1.0) and ((enc > 0).sum(-1) <= 2).all()
    np.testing.assert_allclose(enc @ np.asarray(bins), np.clip(y, -5, 5), atol=1e-5)
    # -0.3 lies 0.8 of the way from bin -0.5 (index 18) to bin -0.25 (index 19)
    np.testing.assert_allclose(enc[1, 18:20], [0.2, 0.8], atol=1e-5)
    logits = jax.random.normal(jax.random.PRNGKey(0), (5, 41))
    target = np.asarray(twohot(symlog(jnp.asarray(y)), bins))
    ref = -(target * np.asarray(jax.nn.log_softmax(logits))).sum(-1)
    np.testing.assert_allclose(twohot_loss(logits, jnp.asarray(y), bins), ref, rtol=1e-5)


def _toy_sequences(key, batch, length):
    """A ball bouncing on 8 cells: one-hot obs [8], reward 1 at the right wall."""
    start = jax.random.randint(key, (batch,), 0, 8)
    t = jnp.arange(length)
    pos = jnp.abs((start[:, None] + t[None]) % 14 - 7)  # 0..7..0
    obs = jax.nn.one_hot(pos, 8)
    return {
        "obs": obs,
        "action": jnp.zeros((batch, length), jnp.int32),
        "reward": (pos == 6).astype(jnp.float32),
        "terminated": jnp.zeros((batch, length), jnp.bool_),
    }


def test_world_model_losses_fall_on_a_fixed_dataset():
    import optax

    cfg = WorldModelConfig(
        stoch=4, classes=4, d_model=32, head_dim=16, chunk_size=8, hidden=64, num_bins=31
    )
    model = WorldModel(cfg, (8,), 2)
    data = _toy_sequences(jax.random.PRNGKey(0), 16, 12)
    params = model.init(jax.random.PRNGKey(1), data["obs"][:1, :2], data["action"][:1, :2])
    tx = optax.adam(3e-3)

    @jax.jit
    def train(params):
        def step(carry, key):
            params, opt = carry
            grads, info = jax.grad(lambda p: world_model_loss(model, p, data, key), has_aux=True)(
                params
            )
            updates, opt = tx.update(grads, opt)
            return (optax.apply_updates(params, updates), opt), info

        keys = jax.random.split(jax.random.PRNGKey(2), 150)
        return jax.lax.scan(step, (params, tx.init(params)), keys)[1]

    info = jax.tree.map(np.asarray, train(params))
    first, last = (jax.tree.map(lambda v, i=i: v[i], info) for i in (0, -1))
    assert np.all(np.isfinite(info["wm_loss"]))
    assert last["recon_loss"] < 0.3 * first["recon_loss"]
    assert last["reward_loss"] < 0.3 * first["reward_loss"]
    assert last["wm_loss"] < 0.5 * first["wm_loss"]


def _tiny_agent(env_name="cartpole", **overrides):
    env = envs.make(env_name)
    config = drama.Config(**(TINY | overrides))
    return env, config, drama.make_agent(config, env, drama.SPEC.default_hparams())


def _fake_batch(env, batch, length):
    obs = jax.random.normal(jax.random.PRNGKey(0), (batch, length, *env.observation_spec.shape))
    return {
        "obs": obs,
        "action": jnp.zeros((batch, length), jnp.int32),
        "reward": jnp.ones((batch, length)),
        "terminated": jnp.zeros((batch, length), jnp.bool_),
    }


def test_imagination_shapes_and_update_determinism():
    env, config, agent = _tiny_agent()
    state = agent.init(jax.random.PRNGKey(0))
    wm_batch = _fake_batch(env, config.wm_batch, config.wm_seq_len)
    contexts = _fake_batch(env, config.img_batch, config.context_len)
    feat_dim = config.stoch * config.classes + config.d_model

    @jax.jit
    def run(state, key):
        behaviour = drama.imagination_actor_critic(config, 2, drama.SPEC.default_hparams())
        policy = lambda feat, k: behaviour.act(state.inner, feat, k, True)[0]
        model = drama.world_model(config, env)
        rollout = imagine(model, state.wm_params, policy, contexts, config.horizon, key)
        new, metrics = agent.update(state, SequenceBatch(wm_batch, contexts), key)
        return rollout, new, metrics

    rollout, new, metrics = run(state, jax.random.PRNGKey(1))
    h = config.horizon
    assert rollout.feat.shape == (h + 1, config.img_batch, feat_dim)
    assert rollout.action.shape == (h, config.img_batch)
    assert rollout.action.dtype == jnp.int32
    assert rollout.reward.shape == rollout.terminated.shape == (h, config.img_batch)
    assert rollout.terminated.dtype == jnp.bool_
    assert int(rollout.action.min()) >= 0 and int(rollout.action.max()) < 2
    assert all(np.isfinite(v) for v in jax.tree.leaves(metrics))
    assert int(new.step) == 1
    again = run(state, jax.random.PRNGKey(1))[1]
    pairs = zip(jax.tree.leaves(new), jax.tree.leaves(again), strict=True)
    assert all(bool(jnp.all(a == b)) for a, b in pairs)


def test_discount_weights_and_percentile_range():
    terms = jnp.array([[False, True], [True, False], [False, False]])
    np.testing.assert_array_equal(drama.discount_weights(terms), [[1, 1], [1, 0], [0, 0]])
    x = jnp.arange(101.0)
    assert float(drama.percentile_range(x)) == pytest.approx(90.0)


def test_acting_belief_is_the_last_steps_rerun_from_a_zero_state():
    """As the official train.py: a window of the last RealityContextLength (obs, action)
    pairs; the features are the window rerun from a zero state (posterior samples,
    parallel form), h at the last filled step and a sample of the prior it predicts."""
    from jaxrl.transforms import world_model as twm

    env, config, agent = _tiny_agent(context_window=6)
    state = agent.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (9, 2, 4))  # [steps, envs, obs]
    actions = jnp.arange(18).reshape(9, 2) % 2
    carry = agent.initial_carry(2)
    observe = jax.jit(agent.observe)
    for t in range(9):
        carry = observe(state, carry, obs[t], actions[t], {})
        if t == 2:
            early = carry
    assert early.length.tolist() == [3, 3] and carry.length.tolist() == [6, 6]
    np.testing.assert_array_equal(early.obs[:, :3], jnp.moveaxis(obs[:3], 0, 1))
    np.testing.assert_array_equal(early.obs[:, 3:], 0.0)
    np.testing.assert_array_equal(carry.obs, jnp.moveaxis(obs[3:], 0, 1))  # the last 6
    np.testing.assert_array_equal(carry.action, actions[3:].T)
    model = drama.world_model(config, env)
    key = jax.random.PRNGKey(2)
    for ctx, n in ((early, 3), (carry, 6)):
        feat, h = twm.context_features(model, state.wm_params, ctx, key)
        post = model.apply(state.wm_params, ctx.obs, method=WorldModel.encode)
        z = twm.sample_latent(jax.random.split(key)[0], post)[:, :n]
        h_ref, _ = model.apply(state.wm_params, z, ctx.action[:, :n], method=WorldModel.sequence)
        np.testing.assert_allclose(h, h_ref[:, -1], atol=1e-5)
        np.testing.assert_allclose(feat[:, -config.d_model :], h)
        assert feat.shape == (2, config.world_model.feat_dim)
    # An episode's first step (empty window) plays a uniformly random action.
    first = agent.initial_carry(256)
    obs0 = jnp.zeros((256, 4))
    a0 = agent.act(state, obs0, jax.random.PRNGKey(3), False, carry=first)[0]
    assert 0.35 < float(jnp.mean(a0)) < 0.65


def _official_train_yaml():
    """Values of config_files/train.yaml in github.com/realwenlongwang/Drama (the official
    Drama code), copied by hand for this comparison."""
    return {
        "JointTrainAgent.SampleMaxSteps": 105000,
        "JointTrainAgent.FreezeWorldModelAfterSteps": 100000,
        "JointTrainAgent.WorldModelWarmUp": 1032,
        "JointTrainAgent.NumEnvs": 1,
        "JointTrainAgent.BatchSize": 16,
        "JointTrainAgent.BatchLength": 128,
        "JointTrainAgent.ImagineBatchSize": 1024,
        "JointTrainAgent.ImagineContextLength": 8,
        "JointTrainAgent.ImagineBatchLength": 16,
        "JointTrainAgent.RealityContextLength": 16,
        "JointTrainAgent.TrainDynamicsEverySteps": 1,
        "JointTrainAgent.TrainDynamicsEpoch": 1,
        "JointTrainAgent.TrainAgentEverySteps": 1,
        "JointTrainAgent.Tau": 10,
        "JointTrainAgent.ImaginationTau": 10,
        "Models.WorldModel.CategoricalDim": 32,
        "Models.WorldModel.ClassDim": 32,
        "Models.WorldModel.HiddenStateDim": 512,
        "Models.WorldModel.Mamba.n_layer": 2,
        "Models.WorldModel.Mamba.ssm_cfg.d_state": 16,
        "Models.WorldModel.Encoder.Depth": 16,
        "Models.WorldModel.Encoder.Mults": [1, 2, 3, 4, 4],
        "Models.WorldModel.Encoder.Kernel": 5,
        "Models.WorldModel.Decoder.FirstStrideOne": True,
        "Models.WorldModel.Reward.HiddenUnits": 256,
        "Models.WorldModel.Reward.LayerNum": 1,
        "Models.WorldModel.Laprop.LearningRate": 4.0e-5,
        "Models.Agent.Unimix_ratio": 0,
        "Models.Agent.AC.NumLayers": 3,
        "Models.Agent.AC.Gamma": 0.985,
        "Models.Agent.AC.Lambda": 0.95,
        "Models.Agent.AC.EntropyCoef": 3.0e-4,
        "Models.Agent.AC.Laprop.LearningRate": 4.0e-5,
        "Models.Agent.AC.Actor.HiddenUnits": 256,
        "Models.Agent.AC.Critic.HiddenUnits": 512,
    }


def test_paper_config_equals_the_official_train_yaml():
    y = _official_train_yaml()
    c, hp = drama.paper_config(), drama.paper_hparams()
    ja = "JointTrainAgent."
    wm, ac = "Models.WorldModel.", "Models.Agent.AC."
    assert c.total_steps == y[ja + "FreezeWorldModelAfterSteps"]  # no training after 100k
    assert c.warmup_steps == y[ja + "WorldModelWarmUp"]
    assert c.num_envs == y[ja + "NumEnvs"]
    assert c.wm_batch == y[ja + "BatchSize"] and c.wm_seq_len == y[ja + "BatchLength"]
    assert c.img_batch == y[ja + "ImagineBatchSize"]
    assert c.context_len == y[ja + "ImagineContextLength"]
    assert c.horizon == y[ja + "ImagineBatchLength"]
    assert c.context_window == y[ja + "RealityContextLength"]
    # one world-model and one actor-critic update per env step (an update does both)
    assert c.train_every == y[ja + "TrainDynamicsEverySteps"] == y[ja + "TrainAgentEverySteps"]
    assert c.updates_per_iter == y[ja + "TrainDynamicsEpoch"]
    assert c.dfs and c.dfs_temperature == y[ja + "Tau"] == y[ja + "ImaginationTau"]
    assert (c.stoch, c.classes) == (y[wm + "CategoricalDim"], y[wm + "ClassDim"])
    assert c.d_model == y[wm + "HiddenStateDim"] and c.sequence_model == "mamba"
    assert c.num_layers == y[wm + "Mamba.n_layer"]
    assert c.d_state == y[wm + "Mamba.ssm_cfg.d_state"]
    depth = y[wm + "Encoder.Depth"]
    assert c.channels == tuple(depth * m for m in y[wm + "Encoder.Mults"])
    assert c.kernel == y[wm + "Encoder.Kernel"] and c.encoder == "cnn"
    assert c.first_stride_one == y[wm + "Decoder.FirstStrideOne"]
    assert (c.hidden, c.mlp_layers) == (y[wm + "Reward.HiddenUnits"], y[wm + "Reward.LayerNum"])
    assert c.ac_layers == y[ac + "NumLayers"]
    assert c.ac_hidden == y[ac + "Actor.HiddenUnits"]
    assert c.critic_hidden == y[ac + "Critic.HiddenUnits"]
    np.testing.assert_allclose(float(hp.wm_lr), y[wm + "Laprop.LearningRate"], rtol=1e-6)
    np.testing.assert_allclose(float(hp.actor_lr), y[ac + "Laprop.LearningRate"], rtol=1e-6)
    np.testing.assert_allclose(float(hp.critic_lr), y[ac + "Laprop.LearningRate"], rtol=1e-6)
    np.testing.assert_allclose(float(hp.gamma), y[ac + "Gamma"], rtol=1e-6)
    np.testing.assert_allclose(float(hp.lam), y[ac + "Lambda"], rtol=1e-6)
    np.testing.assert_allclose(float(hp.ent_coef), y[ac + "EntropyCoef"], rtol=1e-6)
    assert float(hp.actor_unimix) == y["Models.Agent.Unimix_ratio"]


def test_paper_config_is_about_seven_million_parameters():
    """About the paper's 7M world-model parameters on Atari's 64x64x3 frames."""
    import types

    atari = types.SimpleNamespace(
        observation_spec=types.SimpleNamespace(shape=(64, 64, 3)),
        action_spec=types.SimpleNamespace(num_actions=6),
    )
    n = drama.world_model_param_count(drama.paper_config(), atari)
    assert 6_000_000 < n < 9_000_000, n
    env = envs.make("minatar/breakout")
    assert drama.world_model_param_count(drama.Config(), env) < 1_000_000


def test_actor_head_starts_small_and_random():
    """Official layer_init(std=0.001): orthogonal weights of gain 0.001, zero bias."""
    config = drama.Config(**TINY)
    behaviour = drama.imagination_actor_critic(config, 3, drama.SPEC.default_hparams())
    state = behaviour.init(jax.random.PRNGKey(0))
    head = state.params["actor"]["params"]["Dense_0"]
    w = np.asarray(head["kernel"])  # [hidden, actions]
    np.testing.assert_allclose(w.T @ w, 1e-6 * np.eye(3), atol=1e-10)  # orthogonal, gain 1e-3
    np.testing.assert_array_equal(head["bias"], 0.0)
    feat = jax.random.normal(jax.random.PRNGKey(1), (64, config.world_model.feat_dim))
    logits = drama.Actor(3, config.ac_hidden, config.ac_layers).apply(state.params["actor"], feat)
    assert 0 < float(jnp.std(logits)) < 0.01
    greedy = np.asarray(jnp.argmax(logits, -1))
    assert len(set(greedy.tolist())) > 1  # a fresh policy does not repeat one action


def test_one_actor_update_raises_the_logit_of_the_rewarded_action():
    """Regression: imagined rollouts where action 1 always earns +1 and action 0 nothing;
    one actor-critic update moves logit(1) - logit(0) up (on average, and on most states)."""
    config = drama.Config(**TINY)
    hparams = drama.SPEC.default_hparams()
    behaviour = drama.imagination_actor_critic(config, 2, hparams)
    state = behaviour.init(jax.random.PRNGKey(0))
    h, b, f = config.horizon, config.img_batch, config.world_model.feat_dim
    feat = jax.random.normal(jax.random.PRNGKey(1), (h + 1, b, f))
    action = jax.random.bernoulli(jax.random.PRNGKey(2), 0.5, (h, b)).astype(jnp.int32)
    rollout = Imagined(feat, action, action.astype(jnp.float32), jnp.zeros((h, b), jnp.bool_))
    actor = drama.Actor(2, config.ac_hidden, config.ac_layers)

    def gap(params):
        logits = actor.apply(params, feat)
        return np.asarray(logits[..., 1] - logits[..., 0])

    before = gap(state.params["actor"])
    new, info = jax.jit(behaviour.update)(state, rollout, jax.random.PRNGKey(3))
    after = gap(new.params["actor"])
    assert np.mean(after > before) > 0.75, np.mean(after > before)
    assert np.mean(after) > np.mean(before) + 0.005 and np.mean(after) > 0
    assert np.isfinite(float(info["actor_loss"]))


def test_free_bits_clip_the_batch_mean_kl():
    """Official CategoricalKLDivLossWithFreeBits: max(free_bits, mean KL), not the mean of
    per-sample clips. With free bits just above the mean KL, each KL term is exactly
    ``free_bits``; per-sample clipping would give more (the KLs differ across steps)."""
    cfg = WorldModelConfig(
        stoch=4, classes=4, d_model=32, head_dim=16, chunk_size=8, hidden=64, num_bins=31
    )
    model = WorldModel(cfg, (8,), 2)
    data = _toy_sequences(jax.random.PRNGKey(0), 8, 6)
    params = model.init(jax.random.PRNGKey(1), data["obs"][:1, :2], data["action"][:1, :2])
    key = jax.random.PRNGKey(2)
    loss0, info = world_model_loss(model, params, data, key, free_bits=0.0)
    kl = float(info["kl_dyn"])
    np.testing.assert_allclose(kl, float(info["kl_rep"]), rtol=1e-6)
    fb = 1.2 * kl
    loss, _ = world_model_loss(model, params, data, key, free_bits=fb)
    # (1 + 0.1) * (fb - mean KL): both KL terms sit at free_bits.
    np.testing.assert_allclose(float(loss - loss0), 1.1 * (fb - kl), rtol=1e-2)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"head_dim": 7}, "head_dim"),
        ({"encoder": "rnn"}, "encoder"),
        ({"wm_seq_len": 1}, "wm_seq_len"),
        ({"total_steps": 0}, "total_steps"),
        ({"dfs_temperature": 0.0}, "dfs_temperature"),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(override, field):
    with pytest.raises(ValueError, match=field):
        drama.SPEC.validate(drama.Config(**override), envs.make("cartpole"))


def test_continuous_env_is_rejected(capsys):
    with pytest.raises(ValueError, match="discrete"):
        drama.SPEC.make_train(drama.Config(), envs.make("pendulum"))
    assert main(["train", "drama", "--env", "cartpole", "--set", "encoder=rnn"]) == 2
    assert "encoder" in capsys.readouterr().err


@pytest.mark.slow  # ~2-4 minutes on 2 cores (compile included)
def test_drama_learns_cartpole_over_seeds():
    """Two seeds, 8k env steps: clearly above a random policy (~22 on CartPole)."""
    from jaxrl import sweep

    config = drama.Config(
        total_steps=8000,
        train_every=4,
        warmup_steps=500,
        stoch=8,
        classes=8,
        d_model=32,
        head_dim=16,
        chunk_size=16,
        hidden=64,
        ac_hidden=64,
        num_bins=63,
        wm_batch=8,
        wm_seq_len=16,
        img_batch=64,
        context_len=4,
        horizon=10,
        num_evals=4,
        num_eval_envs=8,
    )
    hparams = drama.SPEC.default_hparams(wm_lr=1e-3, actor_lr=1e-3, critic_lr=1e-3)
    train = drama.SPEC.make_train(config, envs.make("cartpole"))
    _, metrics = sweep.over_seeds(train, 2)(sweep.seed_keys(0, 2), hparams)
    final = np.asarray(metrics["eval_return"])[:, -1]
    assert np.all(np.asarray(metrics["finite"]))
    assert final.min() > 60.0, final


@pytest.mark.parametrize("rope", [False, True])
def test_transformer_steps_equal_its_causal_parallel_form(rope):
    from jaxrl.nets.transformer import TransformerStack

    model = TransformerStack(d_model=32, num_layers=2, num_heads=4, window=6, rope=rope)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 10, 32))
    params = model.init(jax.random.PRNGKey(1), x)
    h, cache = model.apply(params, x)
    step = jax.jit(lambda s, xt: model.apply(params, xt, s, method=TransformerStack.step))
    # From an empty cache: equal while the window holds every step so far (t < 6).
    state = model.initial_state(3)
    outs = []
    for t in range(10):
        y, state = step(state, x[:, t])
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, 1)[:, :6], h[:, :6], atol=1e-5)
    assert not np.allclose(np.stack(outs, 1)[:, 6:], h[:, 6:], atol=1e-3)  # window slid
    # The parallel form's cache is the ring buffer (slot = step % window): layer 1's keys
    # see no context, so they equal the last 6 steps' in slots 4, 5, 0, 1, 2, 3.
    np.testing.assert_allclose(cache.keys[0], state.keys[0], atol=1e-5)
    assert cache.pos.tolist() == state.pos.tolist() == [10] * 3
    _, cache6 = model.apply(params, x[:, :6])
    state6 = model.initial_state(3)
    for t in range(6):
        state6 = step(state6, x[:, t])[1]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), cache6, state6)
    # A parallel context of 4 steps, then steps: equal to the parallel form throughout.
    _, state = model.apply(params, x[:, :4])
    outs = []
    for t in range(4, 6):
        y, state = step(state, x[:, t])
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, 1), h[:, 4:6], atol=1e-5)


@pytest.mark.slow  # compiles a whole Drama update (~40 s quiet, 140 s under load)
def test_drama_with_a_transformer_updates_under_jit():
    env = envs.make("cartpole")
    config = drama.Config(**TINY, sequence_model="transformer", num_attention_heads=2)
    assert config.world_model.attention_window == 9  # max(wm_seq_len, context + horizon)
    agent = drama.make_agent(config, env, drama.SPEC.default_hparams())
    state = agent.init(jax.random.PRNGKey(0))
    obs_dim = env.observation_spec.shape[0]

    def seqs(key, b, t):
        k1, k2 = jax.random.split(key)
        return {
            "obs": jax.random.normal(k1, (b, t, obs_dim)),
            "action": jax.random.randint(k2, (b, t), 0, 2),
            "reward": jnp.ones((b, t)),
            "terminated": jnp.zeros((b, t), jnp.bool_),
        }

    batch = SequenceBatch(
        wm=seqs(jax.random.PRNGKey(1), 4, 8), img=seqs(jax.random.PRNGKey(2), 8, 4)
    )
    new, info = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(3))
    assert all(np.isfinite(float(v)) for v in info.values())
    assert new.step == 1
    # Acting: the belief is a KV cache that the recurrent form advances.
    carry = agent.initial_carry(2)
    obs = jnp.zeros((2, obs_dim))
    action, info = agent.act(new, obs, jax.random.PRNGKey(4), carry=carry)
    carry = jax.jit(agent.observe)(new, carry, obs, action, info)
    assert carry.length.tolist() == [1, 1] and carry.obs.shape == (2, 16, obs_dim)


def test_sampled_hook_evaluates_sampled_and_greedy_actions():
    """The ``sampled`` evaluation hook (Drama's spec declares it) runs the one evaluation
    routine with sampled and with greedy actions: on CartPole a policy whose mode always
    pushes left (~9 steps) but samples uniformly (~22 steps) scores apart."""
    from jaxrl.core import Agent
    from jaxrl.loops import HookInput
    from jaxrl.transforms import sampled

    assert sampled.HOOK in drama.SPEC.eval_hooks
    env = envs.make("cartpole")

    def act(state, obs, key, explore=True, **_):
        random = jax.random.randint(key, obs.shape[:1], 0, 2)
        return jnp.where(explore, random, 0).astype(jnp.int32), {}

    agent = Agent(init=lambda key: None, act=act, update=lambda s, b, k: (s, {}))
    config = drama.Config(num_eval_envs=32)
    given = HookInput(agent, jnp.zeros((2, 1)), env, "cartpole", config, 0, jax.device_get)
    fields = sampled.run(given)
    assert len(fields["sampled_returns"]) == len(fields["greedy_returns"]) == 2
    assert max(fields["greedy_returns"]) < 12 < 16 < min(fields["sampled_returns"])
    assert fields["sampled_episodes"] == 32
    assert "sampled" in sampled.rows(fields)[0][1]
