"""Population-based training (Jaderberg et al. 2017) as a transform of a ``Trainer``.

``with_pbt(trainer, hparams, PBTConfig(...))`` returns a ``Trainer`` whose run is a
population of ``P`` members of the wrapped run (vmapped run states and hyperparameters).
Every ``ready`` evaluation periods, inside the compiled scan, the bottom ``fraction`` of
the population (by the latest evaluation return) copies the whole loop carry of a
random member of the top ``fraction`` (agent parameters, optimiser state, env states,
the replay buffer where there is one) and takes that member's hyperparameters, perturbed
(each multiplied by one of ``factors``, or resampled from its range with probability
``resample_prob``, then clipped to the range). It is one ``train(key, hparams)`` like any
other run, so seeds-vmap, sharding, chunks, checkpoints and bitwise resume apply as is.

Metrics per evaluation period: the wrapped run's scalars averaged over members, except
``eval_return`` (the best member's), ``env_steps`` (per member), ``finite`` (all
members); plus ``member_eval_return [P]``, ``member_<name> [P]`` (each perturbed
hyperparameter in use during the period) and ``member_parent [P]`` (int32: whose state
each member holds after the period's exploit step; itself when it was not replaced).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.core.domains import check_hparam, domain_of
from jaxrl.loops.run import RunState, Trainer


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    """Static PBT settings.

    Attributes:
      population: number of members ``P`` (>= 2).
      perturb: names of the hyperparameters to explore (fields of the agent's HParams).
      ready: evaluation periods between exploit/explore steps.
      fraction: the bottom ``fraction`` copies the top ``fraction`` (at least one member).
      factors: the explore multipliers, one drawn uniformly per hyperparameter.
      resample_prob: probability of resampling a hyperparameter from its range instead.
      ranges: ``name -> (low, high)``; the initial population is drawn from it
        (log-uniform when ``low > 0``, else uniform) and explored values are clipped to
        it, so they stay in the field's declared domain (``jaxrl.core.domains``), which
        a given range must lie in. Default: ``(v / 4, 4 v)`` around the base value ``v``
        (which must be > 0), cut to the domain (e.g. ``gamma``'s ``[0, 1]``).
    """

    population: int = 8
    perturb: tuple[str, ...] = ("lr",)
    ready: int = 2
    fraction: float = 0.25
    factors: tuple[float, ...] = (0.8, 1.25)
    resample_prob: float = 0.0
    ranges: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Plain values (for ``summary.json`` and checkpoint descriptions)."""
        d = dataclasses.asdict(self)
        d["perturb"] = list(self.perturb)
        d["factors"] = list(self.factors)
        d["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return d


def resolve_ranges(config: PBTConfig, hparams: Any) -> dict[str, tuple[float, float]]:
    """Each perturbed hyperparameter's ``(low, high)``, checked.

    Raises:
      ValueError: an unknown name, a bad population/ready/fraction/factor, an empty or
        inverted range, a range outside the field's declared domain, or a zero/negative
        base value without an explicit range.
    """
    names = [f.name for f in dataclasses.fields(hparams)]
    if config.population < 2:
        raise ValueError(f"pbt: population must be at least 2, got {config.population}")
    if config.ready <= 0:
        raise ValueError(f"pbt: ready must be positive, got {config.ready}")
    if not 0 < config.fraction <= 0.5:
        raise ValueError(f"pbt: fraction must be in (0, 0.5], got {config.fraction}")
    if not config.factors or any(f <= 0 for f in config.factors):
        raise ValueError(f"pbt: factors must be positive, got {config.factors}")
    if not 0 <= config.resample_prob <= 1:
        raise ValueError(f"pbt: resample_prob must be in [0, 1], got {config.resample_prob}")
    if not config.perturb:
        raise ValueError("pbt: name at least one hyperparameter to perturb")
    unknown = [n for n in (*config.perturb, *config.ranges) if n not in names]
    if unknown:
        raise ValueError(
            f"pbt: unknown hyperparameter(s) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    extra = [n for n in config.ranges if n not in config.perturb]
    if extra:
        raise ValueError(f"pbt: a range for {', '.join(extra)}, which is not perturbed")
    ranges = {}
    for name in config.perturb:
        if name in config.ranges:
            low, high = (float(x) for x in config.ranges[name])
            try:
                check_hparam(type(hparams), name, [low, high])
            except ValueError as err:
                raise ValueError(f"pbt: range of {name}: {err}") from None
        else:
            base = float(getattr(hparams, name))
            if base <= 0:
                raise ValueError(
                    f"pbt: {name}={base:g} needs an explicit range (the default is v/4..4v)"
                )
            low, high = domain_of(type(hparams), name).clip_range(base / 4, base * 4)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"pbt: range of {name} must be finite with low < high")
        ranges[name] = (low, high)
    return ranges


def _sample(key: jax.Array, low: float, high: float, shape: tuple[int, ...]) -> jax.Array:
    """Log-uniform in ``[low, high]`` when ``low > 0``, else uniform (clipped to the range,
    which float32 rounding of ``exp`` could leave)."""
    if low > 0:
        u = jax.random.uniform(key, shape, minval=math.log(low), maxval=math.log(high))
        return jnp.clip(jnp.exp(u), low, high)
    return jax.random.uniform(key, shape, minval=low, maxval=high)


def initial_hparams(key: jax.Array, hparams: Any, config: PBTConfig, ranges: dict) -> Any:
    """``[P]`` hyperparameters: the perturbed ones drawn from their ranges, the rest as given."""
    p = config.population
    out = jax.tree.map(lambda x: jnp.broadcast_to(x, (p, *jnp.shape(x))), hparams)
    keys = jax.random.split(key, len(config.perturb))
    values = {
        name: _sample(k, *ranges[name], (p,)).astype(jnp.float32)
        for name, k in zip(config.perturb, keys, strict=True)
    }
    return out.replace(**values)


def explore(key: jax.Array, hparams: Any, config: PBTConfig, ranges: dict) -> Any:
    """Perturbs each named hyperparameter of ``hparams [P]`` independently per member."""
    p = config.population
    factors = jnp.asarray(config.factors, jnp.float32)
    values = {}
    for name, k in zip(config.perturb, jax.random.split(key, len(config.perturb)), strict=True):
        k_factor, k_coin, k_new = jax.random.split(k, 3)
        low, high = ranges[name]
        old = getattr(hparams, name)
        moved = old * factors[jax.random.randint(k_factor, (p,), 0, len(config.factors))]
        fresh = _sample(k_new, low, high, (p,)).astype(jnp.float32)
        resample = jax.random.uniform(k_coin, (p,)) < config.resample_prob
        values[name] = jnp.clip(jnp.where(resample, fresh, moved), low, high)
    return hparams.replace(**values)


def exploit_sources(key: jax.Array, returns: jax.Array, fraction: float) -> jax.Array:
    """``[P]`` int32: for each member, the member whose state it takes (itself if kept).

    The bottom ``max(1, floor(P * fraction))`` members by ``returns`` (NaN
    counts as worst) each take a uniformly drawn member of as many top ones.
    """
    (p,) = returns.shape
    n = max(1, int(p * fraction))
    order = jnp.argsort(jnp.nan_to_num(returns, nan=-jnp.inf), stable=True)
    bottom, top = order[:n], order[p - n :]
    chosen = top[jax.random.randint(key, (n,), 0, n)]
    return jnp.arange(p, dtype=jnp.int32).at[bottom].set(chosen.astype(jnp.int32))


def exploit_explore(
    key: jax.Array,
    members: RunState,
    hparams: Any,
    returns: jax.Array,
    config: PBTConfig,
    ranges: dict,
) -> tuple[RunState, Any, jax.Array]:
    """One PBT step on a population: ``(members, hparams [P], sources [P])``.

    Replaced members get their source's whole loop carry and perturbed hyperparameters;
    they keep their own period keys, so their futures differ from the source's.
    """
    chex.assert_shape(returns, (config.population,))
    k_src, k_explore = jax.random.split(key)
    src = exploit_sources(k_src, returns, config.fraction)
    carry = jax.tree.map(lambda x: x[src], members.carry)
    copied = jax.tree.map(lambda x: x[src], hparams)
    perturbed = explore(k_explore, copied, config, ranges)
    replaced = src != jnp.arange(config.population)
    new_hp = jax.tree.map(
        lambda new, old: jnp.where(replaced.reshape(-1, *[1] * (old.ndim - 1)), new, old),
        perturbed,
        hparams,
    )
    return members.replace(carry=carry), new_hp, src


class PBTState(struct.PyTreeNode):
    """The population's run state.

    Attributes:
      members: the wrapped run's ``RunState`` with leaves ``[P, ...]``.
      hparams: the members' hyperparameters, leaves ``[P]``.
      period_keys: ``[num_evals, 2]`` keys of the exploit/explore steps.
      next_period: int32, the next evaluation period.
    """

    members: RunState
    hparams: Any
    period_keys: jax.Array
    next_period: jax.Array

    @property
    def agent_state(self) -> Any:
        return self.members.carry.agent_state


def _population_metrics(m: dict[str, jax.Array], hparams: Any, src: jax.Array, names) -> dict:
    ret = m["eval_return"]
    best = jnp.argmax(jnp.nan_to_num(ret, nan=-jnp.inf))
    out = {k: jnp.mean(v, axis=0) for k, v in m.items() if v.ndim == 1 and k != "finite"}
    out.update(
        {
            "eval_return": ret[best],
            "eval_return_std": m["eval_return_std"][best],
            "env_steps": m["env_steps"][0],
            "finite": jnp.all(m["finite"]),
            "member_eval_return": ret,
            "member_parent": src,
            **{f"member_{n}": getattr(hparams, n) for n in names},
        }
    )
    return out


def with_pbt(trainer: Trainer, hparams: Any, config: PBTConfig) -> Trainer:
    """A ``Trainer`` running ``trainer`` as a PBT population (see the module docstring).

    ``hparams`` (the base values) is used to check ``config`` and to build default
    ranges; the returned trainer's ``init(key, hparams)`` draws the population's
    perturbed hyperparameters and takes the others from its ``hparams``.
    """
    ranges = resolve_ranges(config, hparams)
    schedule = trainer.schedule
    p = config.population
    step_members = jax.vmap(functools.partial(trainer.run_periods, num=1))

    def init(key: jax.Array, base: Any) -> PBTState:
        k_members, k_hp, k_pbt = jax.random.split(key, 3)
        hp = initial_hparams(k_hp, base, config, ranges)
        members = jax.vmap(trainer.init)(jax.random.split(k_members, p), hp)
        period_keys = jax.random.split(k_pbt, schedule.num_evals)
        return PBTState(members, hp, period_keys, jnp.zeros((), jnp.int32))

    def run_periods(state: PBTState, base: Any, num: int) -> tuple[PBTState, dict]:
        del base  # the population carries its own hyperparameters

        def period(s: PBTState, xs):
            idx, key = xs
            members, m = step_members(s.members, s.hparams)
            m = jax.tree.map(lambda x: x[:, 0], m)  # [P, 1, ...] -> [P, ...]
            used = s.hparams
            ready = ((idx + 1) % config.ready == 0) & (idx + 1 < schedule.num_evals)
            members, hp, src = jax.lax.cond(
                ready,
                lambda: exploit_explore(key, members, s.hparams, m["eval_return"], config, ranges),
                lambda: (members, s.hparams, jnp.arange(p, dtype=jnp.int32)),
            )
            metrics = _population_metrics(m, used, src, config.perturb)
            return s.replace(members=members, hparams=hp, next_period=idx + 1), metrics

        first = state.next_period
        idxs = first + jnp.arange(num, dtype=jnp.int32)
        keys = jax.lax.dynamic_slice_in_dim(state.period_keys, first, num)
        return jax.lax.scan(period, state, (idxs, keys))

    return Trainer(schedule, init, run_periods)
