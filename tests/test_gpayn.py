"""G-PAYN: the MJX grasp env (MJCF in MuJoCo and MJX, fingertip touch on hand-built
states, reward and success on constructed states, the grasp-pose generator against a
NumPy float64 reference), the demonstrations transform, bad settings, and (slow) jit/vmap
stepping, the scripted demonstrator's success rate and learning."""

import types

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

import jaxrl.envs as E
from jaxrl import agents
from jaxrl.agents.actor_critic import gpayn
from jaxrl.core import Agent, Transition
from jaxrl.data.datasets import make_dataset, record
from jaxrl.envs import grasp
from jaxrl.transforms.demonstrations import with_demonstrations


@pytest.mark.parametrize("shape", grasp.SHAPES)
def test_mjcf_loads_in_mujoco_and_mjx(shape):
    env = grasp.GraspEnv(shape)
    m = mujoco.MjModel.from_xml_string(env.xml)
    assert (m.nq, m.nv, m.nu) == (17, 16, 10)  # free object, 4-DoF wrist, 3 x 2 finger joints
    names = [m.joint(i).name for i in range(m.njnt)]
    assert sum(n.endswith(("_prox", "_dist")) for n in names) == 6
    assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table") >= 0
    mx = mjx.put_model(m)
    assert mx.nu == 10
    d = mujoco.MjData(m)
    for _ in range(20):
        mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.qpos))
    assert env.observation_spec.shape == (49,) and env.action_spec.shape == (10,)


def test_registered_through_one_adapter():
    assert E._FAMILIES["grasp"] == "jaxrl.envs.grasp"
    assert grasp.names() == sorted(grasp.SHAPES) == ["box", "capsule", "cylinder", "sphere"]
    env = E.make("grasp/sphere", size=(0.03,), episode_length=30)
    assert env.max_episode_steps == 30 and env.unwrapped.config.size == (0.03,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": "torus"}, "unknown grasp object"),
        ({"size": (0.02,)}, "3 positive half sizes"),
        ({"size": (0.02, -0.01, 0.03)}, "positive"),
        ({"size": (0.08, 0.08, 0.03)}, "too wide"),
        ({"start": "above"}, "start must be"),
        ({"lift_height": 0.0}, "lift_height must be positive"),
        ({"min_touching": 4}, "min_touching must be <= 3"),
        ({"pregrasp_distance": -0.1}, "pregrasp_distance must be >= 0"),
        ({"colour": "red"}, "unknown grasp env settings"),
    ],
)
def test_bad_env_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grasp.GraspEnv(**kwargs)


def test_bad_gpayn_settings_raise():
    spec = agents.get("gpayn")
    env = E.make("grasp/box")
    with pytest.raises(ValueError, match="grasp/<object>"):
        spec.validate(spec.make_config("pendulum"), E.make("pendulum"))
    with pytest.raises(ValueError, match="start='pregrasp'"):
        spec.validate(spec.make_config("grasp/box"), E.make("grasp/box", start="home"))
    with pytest.raises(ValueError, match="demo_noise"):
        spec.validate(spec.make_config("grasp/box", demo_noise=-1.0), env)
    with pytest.raises(ValueError, match="demo_episodes"):
        spec.validate(spec.make_config("grasp/box", demo_episodes=0), env)
    with pytest.raises(ValueError, match="demo_fraction"):
        with_demonstrations(gpayn.sac.make_agent(gpayn.Config(), env, gpayn.HParams()), None, 1.5)
    with pytest.raises(ValueError, match="start='pregrasp'"):
        grasp.demonstrator(E.make("grasp/box", start="home").unwrapped)


def _ref_pose(shape, size, pos, yaw):
    """NumPy float64 reference of the generator's documented rule."""
    half_w = {"box": min(size[:2]), "cylinder": size[0], "sphere": size[0], "capsule": size[0]}
    if shape == "box":
        y = yaw + (np.pi / 2 if size[0] > size[1] else 0.0)
    else:
        y = 0.0
    y = (y + np.pi / 2) % np.pi - np.pi / 2
    z = max(pos[2] + grasp.GRASP_DEPTH, grasp.MIN_PALM_Z)
    splay = np.clip(
        (half_w[shape] + 0.015 - grasp.BASE_X) / (grasp.PROX_LEN + grasp.DIST_LEN), 0, 0.5
    )
    return np.array([pos[0], pos[1], z]), y, -np.arcsin(splay)


