"""Wrappers: functions over environments that return environments.

Order used by the loops (inside out)::

    AutoReset(VmapWrapper(EpisodeLimit(env), num_envs))

``EpisodeLimit`` sets ``truncated`` (never together with ``terminated``);
``AutoReset`` resets finished envs and keeps the last observation of the episode
in ``info["final_obs"]`` so that learners can bootstrap through truncation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.envs.core import Env, EnvState
from jaxrl.normalize import RunningStats, normalize, update_stats


class Wrapper(Env):
    """Forwards everything to ``env``; subclasses override what they change."""

    def __init__(self, env: Env):
        self.env = env

    @property
    def observation_spec(self):
        return self.env.observation_spec

    @property
    def action_spec(self):
        return self.env.action_spec

    @property
    def max_episode_steps(self):
        return self.env.max_episode_steps

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    @property
    def batch_size(self):
        return self.env.batch_size

    @property
    def external_state(self) -> bool:
        return self.env.external_state

    @property
    def eval_explore(self) -> bool:
        return self.env.eval_explore

    def reset(self, key: jax.Array) -> EnvState:
        return self.env.reset(key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        return self.env.step(state, action)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


class EpisodeLimit(Wrapper):
    """Truncates episodes after ``max_steps`` steps.

    ``info["episode_step"]`` counts steps since reset. A step that terminates and
    hits the limit at once counts as terminated only: termination wins.
    """

    def __init__(self, env: Env, max_steps: int):
        super().__init__(env)
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.max_steps = int(max_steps)

    @property
    def max_episode_steps(self) -> int:
        return self.max_steps

    def reset(self, key: jax.Array) -> EnvState:
        state = self.env.reset(key)
        info = {**state.info, "episode_step": jnp.zeros((), jnp.int32)}
        return state.replace(info=info)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        steps = state.info["episode_step"] + 1
        nxt = self.env.step(state, action)
        truncated = jnp.logical_or(nxt.truncated, steps >= self.max_steps)
        truncated = jnp.logical_and(truncated, jnp.logical_not(nxt.terminated))
        return nxt.replace(truncated=truncated, info={**nxt.info, "episode_step": steps})


class RewardScale(Wrapper):
    """Multiplies every reward by ``scale`` (a constant); observations, done flags, keys
    and info are the wrapped env's. Evaluation returns come out scaled too: divide by
    ``scale`` to read them in the env's own reward."""

    def __init__(self, env: Env, scale: float):
        super().__init__(env)
        self.scale = float(scale)

    def reset(self, key: jax.Array) -> EnvState:
        state = self.env.reset(key)
        return state.replace(reward=state.reward * self.scale)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        nxt = self.env.step(state, action)
        return nxt.replace(reward=nxt.reward * self.scale)


class AutoReset(Wrapper):
    """Resets an env as soon as its episode ends (terminated or truncated).

    The returned state carries the reward and done flags of the finished
    transition, the first observation of the new episode in ``obs``, and the
    observation the transition actually reached in ``info["final_obs"]``.
    ``info["episode_return"]`` and ``info["episode_length"]`` accumulate the
    running episode; ``info["last_return"]`` / ``info["last_length"]`` keep the
    statistics of the most recently finished one.

    It wraps a single env or a batch (``AutoReset(VmapWrapper(env, B))``, every
    leaf ``[B, ...]``). On a batch, the resets (key splits and new initial states)
    are computed only on steps where some env finished (``lax.cond``), which on
    CPU saves most of the per-step cost of cheap envs; under an outer ``vmap``
    (seeds) the cond becomes a select and both branches run. A finished env's key
    is split for its reset; the keys of running envs are left alone, so each env's
    stream does not depend on the others.
    """

    def _reset_each(self, keys: jax.Array) -> EnvState:
        if self.env.batch_size is None:
            return self.env.reset(keys)
        return self.env.reset_each(keys)

    def reset(self, key: jax.Array) -> EnvState:
        state = self.env.reset(key)
        zeros = jnp.zeros_like(state.reward)
        info = {
            **state.info,
            "final_obs": state.obs,
            "episode_return": zeros,
            "episode_length": zeros.astype(jnp.int32),
            "last_return": zeros,
            "last_length": zeros.astype(jnp.int32),
        }
        return state.replace(info=info)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        own = ("final_obs", "episode_return", "episode_length", "last_return", "last_length")
        inner_info = {k: v for k, v in state.info.items() if k not in own}
        nxt = self.env.step(state.replace(info=inner_info), action)
        done = nxt.done

        def pick(a, b):
            return jnp.where(jnp.reshape(done, done.shape + (1,) * (a.ndim - done.ndim)), a, b)

        def with_resets() -> EnvState:
            batched = self.env.batch_size is not None
            keys = (jax.vmap(jax.random.split) if batched else jax.random.split)(nxt.key)
            key, reset_key = (jnp.take(keys, i, axis=int(batched)) for i in (0, 1))
            fresh = self._reset_each(reset_key)
            return nxt.replace(
                inner=jax.tree.map(pick, fresh.inner, nxt.inner),
                obs=pick(fresh.obs, nxt.obs),
                key=pick(key, nxt.key),
                info=jax.tree.map(pick, fresh.info, nxt.info),
            )

        if self.env.external_state:
            started, final_obs = nxt, nxt.info["final_obs"]
        else:
            started, final_obs = jax.lax.cond(jnp.any(done), with_resets, lambda: nxt), nxt.obs
        ep_return = state.info["episode_return"] + nxt.reward
        ep_length = state.info["episode_length"] + 1
        info = dict(started.info)
        info.update(
            final_obs=final_obs,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
            last_return=jnp.where(done, ep_return, state.info["last_return"]),
            last_length=jnp.where(done, ep_length, state.info["last_length"]),
        )
        return started.replace(info=info)


