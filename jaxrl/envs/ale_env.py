"""Atari 2600 inside the compiled program: ``ale/<Game>`` on ale-py's XLA vector env.

``jaxrl.envs.make("ale/Breakout")`` returns a functional env (the ``Env`` protocol)
whose ``reset``/``step`` call ale-py's ``AtariVectorEnv`` XLA FFI targets, so the
emulators (C++ threads) are stepped from inside ``jax.jit`` with no Python per step:
PPO's rollout loop, evaluation and seed/hyperparameter vmaps run on it unchanged.

**One pool per compiled reset.** The env is written for one game, but ``reset`` and
``step`` work under any nesting of ``jax.vmap`` (the loops' ``VmapWrapper`` over
``num_envs``, the runner's vmap over seeds, a sweep's vmap over settings): their
batching rules flatten every vmapped axis into one pool of ``settings x seeds x envs``
emulators, stepped by a single FFI call per step. The pool is created when a reset is
*lowered* (compiled), one pool per compiled reset site (training envs and evaluation
envs get separate pools), and lives as long as the process.

**Protocol** (Atari100k / Machado et al. 2018, as the host env ``atari/<Game>``): every
``AtariVectorEnv`` setting is passed explicitly; those that differ from its defaults
are marked *overridden*:

- ``frameskip=4``, ``maxpool=True`` (max of the last two frames);
- ``repeat_action_probability=0.0`` (no sticky actions; ``sticky`` sets it);
- ``noop_max``: up to 30 no-ops after a reset, drawn from 0..30 as the host env does
  (ale-py draws from ``0..noop_max-1``, so it is given ``noop_max + 1``);
- ``max_num_frames_per_episode=108_000`` (27k agent steps), truncation kept apart
  from termination;
- ``img_height = img_width = size`` (84 default, 64 for Drama-style models),
  ``grayscale=True`` (``grayscale=False``: RGB), ``stack_num=stack`` frames (4);
  observations are ``[size, size, stack]`` uint8 (RGB: ``[size, size, 3 * stack]``);
- ``full_action_space=False`` (minimal action set);
- *overridden*: ``reward_clipping=False`` (agents see game scores; clip in the
  agent), ``use_fire_reset=False``, ``episodic_life=False``, ``life_loss_info=False``;
- ``autoreset_mode="NextStep"`` (the only one ``xla()`` supports), turned into the
  jaxrl protocol's same-step reset: ``step`` resets finished emulators in the same call
  (partial FFI resets of exactly the finished ones), so ``obs`` starts the next episode
  and ``info["final_obs"]`` holds the observation the episode ended on.

**What is not pure.** The emulator state lives in C++, outside JAX: the env state holds
only an 8-byte pool handle, and ``step`` advances the pool as a side effect (calling it
twice on the same state does not give the same result). Runs are still reproducible:
emulators are seeded from the reset key and the no-op draws continue their own RNG.
A checkpoint cannot hold the emulators, so ``--checkpoint-every`` and ``--resume``
refuse this family; the pool is a single-device resource, so the runner keeps its
seeds on one JAX device (the emulator threads use the cores).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

from jaxrl.envs.core import Box, Discrete, Env, EnvState, call_args

INSTALL_HINT = "pip install 'jaxrl[atari]' (ale-py >= 0.12.1)"
_HANDLE = 8  # bytes of the pool pointer the FFI targets take

#: Emulator pools created by lowerings; a compiled program refers to them by address,
#: so they live as long as the process.
_POOLS: list[Any] = []


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The settings of one ``ale/<Game>`` env (static; hashable primitive params)."""

    rom: str
    size: int = 84
    grayscale: bool = True
    stack: int = 4
    frame_skip: int = 4
    noop_max: int = 30
    max_frames: int = 108_000
    sticky: float = 0.0
    num_threads: int = 0

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.stack * (1 if self.grayscale else 3))

    def pool(self, num_envs: int) -> Any:
        """A new ``AtariVectorEnv`` of ``num_envs`` emulators under this protocol."""
        from ale_py.vector_env import AtariVectorEnv

        return AtariVectorEnv(
            self.rom,
            num_envs,
            batch_size=0,
            num_threads=self.num_threads,
            thread_affinity_offset=-1,
            max_num_frames_per_episode=self.max_frames,
            repeat_action_probability=self.sticky,
            full_action_space=False,
            continuous=False,
            autoreset_mode="NextStep",
            img_height=self.size,
            img_width=self.size,
            grayscale=self.grayscale,
            stack_num=self.stack,
            frameskip=self.frame_skip,
            maxpool=True,
            noop_max=self.noop_max + 1,
            episodic_life=False,
            life_loss_info=False,
            reward_clipping=False,
            use_fire_reset=False,
        )

    def raw_shape(self, n: int) -> tuple[int, ...]:
        rgb = () if self.grayscale else (3,)
        return (n, self.stack, self.size, self.size, *rgb)

    def to_obs(self, raw: jax.Array) -> jax.Array:
        """FFI observations ``[n, stack, H, W(, 3)]`` -> ``[n, H, W, channels]``."""
        x = jnp.moveaxis(raw, 1, 3)  # [n, H, W, stack(, 3)]
        return x.reshape((raw.shape[0], *self.obs_shape))


