"""Multi-fingered grasping in MJX: ``grasp/<object>`` for box, cylinder, sphere, capsule.

The model is written here (no downloaded assets): a three-fingered hand (a thumb facing
two fingers, two hinge joints per finger, position actuators) on a wrist that slides in
x, y, z and turns about z, above a table with one object whose position and heading are
drawn at reset. It is kept small for MJX on a CPU: explicit contact pairs only (object
against table, finger links and palm against object, fingertips against table), a
pyramidal cone, 4 solver iterations.

The task follows G-PAYN (Ceola et al., 2023): an external generator gives a grasp pose
(``grasp_pose``: an analytic stand-in for the paper's superquadric fit); with
``start="pregrasp"`` (the paper's setting) each episode begins with the hand at the
pre-grasp pose, ``pregrasp_distance`` behind the grasp pose along the approach direction,
fingers at the generator's opening. ``start="home"`` starts the hand above the table
centre and hides the grasp pose from the observation (the "from scratch" baseline).

Action ``[10]`` in [-1, 1]: wrist target deltas (x, y, z times ``max_delta_pos``, yaw
times ``max_delta_yaw``), then six absolute finger joint targets mapped onto the joint
ranges. Observation ``[49]``: hand joint positions (10) and velocities (10), wrist
targets (4), object position, quaternion and position relative to the hand's grasp point
(10), fingertip touch (3, ``tanh`` of the contact normal force in newtons), grasp pose
(position 3, yaw as cos/sin 2, opening 1) and the grasp position relative to the hand (3)
(the last 9 are zero with ``start="home"``), elapsed time fraction (1), object lift (1),
fingers touching / 3 (1).

Reward (the paper's shape: a success reward plus small per-step terms): ``1`` when the
object is held ``lift_height`` above its resting height with at least
``min_touching`` fingertips on it (the episode then terminates: success), plus
``step_scale * (lift_fraction * touching / 3 - distance(grasp point, object))`` each
step. With the default scale an episode's shaping stays under 0.1 in size, so a
deterministic evaluation's mean return is the success rate to within 0.1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from jaxrl.envs.capabilities import Demonstrator
from jaxrl.envs.core import Box, Env, EnvState, call_args, first_state

SHAPES = ("box", "capsule", "cylinder", "sphere")

#: Default object sizes (MuJoCo geom half sizes, metres): box half extents, cylinder and
#: capsule (radius, half length), sphere (radius,). Cylinder and capsule stand upright.
DEFAULT_SIZES: dict[str, tuple[float, ...]] = {
    "box": (0.022, 0.04, 0.03),
    "cylinder": (0.022, 0.035),
    "sphere": (0.028,),
    "capsule": (0.022, 0.03),
}

#: Hand geometry (metres): finger bases sit ``BASE_X`` either side of the palm centre;
#: link lengths; joint ranges (radians, positive closes).
BASE_X = 0.04
PROX_LEN, DIST_LEN, FINGER_R = 0.05, 0.04, 0.008
PROX_RANGE, DIST_RANGE = (-0.6, 1.5), (0.0, 1.5)
PALM_HALF = (0.05, 0.04, 0.01)
FINGERS = ("thumb", "index", "middle")
#: Finger base positions in the palm frame; the thumb closes toward -x, the others +x.
FINGER_BASES = ((BASE_X, 0.0), (-BASE_X, 0.025), (-BASE_X, -0.025))
HOME = (0.0, 0.0, 0.22)
WRIST_RANGE = ((-0.25, 0.25), (-0.25, 0.25), (0.0, 0.4), (-3.2, 3.2))


def _names() -> list[str]:
    return list(SHAPES)


def names() -> list[str]:
    """Object shapes offered as ``grasp/<shape>``."""
    return _names()


def args(name: str) -> dict[str, Any]:
    """The plain-valued ``GraspConfig`` fields but ``shape`` (the name gives it)."""
    return call_args(GraspConfig, skip=("shape",))


def make(name: str, **kwargs: Any) -> GraspEnv:
    """``GraspEnv(shape=name, **kwargs)``; ValueError for an unknown shape."""
    return GraspEnv(shape=name, **kwargs)


def object_extent(shape: str, size: tuple[float, ...]) -> tuple[float, float, float]:
    """``(half width across the grip, half length along it, height of the centre)`` of
    the object at rest, in the object's frame: the grip closes along the object's x."""
    if shape == "box":
        a, b, c = size
        return min(a, b), max(a, b), c
    if shape == "cylinder":
        r, h = size
        return r, r, h
    if shape == "sphere":
        return size[0], size[0], size[0]
    r, h = size  # capsule standing on an end
    return r, r, h + r


def _object_geom(shape: str, size: tuple[float, ...]) -> str:
    s = " ".join(f"{v:.4f}" for v in size)
    return f'type="{shape}" size="{s}"'


def _finger_xml(name: str, bx: float, by: float, sign: float) -> str:
    # Hinge axis +y closes the finger tip toward -x: the thumb (sign +1) at +x.
    ax = f"0 {sign:g} 0"
    return f"""
    <body name="{name}" pos="{bx} {by} {-PALM_HALF[2]}">
     <joint name="{name}_prox" axis="{ax}" range="{PROX_RANGE[0]} {PROX_RANGE[1]}"/>
     <geom name="{name}_prox" type="capsule" fromto="0 0 0 0 0 {-PROX_LEN}" size="{FINGER_R}"
           mass="0.02" rgba="0.8 0.6 0.5 1"/>
     <body pos="0 0 {-PROX_LEN}">
      <joint name="{name}_dist" axis="{ax}" range="{DIST_RANGE[0]} {DIST_RANGE[1]}"/>
      <geom name="{name}_tip" type="capsule" fromto="0 0 0 0 0 {-DIST_LEN}" size="{FINGER_R}"
            mass="0.015" rgba="0.9 0.5 0.4 1"/>
     </body>
    </body>"""


def mjcf(shape: str, size: tuple[float, ...], timestep: float = 0.01, iterations: int = 4) -> str:
    """The scene's MJCF: table plane, object on a free joint, hand on a 4-DoF wrist."""
    _, _, z0 = object_extent(shape, size)
    signs = (1.0, -1.0, -1.0)
    fingers = "".join(
        _finger_xml(n, bx, by, s)
        for n, (bx, by), s in zip(FINGERS, FINGER_BASES, signs, strict=True)
    )
    pairs = ['<pair geom1="object" geom2="table"/>', '<pair geom1="palm" geom2="object"/>']
    for n in FINGERS:
        pairs += [f'<pair geom1="{n}_prox" geom2="object"/>']
        pairs += [f'<pair geom1="{n}_tip" geom2="object"/>']
        pairs += [f'<pair geom1="{n}_tip" geom2="table"/>']
    acts = []
    for j, (lo, hi) in zip(("wx", "wy", "wz"), WRIST_RANGE[:3], strict=True):
        acts.append(f'<position joint="{j}" kp="300" ctrlrange="{lo} {hi}"/>')
    lo, hi = WRIST_RANGE[3]
    acts.append(f'<position joint="wyaw" kp="3" ctrlrange="{lo} {hi}"/>')
    for n in FINGERS:
        acts.append(
            f'<position joint="{n}_prox" kp="1.5" ctrlrange="{PROX_RANGE[0]} {PROX_RANGE[1]}"/>'
        )
        acts.append(
            f'<position joint="{n}_dist" kp="0.5" ctrlrange="{DIST_RANGE[0]} {DIST_RANGE[1]}"/>'
        )
    px, py, pz = PALM_HALF
    return f"""<mujoco model="grasp_{shape}">
 <compiler angle="radian" autolimits="true"/>
 <option timestep="{timestep}" iterations="{iterations}" ls_iterations="{iterations}"
         integrator="implicitfast" cone="pyramidal"/>
 <default>
  <geom contype="0" conaffinity="0" friction="2.0 0.02 0.001" solref="0.01 1"/>
  <joint damping="0.05" armature="0.005"/>
  <position ctrllimited="true"/>
 </default>
 <worldbody>
  <geom name="table" type="plane" size="0.5 0.5 0.01" rgba="0.6 0.6 0.6 1"/>
  <body name="object" pos="0 0 {z0}">
   <freejoint name="object"/>
   <geom name="object" {_object_geom(shape, size)} mass="0.08" rgba="0.2 0.5 0.9 1"/>
  </body>
  <body name="hand" pos="0 0 0" gravcomp="1">
   <joint name="wx" type="slide" axis="1 0 0" damping="30"/>
   <joint name="wy" type="slide" axis="0 1 0" damping="30"/>
   <joint name="wz" type="slide" axis="0 0 1" damping="30"/>
   <joint name="wyaw" type="hinge" axis="0 0 1" damping="0.5"/>
   <geom name="palm" type="capsule" fromto="0 {-py} 0 0 {py} 0" size="{pz + 0.004}" mass="0.3"
         rgba="0.8 0.6 0.5 1"/>
   <site name="grasp_point" pos="0 0 {-GRASP_DEPTH}"/>{fingers}
  </body>
 </worldbody>
 <contact>
  {"".join(pairs)}
 </contact>
 <actuator>
  {"".join(acts)}
 </actuator>
</mujoco>"""