class VmapWrapper(Wrapper):
    """Steps ``num_envs`` independent copies of ``env``; every leaf gains ``[B]``."""

    def __init__(self, env: Env, num_envs: int):
        super().__init__(env)
        if num_envs <= 0:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.num_envs = int(num_envs)

    @property
    def batch_size(self) -> int:
        return self.num_envs

    def reset(self, key: jax.Array) -> EnvState:
        return self.reset_each(jax.random.split(key, self.num_envs))

    def reset_each(self, keys: jax.Array) -> EnvState:
        """Resets env ``i`` with ``keys[i]``; ``keys: [num_envs, 2]``."""
        return jax.vmap(self.env.reset)(keys)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        return jax.vmap(self.env.step)(state, action)


class ActionRepeat(Wrapper):
    """Repeats each action ``repeat`` times, summing rewards, stopping at episode end."""

    def __init__(self, env: Env, repeat: int):
        super().__init__(env)
        if repeat <= 0:
            raise ValueError(f"repeat must be positive, got {repeat}")
        self.repeat = int(repeat)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        def body(carry, _):
            st, total, done = carry
            nxt = self.env.step(st, action)
            # Once done, freeze the state so the episode does not run past its end.
            nxt = jax.tree.map(lambda a, b: jnp.where(done, a, b), st, nxt)
            total = total + jnp.where(done, 0.0, nxt.reward)
            return (nxt, total, jnp.logical_or(done, nxt.done)), None

        init = (state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.bool_))
        (nxt, total, _), _ = jax.lax.scan(body, init, None, length=self.repeat)
        return nxt.replace(reward=total)


class NormalizeObservation(Wrapper):
    """Normalises observations by running mean/variance kept in ``info["obs_stats"]``.

    Apply it outside ``VmapWrapper``: the statistics are shared by the whole batch
    and updated with every batch of observations. ``info["raw_obs"]`` keeps the
    unnormalised observation. Set ``update=False`` to freeze the statistics
    (evaluation with statistics copied from training).
    """

    def __init__(self, env: Env, update: bool = True):
        super().__init__(env)
        self.update = update

    def _apply(self, state: EnvState, stats: RunningStats) -> EnvState:
        batch_ndim = 0 if self.batch_size is None else 1
        if self.update:
            stats = update_stats(stats, state.obs, batch_ndim)
        info = {**state.info, "obs_stats": stats, "raw_obs": state.obs}
        if "final_obs" in info:
            info["final_obs"] = normalize(stats, info["final_obs"])
        return state.replace(obs=normalize(stats, state.obs), info=info)

    def reset(self, key: jax.Array) -> EnvState:
        state = self.env.reset(key)
        return self._apply(state, RunningStats.create(self.observation_spec.shape))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        stats = state.info["obs_stats"]
        inner_info = {k: v for k, v in state.info.items() if k not in ("obs_stats", "raw_obs")}
        nxt = self.env.step(state.replace(info=inner_info), action)
        return self._apply(nxt, stats)