@functools.cache
def _register_targets() -> None:
    """Registers ale-py's FFI targets with JAX (once per process)."""
    import ale_py

    native = ale_py._ale_py
    jax.ffi.register_ffi_target("atari_vector_xla_reset", native.VectorXLAReset(), platform="cpu")
    jax.ffi.register_ffi_target("atari_vector_xla_step", native.VectorXLAStep(), platform="cpu")
    if hasattr(native, "VectorXLAResetGPU"):
        jax.ffi.register_ffi_target(
            "atari_vector_xla_reset", native.VectorXLAResetGPU(), platform="CUDA"
        )
        jax.ffi.register_ffi_target(
            "atari_vector_xla_step", native.VectorXLAStepGPU(), platform="CUDA"
        )


def _ffi_reset(p: Protocol, n: int, handle: jax.Array, ids: jax.Array, seeds: jax.Array):
    """Resets emulators ``ids [k]`` of the pool of ``n`` (seed -1: each continues its
    RNG); the others report their current observation. Returns ``(handle, raw obs [n])``."""
    call = jax.ffi.ffi_call(
        "atari_vector_xla_reset",
        (
            jax.ShapeDtypeStruct((_HANDLE,), jnp.uint8),
            jax.ShapeDtypeStruct(p.raw_shape(n), jnp.uint8),
            *(jax.ShapeDtypeStruct((n,), jnp.int32) for _ in range(4)),
        ),
        has_side_effect=True,
    )
    out = call(handle, ids.astype(jnp.int32), seeds.astype(jnp.int32))
    return out[0], out[1]


def _ffi_step(p: Protocol, handle: jax.Array, actions: jax.Array):
    """One step of every emulator: ``(handle, raw obs, reward, terminated, truncated)``."""
    n = actions.shape[0]
    flag = jax.ShapeDtypeStruct((n,), jnp.bool_)
    ints = jax.ShapeDtypeStruct((n,), jnp.int32)
    call = jax.ffi.ffi_call(
        "atari_vector_xla_step",
        (
            jax.ShapeDtypeStruct((_HANDLE,), jnp.uint8),
            jax.ShapeDtypeStruct(p.raw_shape(n), jnp.uint8),
            ints,
            flag,
            flag,
            ints,
            ints,
            ints,
            ints,
        ),
        has_side_effect=True,
    )
    out = call(handle, actions.astype(jnp.int32), jnp.ones((n,), jnp.float32))
    return out[:5]


def _reset_finished(p: Protocol, handle: jax.Array, done: jax.Array, raw: jax.Array):
    """Resets exactly the emulators with ``done [n]`` inside the compiled program.

    The FFI reset takes a static number of distinct ids, so the ``k = sum(done)``
    finished ids (sorted) are reset in chunks of the powers of two in ``k``'s binary
    expansion, each under a ``lax.cond``: at most ``log2(n) + 1`` calls, none when
    nothing finished. Returns ``(handle, raw obs [n])``: fresh episodes where ``done``,
    ``raw`` elsewhere.
    """
    n = done.shape[0]
    ids = jnp.nonzero(done, size=n, fill_value=0)[0].astype(jnp.int32)
    k = jnp.sum(done, dtype=jnp.int32)
    offset = jnp.zeros((), jnp.int32)
    for bit in reversed(range(n.bit_length())):
        size = 1 << bit
        if size > n:
            continue

        def chunk(h, o, off=offset, size=size):
            part = jax.lax.dynamic_slice(ids, (off,), (size,))
            return _ffi_reset(p, n, h, part, jnp.full((size,), -1, jnp.int32))

        take = (k & size) != 0
        handle, raw = jax.lax.cond(take, chunk, lambda h, o: (h, o), handle, raw)
        offset = offset + jnp.where(take, size, 0)
    return handle, raw