#: Depth of the grasp point below the palm centre (the site ``grasp_point``): about where
#: the fingertips meet the object's centre; the palm stays above ``MIN_PALM_Z`` so that
#: straight fingertips clear the table.
GRASP_DEPTH = 0.085
MIN_PALM_Z = 0.11
NQ_HAND = 10  # wx, wy, wz, wyaw, 3 x (prox, dist)


class GraspState(struct.PyTreeNode):
    """The simulator's state and the episode's constants.

    Attributes:
      data: the ``mjx.Data``.
      grasp: ``[6]`` grasp pose: palm position (3), yaw, finger opening, 0 (pad).
      z0: the object's resting centre height.
      t: int32 steps since reset.
    """

    data: Any
    grasp: jax.Array
    z0: jax.Array
    t: jax.Array


def _wrap_half_pi(a: jax.Array) -> jax.Array:
    """An angle modulo pi into [-pi/2, pi/2) (the grip is symmetric under a half turn)."""
    return (a + jnp.pi / 2) % jnp.pi - jnp.pi / 2


def grasp_pose(
    shape: str, size: tuple[float, ...], obj_pos: jax.Array, obj_yaw: jax.Array
) -> dict[str, jax.Array]:
    """An analytic grasp pose from the object's shape and pose (the paper fits a
    superquadric to a point cloud; the shape is known here).

    The approach is from above (direction ``[0, 0, -1]``); the grip closes across the
    object's narrowest horizontal extent (a box's shorter side; any heading for
    the round shapes); the palm stops so that the grasp point (``GRASP_DEPTH`` below the palm) is at
    the object's centre (the palm no lower than ``MIN_PALM_Z``); the finger opening
    leaves 1.5 cm between the open fingertips and the object's sides.

    Returns ``{"position": [3], "yaw": [], "opening": [], "approach": [3]}``.
    """
    half_w, _, z0 = object_extent(shape, size)
    if shape == "box" and size[0] > size[1]:
        yaw = obj_yaw + jnp.pi / 2
    elif shape == "box":
        yaw = obj_yaw
    else:
        yaw = jnp.zeros_like(obj_yaw)
    palm_z = jnp.maximum(obj_pos[2] + GRASP_DEPTH, MIN_PALM_Z)
    reach = PROX_LEN + DIST_LEN
    splay = (half_w + 0.015 - BASE_X) / reach
    opening = -jnp.arcsin(jnp.clip(jnp.asarray(splay, jnp.float32), 0.0, 0.5))
    return {
        "position": jnp.stack([obj_pos[0], obj_pos[1], palm_z]),
        "yaw": _wrap_half_pi(yaw),
        "opening": opening,
        "approach": jnp.array([0.0, 0.0, -1.0]),
    }