@pytest.mark.parametrize(
    "shape, size",
    [
        ("box", (0.02, 0.04, 0.03)),
        ("box", (0.04, 0.02, 0.03)),
        ("cylinder", (0.03, 0.04)),
        ("sphere", (0.035,)),
        ("capsule", (0.022, 0.03)),
    ],
)
def test_grasp_pose_matches_reference(shape, size):
    rng = np.random.default_rng(0)
    for _ in range(5):
        pos = np.array([*rng.uniform(-0.05, 0.05, 2), grasp.object_extent(shape, size)[2]])
        yaw = rng.uniform(-np.pi, np.pi)
        pose = grasp.grasp_pose(shape, size, jnp.asarray(pos, jnp.float32), jnp.float32(yaw))
        ref_pos, ref_yaw, ref_open = _ref_pose(shape, size, pos, yaw)
        np.testing.assert_allclose(pose["position"], ref_pos, atol=1e-6)
        # Yaw is defined modulo pi (a half turn of the grip).
        dy = (float(pose["yaw"]) - ref_yaw + np.pi / 2) % np.pi - np.pi / 2
        assert abs(dy) < 1e-5
        np.testing.assert_allclose(pose["opening"], ref_open, atol=1e-6)
        np.testing.assert_array_equal(pose["approach"], [0, 0, -1])


def _hand_state(env, thumb_q=0.0, obj_xy=None, obj_z=0.2):
    """A C ``MjData`` with the hand at the origin 0.3 m up, the thumb's joints at
    ``thumb_q`` and the object (heading 0) at ``obj_xy`` and height ``obj_z``."""
    m = env.mj_model
    d = mujoco.MjData(m)
    hand = np.zeros(10)
    hand[2] = 0.3
    hand[4] = thumb_q
    d.qpos[env._hand_qpos] = hand
    o = env._obj_qpos
    d.qpos[o : o + 7] = [*(obj_xy if obj_xy is not None else (0.2, 0.2)), obj_z, 1, 0, 0, 0]
    mujoco.mj_forward(m, d)
    return d


def _tip_world(env, d, finger):
    g = mujoco.mj_name2id(env.mj_model, mujoco.mjtObj.mjOBJ_GEOM, f"{finger}_tip")
    # The tip capsule's far end: centre minus half its length along the local z.
    return d.geom_xpos[g] - d.geom_xmat[g].reshape(3, 3)[:, 2] * grasp.DIST_LEN / 2


def _c_touch(env, d):
    """Reference: the fingertip-object normal forces from MuJoCo C (float64)."""
    out, f = np.zeros(3), np.zeros(6)
    for i in range(d.ncon):
        c = d.contact[i]
        for k, t in enumerate(env._tip_geoms):
            if {c.geom1, c.geom2} == {t, env._obj_geom}:
                mujoco.mj_contactForce(env.mj_model, d, i, f)
                out[k] += f[0]
    return out


def _touch_cases(env, half):
    cases = {}
    d = _hand_state(env)  # object far away
    cases["apart"] = (d, [False, False, False])
    tip = _tip_world(env, _hand_state(env), "thumb")
    # The box's +x face pushed 3 mm into the thumb tip's inner side (the tip faces -x).
    x = tip[0] - grasp.FINGER_R - half + 0.003
    cases["thumb"] = (
        _hand_state(env, obj_xy=(x, tip[1]), obj_z=tip[2] + 0.01),
        [True, False, False],
    )
    # 3 mm short of the tip: no contact, no touch.
    x = tip[0] - grasp.FINGER_R - half - 0.003
    cases["near"] = (
        _hand_state(env, obj_xy=(x, tip[1]), obj_z=tip[2] + 0.01),
        [False, False, False],
    )
    # Touching the thumb's proximal link only (above the tip): not a fingertip touch.
    x = grasp.BASE_X - grasp.FINGER_R - half + 0.003
    z = 0.3 - grasp.PALM_HALF[2]
    cases["proximal"] = (_hand_state(env, obj_xy=(x, 0.0), obj_z=z), [False, False, False])
    # The proximal case really is a contact (with the proximal link), just not a tip's.
    assert cases["proximal"][0].ncon > 0 and cases["thumb"][0].ncon > 0
    return cases