def _reset_impl(seeds: jax.Array, *, p: Protocol):
    """Lowered once per compiled reset: a new pool of ``n`` emulators, all reset."""
    _register_targets()
    n = seeds.shape[0]
    pool = p.pool(n)
    _POOLS.append(pool)
    handle = jnp.asarray(np.frombuffer(pool.ale.handle(), dtype=np.uint8))
    handle, raw = _ffi_reset(p, n, handle, jnp.arange(n, dtype=jnp.int32), seeds)
    return handle, p.to_obs(raw)


def _step_impl(handle: jax.Array, actions: jax.Array, *, p: Protocol):
    """A step of the pool with same-step resets of the emulators that finished."""
    _register_targets()
    handle, raw, reward, terminated, truncated = _ffi_step(p, handle, actions)
    done = terminated | truncated
    final = p.to_obs(raw)
    handle, raw = _reset_finished(p, handle, done, raw)
    obs = p.to_obs(raw)
    return handle, obs, reward.astype(jnp.float32), terminated, truncated, final


reset_p = Primitive("ale_reset")
reset_p.multiple_results = True
step_p = Primitive("ale_step")
step_p.multiple_results = True


def _handle_aval() -> jax.core.ShapedArray:
    return jax.core.ShapedArray((_HANDLE,), jnp.uint8)


@reset_p.def_abstract_eval
def _reset_abstract(seeds, *, p: Protocol):
    n = seeds.shape[0]
    return _handle_aval(), jax.core.ShapedArray((n, *p.obs_shape), jnp.uint8)


@step_p.def_abstract_eval
def _step_abstract(handle, actions, *, p: Protocol):
    n = actions.shape[0]
    obs = jax.core.ShapedArray((n, *p.obs_shape), jnp.uint8)
    flags = jax.core.ShapedArray((n,), jnp.bool_)
    return _handle_aval(), obs, jax.core.ShapedArray((n,), jnp.float32), flags, flags, obs


def _eager(prim: Primitive):
    def impl(*args, **params):
        return jax.jit(functools.partial(prim.bind, **params))(*args)

    return impl


reset_p.def_impl(_eager(reset_p))
step_p.def_impl(_eager(step_p))
mlir.register_lowering(reset_p, mlir.lower_fun(_reset_impl, multiple_results=True))
mlir.register_lowering(step_p, mlir.lower_fun(_step_impl, multiple_results=True))


def _flat(x: jax.Array, dim: int | None, size: int) -> jax.Array:
    """``x`` with its vmapped axis ``dim`` (``None``: broadcast) merged into axis 0."""
    x = jnp.broadcast_to(x, (size, *x.shape)) if dim is None else jnp.moveaxis(x, dim, 0)
    return x.reshape((-1, *x.shape[2:]))


def _unflat(x: jax.Array, size: int) -> jax.Array:
    return x.reshape((size, -1, *x.shape[1:]))


def _handle_of(handle: jax.Array, dim: int | None) -> jax.Array:
    """The pool handle: every vmapped copy is the same 8 bytes."""
    return handle if dim is None else jnp.take(handle, 0, axis=dim)


def _reset_batch(args, dims, *, p: Protocol):
    (seeds,), (dim,) = args, dims
    size = seeds.shape[dim]
    handle, obs = reset_p.bind(_flat(seeds, dim, size), p=p)
    return (jnp.broadcast_to(handle, (size, _HANDLE)), _unflat(obs, size)), (0, 0)


def _step_batch(args, dims, *, p: Protocol):
    handle, actions = args
    hdim, adim = dims
    size = handle.shape[hdim] if adim is None else actions.shape[adim]
    outs = step_p.bind(_handle_of(handle, hdim), _flat(actions, adim, size), p=p)
    handle = jnp.broadcast_to(outs[0], (size, _HANDLE))
    return (handle, *(_unflat(x, size) for x in outs[1:])), (0,) * len(outs)