@dataclasses.dataclass(frozen=True)
class GraspConfig:
    """Static settings of a ``GraspEnv`` (validated in ``GraspEnv.__init__``)."""

    shape: str = "box"
    size: tuple[float, ...] | None = None
    start: str = "pregrasp"
    pregrasp_distance: float = 0.05
    lift_height: float = 0.06
    min_touching: int = 2
    episode_length: int = 50
    substeps: int = 4
    timestep: float = 0.01
    solver_iterations: int = 4
    position_noise: float = 0.04
    max_delta_pos: float = 0.015
    max_delta_yaw: float = 0.1
    step_scale: float = 0.002


class GraspEnv(Env):
    """``grasp/<shape>``: lift an object with a three-fingered hand (MJX).

    See the module docstring for observation, action, reward and episode start.

    Raises:
      ValueError: for an unknown shape or start, a size of the wrong length or not
        positive, or a non-positive length, height, step count or scale.
    """

    def __init__(self, shape: str = "box", **kwargs: Any):
        fields = {f.name for f in dataclasses.fields(GraspConfig)}
        bad = sorted(set(kwargs) - fields)
        if bad:
            raise ValueError(f"unknown grasp env settings {bad}; known: {sorted(fields)}")
        cfg = GraspConfig(shape=shape, **kwargs)
        if cfg.shape not in SHAPES:
            raise ValueError(f"unknown grasp object {cfg.shape!r}; known: {', '.join(SHAPES)}")
        size = tuple(float(s) for s in (cfg.size or DEFAULT_SIZES[cfg.shape]))
        if len(size) != len(DEFAULT_SIZES[cfg.shape]) or min(size) <= 0:
            raise ValueError(
                f"size for {cfg.shape} must be {len(DEFAULT_SIZES[cfg.shape])} positive half "
                f"sizes (like {DEFAULT_SIZES[cfg.shape]}), got {cfg.size}"
            )
        if object_extent(cfg.shape, size)[0] >= BASE_X + 0.01:
            raise ValueError(
                f"size {size}: the {cfg.shape} is too wide for the hand "
                f"(half width across the grip must be < {BASE_X + 0.01})"
            )
        if cfg.start not in ("pregrasp", "home"):
            raise ValueError(f"start must be 'pregrasp' or 'home', got {cfg.start!r}")
        for name in (
            "lift_height",
            "episode_length",
            "substeps",
            "timestep",
            "min_touching",
            "solver_iterations",
            "max_delta_pos",
            "max_delta_yaw",
        ):
            if getattr(cfg, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(cfg, name)}")
        if cfg.min_touching > len(FINGERS):
            raise ValueError(f"min_touching must be <= {len(FINGERS)}, got {cfg.min_touching}")
        for name in ("pregrasp_distance", "position_noise", "step_scale"):
            if getattr(cfg, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
        self.config = dataclasses.replace(cfg, size=size)
        self.max_episode_steps = cfg.episode_length
        self.xml = mjcf(cfg.shape, size, cfg.timestep, cfg.solver_iterations)
        self.mj_model = mujoco.MjModel.from_xml_string(self.xml)
        self.model = mjx.put_model(self.mj_model)
        m = self.mj_model
        gid = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n)
        self._obj_geom = gid("object")
        self._tip_geoms = np.array([gid(f"{n}_tip") for n in FINGERS])
        self._site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "grasp_point")
        self._obj_qpos = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "object")]
        hand_joints = ["wx", "wy", "wz", "wyaw"]
        hand_joints += [f"{n}_{p}" for n in FINGERS for p in ("prox", "dist")]
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in hand_joints]
        self._hand_qpos = np.array([m.jnt_qposadr[j] for j in jid])
        self._hand_dof = np.array([m.jnt_dofadr[j] for j in jid])
        self._ctrl_lo = np.asarray(m.actuator_ctrlrange[:, 0], np.float32)
        self._ctrl_hi = np.asarray(m.actuator_ctrlrange[:, 1], np.float32)
        self._z0 = object_extent(cfg.shape, size)[2]
        self.action_spec = Box((m.nu,), -1.0, 1.0)
        self.observation_spec = Box((49,))

    def __repr__(self) -> str:
        return f"GraspEnv({self.config.shape}, size={self.config.size}, start={self.config.start})"

    # -- pieces -------------------------------------------------------------------------

    def pose(self, obj_pos: jax.Array, obj_yaw: jax.Array) -> dict[str, jax.Array]:
        """``grasp_pose`` for this env's object."""
        return grasp_pose(self.config.shape, self.config.size, obj_pos, obj_yaw)

    def touch(self, data: Any) -> jax.Array:
        """``[3]`` contact normal force (N) between each fingertip and the object: the
        sum over that pair's active contacts of the pyramid's edge forces."""
        con = data.contact
        force = data._impl.efc_force
        addr = np.asarray(con.efc_address)
        rows = addr[:, None] + np.arange(4)[None]  # pyramidal cone, condim 3: 4 rows
        normal = jnp.sum(jnp.take(force, rows, mode="clip"), axis=1)
        normal = jnp.where((con.dist < 0) & (addr >= 0), normal, 0.0)
        g1, g2 = con.geom1, con.geom2
        out = []
        for tip in self._tip_geoms:
            hit = ((g1 == tip) & (g2 == self._obj_geom)) | ((g2 == tip) & (g1 == self._obj_geom))
            out.append(jnp.sum(jnp.where(hit, normal, 0.0)))
        return jnp.stack(out)

    def _obs(self, s: GraspState, touch: jax.Array) -> jax.Array:
        d, cfg = s.data, self.config
        q = d.qpos[self._hand_qpos]
        qd = d.qvel[self._hand_dof]
        obj = d.qpos[self._obj_qpos : self._obj_qpos + 7]
        point = d.site_xpos[self._site]
        pose = jnp.concatenate(
            [
                s.grasp[:3],
                jnp.cos(s.grasp[3:4]),
                jnp.sin(s.grasp[3:4]),
                s.grasp[4:5],
                s.grasp[:3] - q[:3],
            ]
        )
        if cfg.start == "home":
            pose = jnp.zeros_like(pose)
        touching = jnp.sum(touch > 1e-3)
        lift = (obj[2] - s.z0) / cfg.lift_height
        obs = jnp.concatenate(
            [
                q,
                0.1 * qd,
                d.ctrl[:4],
                obj[:3],
                obj[3:7],
                obj[:3] - point,
                jnp.tanh(touch),
                pose,
                jnp.stack([s.t / cfg.episode_length, lift, touching / len(FINGERS)]),
            ]
        )
        return obs.astype(jnp.float32)

    def _physics(self, data: Any) -> Any:
        def sub(d, _):
            return mjx.step(self.model, d), None

        data, _ = jax.lax.scan(sub, data, None, length=self.config.substeps)
        return data

    def reward_success(
        self, data: Any, z0: jax.Array, touch: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``(reward, success)`` of a state: see the module docstring."""
        cfg = self.config
        obj_pos = data.qpos[self._obj_qpos : self._obj_qpos + 3]
        touching = jnp.sum(touch > 1e-3)
        lifted = obj_pos[2] - z0
        success = (lifted >= cfg.lift_height) & (touching >= cfg.min_touching)
        dist = jnp.linalg.norm(data.site_xpos[self._site] - obj_pos)
        frac = jnp.clip(lifted / cfg.lift_height, 0.0, 1.0)
        shaping = frac * touching / len(FINGERS) - dist
        reward = cfg.step_scale * shaping + success.astype(jnp.float32)
        return reward.astype(jnp.float32), success

    # -- protocol -----------------------------------------------------------------------

    def capabilities(self) -> tuple[Any, ...]:
        """The scripted demonstrator (``demonstrator``; needs ``start="pregrasp"``)."""
        return (Demonstrator(lambda noise: demonstrator(self, noise=noise)),)

    def reset(self, key: jax.Array) -> EnvState:
        cfg, m = self.config, self.mj_model
        key, k_pos, k_yaw, k_home = jax.random.split(key, 4)
        xy = jax.random.uniform(k_pos, (2,), minval=-cfg.position_noise, maxval=cfg.position_noise)
        yaw = jax.random.uniform(k_yaw, (), minval=-jnp.pi, maxval=jnp.pi)
        obj_pos = jnp.array([xy[0], xy[1], self._z0])
        pose = self.pose(obj_pos, yaw)
        grasp = jnp.concatenate(
            [pose["position"], pose["yaw"][None], pose["opening"][None], jnp.zeros(1)]
        )
        if cfg.start == "pregrasp":
            wrist = jnp.concatenate(
                [pose["position"] - cfg.pregrasp_distance * pose["approach"], pose["yaw"][None]]
            )
        else:
            noise = jax.random.uniform(k_home, (3,), minval=-0.02, maxval=0.02)
            wrist = jnp.concatenate([jnp.asarray(HOME) + noise, jnp.zeros(1)])
        fingers = jnp.tile(jnp.stack([pose["opening"], 0.0]), len(FINGERS))
        hand = jnp.concatenate([wrist, fingers])
        quat = jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])
        qpos = jnp.asarray(m.qpos0, jnp.float32)
        qpos = qpos.at[self._obj_qpos : self._obj_qpos + 7].set(jnp.concatenate([obj_pos, quat]))
        qpos = qpos.at[self._hand_qpos].set(hand)
        data = mjx.make_data(m).replace(qpos=qpos, ctrl=hand)
        data = mjx.forward(self.model, data)
        s = GraspState(data=data, grasp=grasp, z0=jnp.float32(self._z0), t=jnp.zeros((), jnp.int32))
        touch = self.touch(data)
        return first_state(s, self._obs(s, touch), key)

    def command(self, ctrl: jax.Array, action: jax.Array) -> jax.Array:
        """New actuator targets ``[10]`` from the previous ones and ``action [10]``."""
        cfg = self.config
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        scale = jnp.array([cfg.max_delta_pos] * 3 + [cfg.max_delta_yaw])
        wrist = ctrl[:4] + scale * a[:4]
        lo, hi = self._ctrl_lo, self._ctrl_hi
        fingers = lo[4:] + (a[4:] + 1.0) * 0.5 * (hi[4:] - lo[4:])
        return jnp.clip(jnp.concatenate([wrist, fingers]), lo, hi)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        s = state.inner
        data = s.data.replace(ctrl=self.command(s.data.ctrl, action))
        data = self._physics(data)
        touch = self.touch(data)
        reward, success = self.reward_success(data, s.z0, touch)
        s = s.replace(data=data, t=s.t + 1)
        return state.replace(
            inner=s,
            obs=self._obs(s, touch),
            reward=reward,
            terminated=success,
            truncated=jnp.zeros((), jnp.bool_),
        )

    # -- the scripted demonstrator --------------------------------------------------------

    def finger_action(self, prox: jax.Array, dist: jax.Array) -> jax.Array:
        """``[6]`` finger actions for joint targets ``prox``, ``dist`` (every finger)."""
        lo, hi = self._ctrl_lo[4:], self._ctrl_hi[4:]
        target = jnp.tile(jnp.stack([prox, dist]), len(FINGERS))
        return 2.0 * (target - lo) / (hi - lo) - 1.0


#: Observation layout (see the module docstring).
OBS_HAND_Q = slice(0, 10)
OBS_TARGET = slice(20, 24)
OBS_TOUCH = slice(34, 37)
OBS_GRASP_POS, OBS_GRASP_COS, OBS_GRASP_SIN, OBS_OPENING = slice(37, 40), 40, 41, 42
OBS_TOUCHING = 48


def demonstrator(env: GraspEnv, close: tuple[float, float] = (1.3, 0.9), noise: float = 0.0) -> Any:
    """The scripted controller of G-PAYN's automatic demonstrations: ``policy(obs [B, 49],
    key) -> action [B, 10]``, a pure function of the observation.

    Move the wrist to the grasp pose (position and yaw) with the fingers at the
    generator's opening; once there, close every finger to ``close`` (proximal, distal
    joint targets); once at least ``env.config.min_touching`` fingertips press on the
    object, keep closing and lift straight up. ``noise`` adds Gaussian action noise
    (diversity across demonstrations). Needs ``start="pregrasp"`` (the grasp pose in the
    observation).
    """
    if env.config.start != "pregrasp":
        raise ValueError("the demonstrator reads the grasp pose: it needs start='pregrasp'")
    cfg = env.config
    scale = jnp.array([cfg.max_delta_pos] * 3 + [cfg.max_delta_yaw])
    open_prox_dist = lambda o: env.finger_action(o, jnp.zeros_like(o))
    closed = env.finger_action(jnp.float32(close[0]), jnp.float32(close[1]))

    def one(obs: jax.Array, key: jax.Array) -> jax.Array:
        target = obs[OBS_TARGET]
        goal = jnp.concatenate(
            [obs[OBS_GRASP_POS], jnp.arctan2(obs[OBS_GRASP_SIN], obs[OBS_GRASP_COS])[None]]
        )
        err = goal - target
        at_pose = (jnp.linalg.norm(err[:2]) < 0.004) & (err[2] > -0.004)
        grasped = jnp.round(obs[OBS_TOUCHING] * len(FINGERS)) >= cfg.min_touching
        move = jnp.clip(err / scale, -1.0, 1.0)
        lift = jnp.array([0.0, 0.0, 1.0, 0.0])
        hold = jnp.zeros(4)
        wrist = jnp.where(grasped, lift, jnp.where(at_pose, hold, move))
        fingers = jnp.where(at_pose | grasped, closed, open_prox_dist(obs[OBS_OPENING]))
        action = jnp.concatenate([wrist, fingers])
        action = action + noise * jax.random.normal(key, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def policy(obs: jax.Array, key: jax.Array) -> jax.Array:
        return jax.vmap(one)(obs, jax.random.split(key, obs.shape[0]))

    return policy