def _check_touch(env, cases, touch_of):
    for name, (d, expect) in cases.items():
        touch = np.asarray(touch_of(d))
        assert ((touch > 0) == np.array(expect)).all(), (name, touch)
        np.testing.assert_allclose(touch, _c_touch(env, d), rtol=0.05, atol=1e-3, err_msg=name)


def test_touch_reads_fingertip_forces_only():
    """``touch`` on hand-built states whose contacts and forces MuJoCo C solved (through
    ``mjx.put_data``): non-zero exactly for the fingertip that presses on the object."""
    env = grasp.GraspEnv("box", size=(0.022, 0.03, 0.03))
    _check_touch(env, _touch_cases(env, 0.022), lambda d: env.touch(mjx.put_data(env.mj_model, d)))


@pytest.mark.slow
def test_touch_nonzero_exactly_when_fingertips_touch_in_mjx():
    """The same hand-built states, contacts and forces solved by MJX (jit(mjx.forward))."""
    env = grasp.GraspEnv("box", size=(0.022, 0.03, 0.03))
    forward = jax.jit(lambda d: env.touch(mjx.forward(env.model, d)))
    _check_touch(env, _touch_cases(env, 0.022), lambda d: forward(mjx.put_data(env.mj_model, d)))


def test_reward_and_success_on_constructed_states():
    env = grasp.GraspEnv("cylinder")
    cfg, z0 = env.config, env._z0

    def state(lift, point_offset):
        qpos = np.zeros(17, np.float32)
        qpos[2] = z0 + lift
        site = np.zeros((1, 3), np.float32)
        site[0] = qpos[:3] + point_offset
        return types.SimpleNamespace(qpos=jnp.asarray(qpos), site_xpos=jnp.asarray(site))

    def ref(lift, offset, touch):
        n = int((np.asarray(touch) > 1e-3).sum())
        success = lift >= cfg.lift_height and n >= cfg.min_touching
        frac = np.clip(lift / cfg.lift_height, 0, 1)
        return cfg.step_scale * (frac * n / 3 - np.linalg.norm(offset)) + float(success), success

    cases = [
        (0.07, (0.0, 0.0, 0.01), (2.0, 1.5, 0.0)),  # lifted and held by two: success
        (0.07, (0.0, 0.0, 0.01), (2.0, 0.0, 0.0)),  # lifted but one finger: no success
        (0.03, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # held by three, not high enough
        (0.0, (0.05, 0.0, 0.02), (0.0, 0.0, 0.0)),  # resting, hand away
    ]
    for lift, offset, touch in cases:
        r, s = env.reward_success(
            state(lift, np.array(offset)), jnp.float32(z0), jnp.asarray(touch)
        )
        r_ref, s_ref = ref(lift, np.array(offset, np.float64), touch)
        assert bool(s) == s_ref
        np.testing.assert_allclose(float(r), r_ref, atol=1e-5)
    # Shaping over a whole episode stays under 0.1: the mean return ~ the success rate.
    assert cfg.step_scale * cfg.episode_length * (1 + 0.3) < 0.15


def _demo_dataset(n=4, t=3, obs_dim=2):
    obs = jnp.full((t, n, obs_dim), 7.0)
    return make_dataset(
        obs,
        jnp.ones((t, n, 1)),
        jnp.full((t, n), 5.0),
        jnp.zeros((t, n), bool),
        jnp.zeros((t, n), bool),
        obs,
        jnp.ones((t, n), bool),
    )


def _probe_agent():
    """An agent whose update returns the batch it saw in its metrics."""
    return Agent(
        init=lambda k: jnp.zeros(()),
        act=lambda s, o, k, explore=True, **_: (jnp.zeros((o.shape[0], 1)), {}),
        update=lambda s, b, k: (s + 1, {"reward": b.reward, "obs": b.obs, "x": b.extras["x"]}),
    )


def _replay_batch(n=8):
    return Transition(
        obs=jnp.zeros((n, 2)),
        action=jnp.zeros((n, 1)),
        reward=jnp.arange(n, dtype=jnp.float32),
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
        next_obs=jnp.zeros((n, 2)),
        extras={"x": jnp.ones(n)},
    )


@pytest.mark.parametrize("traced", [False, True])
def test_with_demonstrations_mixes_batches(traced):
    frac = jnp.float32(0.25) if traced else 0.25
    agent = with_demonstrations(_probe_agent(), lambda k: _demo_dataset(), frac)
    state = agent.init(jax.random.PRNGKey(0))
    state, m = agent.update(state, _replay_batch(), jax.random.PRNGKey(1))
    np.testing.assert_array_equal(m["reward"], [0, 1, 2, 3, 4, 5, 5, 5])  # 2 of 8 are demos
    np.testing.assert_array_equal(m["obs"][6:], 7.0)
    np.testing.assert_array_equal(m["x"], [1, 1, 1, 1, 1, 1, 0, 0])
    assert float(m["demo_fraction"]) == 0.25 and float(m["demo_reward_mean"]) == 5.0
    assert int(state.agent) == 1


def test_with_demonstrations_zero_fraction_is_the_agent():
    agent = with_demonstrations(_probe_agent(), _demo_dataset(), 0.0)
    state = agent.init(jax.random.PRNGKey(0))
    _, m = agent.update(state, _replay_batch(), jax.random.PRNGKey(1))
    np.testing.assert_array_equal(m["reward"], np.arange(8))
    assert set(m) == {"reward", "obs", "x"}


@pytest.mark.slow
def test_env_steps_under_jit_and_vmap():
    env = E.make("grasp/box")
    venv = E.VmapWrapper(env, 4)
    state = jax.jit(venv.reset)(jax.random.PRNGKey(0))
    step = jax.jit(venv.step)
    action = jnp.zeros((4, 10))
    s1 = step(state, action)
    s2 = step(state, action)
    assert s1.obs.shape == (4, 49) and np.all(np.isfinite(s1.obs))
    np.testing.assert_array_equal(s1.obs, s2.obs)  # deterministic
    # Different resets put the object in different places.
    assert np.ptp(np.asarray(state.obs[:, 24])) > 0


#: The scripted demonstrator's success rate over 64 random object poses, per shape
#: (measured: 1.0 on each; the test asks for at least 0.9).
@pytest.mark.slow
@pytest.mark.parametrize("shape", ["box", "cylinder", "sphere", "capsule"])
def test_demonstrator_success_rate(shape):
    env = E.make(f"grasp/{shape}")
    policy = grasp.demonstrator(env.unwrapped)
    ds = jax.jit(lambda k: record(env, policy, k, 64))(jax.random.PRNGKey(3))
    success = np.asarray(ds.terminal).any(0)
    assert success.mean() >= 0.9, success.mean()
    assert np.asarray(ds.length)[success].mean() < 25  # steps to lift


@pytest.mark.slow
def test_gpayn_learns_to_grasp(tmp_path):
    """G-PAYN on grasp/box: after 6000 env steps the deterministic policy's mean eval
    return (about the success rate, see the env doc) is at least 0.5 over 2 seeds.

    Not yet seen to pass: with SAC's default temperature (init_alpha 1) a 1-seed,
    5000-step run ended at eval return -0.016 (no success): the entropy bonus of the
    10-D action outweighs the success reward of 1 at this budget. G-PAYN's default now
    starts the temperature at 0.01 (the paper's code's ``--ent_coef auto_0.01``;
    unverified on this machine).
    """
    from jaxrl import runner

    res = runner.run(
        "gpayn",
        "grasp/box",
        seeds=2,
        steps=6000,
        config={"num_evals": 4},
        progress=False,
        log=None,
        out=tmp_path / "run",
    )
    final = np.asarray(res.metrics["eval_return"])[:, -1]
    assert final.mean() >= 0.5, final