batching.primitive_batchers[reset_p] = _reset_batch
batching.primitive_batchers[step_p] = _step_batch


class AtariEnv(Env):
    """One ALE game as a functional env: see the module docstring for the protocol.

    ``EnvState.inner`` is the pool handle (8 bytes, ``[B, 8]`` once batched);
    observations are uint8 ``[size, size, channels]``; rewards are game scores.
    ``external_state`` tells the loops that the env resets itself at episode ends
    (``info["final_obs"]``) and that its state cannot be checkpointed; ``eval_explore``
    that evaluation samples the policy (a greedy one can stall a game).
    """

    external_state = True
    eval_explore = True

    def __init__(self, protocol: Protocol, num_actions: int):
        self.protocol = protocol
        self.observation_spec = Box(protocol.obs_shape, 0.0, 255.0, jnp.uint8)
        self.action_spec = Discrete(num_actions)
        self.max_episode_steps = protocol.max_frames // protocol.frame_skip

    def reset(self, key: jax.Array) -> EnvState:
        seed = jax.random.bits(key, (1,), jnp.uint32) >> 1  # a nonnegative int32 seed
        handle, obs = reset_p.bind(seed.astype(jnp.int32), p=self.protocol)
        return EnvState(
            inner=handle,
            obs=obs[0],
            reward=jnp.zeros((), jnp.float32),
            terminated=jnp.zeros((), jnp.bool_),
            truncated=jnp.zeros((), jnp.bool_),
            key=key,
            info={"final_obs": obs[0]},
        )

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = jnp.asarray(action, jnp.int32).reshape((1,))
        handle, obs, reward, terminated, truncated, final = step_p.bind(
            state.inner, action, p=self.protocol
        )
        return state.replace(
            inner=handle,
            obs=obs[0],
            reward=reward[0],
            terminated=terminated[0],
            truncated=truncated[0],
            info={"final_obs": final[0]},
        )

    def __repr__(self) -> str:
        return f"AtariEnv({self.protocol})"


@functools.cache
def _roms() -> dict[str, str]:
    """``{"Breakout": "breakout", ...}``: every ROM ale-py ships, by game name."""
    try:
        from ale_py import roms
        from ale_py.vector_env import AtariVectorEnv
    except ImportError as err:
        raise ImportError(f"ale/<game> needs ale-py: {INSTALL_HINT}") from err
    if not hasattr(AtariVectorEnv, "xla"):
        raise ImportError(f"ale/<game> needs AtariVectorEnv.xla: {INSTALL_HINT}")
    return {rom.title().replace("_", ""): rom for rom in roms.get_all_rom_ids()}


def names() -> list[str]:
    """Every ALE game (``"Breakout"``, ``"Pong"``, ...)."""
    return sorted(_roms())


@functools.cache
def _num_actions(rom: str) -> int:
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.loadROM(roms.get_rom_path(rom))
    return len(ale.getMinimalActionSet())


def args(game: str) -> dict[str, Any]:
    """The settings ``make`` takes as plain values (``--env-arg``)."""
    return call_args(make, skip=("game",))


def make(
    game: str,
    *,
    size: int = 84,
    grayscale: bool = True,
    stack: int = 4,
    frame_skip: int = 4,
    noop_max: int = 30,
    max_frames: int = 108_000,
    sticky: float = 0.0,
    num_threads: int = 0,
) -> AtariEnv:
    """The ``jaxrl.envs`` family adapter: ``ale/<game>`` (e.g. ``"Breakout"``).

    Raises:
      ValueError: a setting out of range, naming it.
      ImportError: ale-py is missing or too old, with the install command.
    """
    rom = _roms()[game]
    checks = {
        "size": size >= 8,
        "stack": stack >= 1,
        "frame_skip": frame_skip >= 1,
        "noop_max": noop_max >= 0,
        "max_frames": max_frames >= frame_skip,
        "sticky": 0.0 <= sticky <= 1.0,
        "num_threads": num_threads >= 0,
    }
    for name, ok in checks.items():
        if not ok:
            raise ValueError(f"ale/{game}: bad {name}={locals()[name]!r}")
    protocol = Protocol(
        rom, size, grayscale, stack, frame_skip, noop_max, max_frames, sticky, num_threads
    )
    return AtariEnv(protocol, _num_actions(rom))
