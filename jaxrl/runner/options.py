"""What a run is asked to do (``RunOptions``, validated once), what it produced
(``RunResult``), and the run resolved against the registry (``Job``)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl import agents, envs, loops
from jaxrl import compile_cache as xla_cache
from jaxrl.loops import AlgoSpec

#: Evaluation protocols: ``standard`` (the last evaluation's return) and ``absolute``
#: (Gorsane et al. 2022: the best evaluation's agent re-evaluated with 10x the episodes).
PROTOCOLS = ("standard", "absolute")


def check_counts(
    seeds: int | None, steps: int | None, checkpoint_every: int | None, flags: bool = False
) -> None:
    """The one check of a run's counts; ``flags`` names them as command-line flags.

    Raises:
      ValueError: ``seeds must be positive, got 0`` (``--seeds ...`` with ``flags``).
    """
    for name, value in (("seeds", seeds), ("steps", steps), ("checkpoint_every", checkpoint_every)):
        if value is not None and value <= 0:
            label = "--" + name.replace("_", "-") if flags else name
            raise ValueError(f"{label} must be positive, got {value}")


def check_protocol(eval_protocol: str, plain: bool) -> None:
    """Raises ValueError for an unknown protocol, or ``absolute`` on a wrapped run."""
    if eval_protocol not in PROTOCOLS:
        raise ValueError(f"unknown eval protocol {eval_protocol!r}; known: {', '.join(PROTOCOLS)}")
    if eval_protocol == "absolute" and not plain:
        raise ValueError("the absolute eval protocol is for train and sweep runs, not pbt")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """One train, sweep or pbt run: ``algo`` on ``env`` (default: the algorithm's own) for
    ``seeds`` vmapped seeds derived from ``seed``.

    ``steps`` sets ``total_steps``; ``config`` / ``hparams`` override ``Config`` fields /
    hyperparameters (after the env's preset); ``env_kwargs`` go to ``jaxrl.envs.make``.
    ``out`` is the run folder (default ``runs/ALGO-ENV-TIME``). With ``checkpoint_every``
    the run goes in chunks of that many evaluation periods and checkpoints after each;
    ``resume`` continues the run in that folder from its newest checkpoint, bitwise.
    ``stop_after_chunks`` stops as if the process had been killed (for tests); ``log``
    prints such notes (``None``: silent). ``eval_protocol`` is one of ``PROTOCOLS``;
    ``compile_cache=False`` turns the persistent compilation cache off.

    Raises:
      ValueError: a count that is not positive, or an unknown protocol.
    """

    algo: str | AlgoSpec
    env: str | None = None
    seeds: int = 4
    seed: int = 0
    steps: int | None = None
    config: dict[str, Any] | None = None
    hparams: dict[str, Any] | None = None
    env_kwargs: dict[str, Any] | None = None
    out: str | Path | None = None
    checkpoint_every: int | None = None
    resume: str | Path | None = None
    tensorboard: bool = False
    progress: bool = True
    debug_nans: bool = False
    eval_protocol: str = "standard"
    compile_cache: bool = True
    stop_after_chunks: int | None = None
    log: Callable[[str], None] | None = dataclasses.field(default=print, compare=False)

    def __post_init__(self) -> None:
        check_counts(self.seeds, self.steps, self.checkpoint_every)
        check_protocol(self.eval_protocol, True)

    @classmethod
    def of(cls, algo: str | AlgoSpec | RunOptions, env: str | None = None, **fields: Any):
        """``RunOptions(algo, env, **fields)``, or ``algo`` itself (``fields`` replaced)
        when it already is one: what ``run``, ``run_sweep`` and ``run_pbt`` accept."""
        if not isinstance(algo, RunOptions):
            return cls(algo, env, **fields)
        if env is not None:
            fields["env"] = env
        return dataclasses.replace(algo, **fields) if fields else algo


@dataclasses.dataclass
class RunResult:
    """What a run produced: ``summary`` (as in ``summary.json``, or ``sweep.json`` for a
    sweep), host ``metrics`` with leading ``[seeds, evals]`` (``[settings, seeds, evals]``
    for a sweep), the run folder, and ``stopped_early`` (``stop_after_chunks``)."""

    summary: dict[str, Any]
    metrics: dict[str, np.ndarray]
    out: Path
    stopped_early: bool = False


#: ``run_sweep``'s result: the same four fields, one more leading axis in ``metrics``.
SweepResult = RunResult


def resolve(
    algo: str | AlgoSpec,
    env: str | None = None,
    config: dict[str, Any] | None = None,
    hparams: dict[str, Any] | None = None,
    steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[AlgoSpec, str, Any, Any, Any]:
    """``(spec, env_name, env, Config, HParams)`` from names and overrides, validated.

    Raises:
      ValueError: for an unknown algorithm, env, field or value (a hyperparameter outside
        its declared domain), an env without an episode limit, or settings that cannot
        work, before any compilation.
    """
    spec = agents.get(algo) if isinstance(algo, str) else algo
    env_name = env or spec.default_env
    overrides = dict(config or {})
    if steps is not None:
        overrides["total_steps"] = steps
    hp = spec.default_hparams(**(hparams or {}))  # declared domains, before the env is built
    env_obj = envs.make(env_name, **(env_kwargs or {}))
    if not envs.is_host(env_name) and env_obj.max_episode_steps is None:
        raise ValueError(
            f"{env_name} has no episode limit of its own, which evaluation needs: give one "
            "with --env-arg episode_length=N (from Python: env_kwargs={'episode_length': N})"
        )
    try:
        cfg = spec.make_config(env_name, **overrides)
    except TypeError as err:
        raise ValueError(f"{spec.name}: {err}") from None
    if envs.is_host(env_name) and not isinstance(spec.data(cfg, env_obj), loops.Sequences):
        raise ValueError(
            f"{env_name} is a host env (stepped from Python); only sequence-replay agents "
            f"(drama) train on it, not {spec.name}"
        )
    spec.validate(cfg, env_obj)
    return spec, env_name, env_obj, cfg, hp


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclasses.dataclass(frozen=True)
class Job:
    """A run resolved: its options, spec, env name and object, ``Config`` and hparams."""

    opts: RunOptions
    spec: AlgoSpec
    env_name: str
    env: Any
    cfg: Any
    hp: Any

    @property
    def config_dict(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in dataclasses.asdict(self.cfg).items()}

    @property
    def hparams_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in dataclasses.asdict(self.hp).items()}

    @property
    def devices(self) -> list | None:
        """The devices the seeds shard over: one for an env with ``external_state`` (its
        emulator pool is one resource), else ``None`` (all)."""
        return jax.devices()[:1] if getattr(self.env, "external_state", False) else None

    def head(self, steps: int) -> dict[str, Any]:
        """The first fields of a summary."""
        o = self.opts
        return {
            "algo": self.spec.name,
            "env": self.env_name,
            "seeds": o.seeds,
            "seed": o.seed,
            "steps": steps,
        }

    def meta(self, **extra: Any) -> dict[str, Any]:
        """What a checkpoint must have been written for to be resumed by this run."""
        o = self.opts
        return {
            "algo": self.spec.name,
            "env": self.env_name,
            "env_kwargs": o.env_kwargs or {},
            "seeds": o.seeds,
            "seed": o.seed,
            "config": self.config_dict,
            "hparams": self.hparams_dict,
            **extra,
        }

    def out_path(self, prefix: str = "") -> Path:
        """``out``, else ``resume``, else ``runs/PREFIXALGO-ENV-TIME``."""
        o = self.opts
        stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
        default = f"runs/{prefix}{self.spec.name}-{self.env_name.replace('/', '_')}-{stamp}"
        return Path(o.out or o.resume or default)


def prepare(opts: RunOptions) -> Job:
    """``resolve`` the options, then set the compilation cache and ``debug_nans``.

    Raises:
      ValueError: also for checkpoints or resume on an env with ``external_state``.
    """
    o = opts
    job = Job(o, *resolve(o.algo, o.env, o.config, o.hparams, o.steps, o.env_kwargs))
    if getattr(job.env, "external_state", False) and (o.checkpoint_every or o.resume):
        raise ValueError(
            f"{job.env_name}: the emulators' state lives outside JAX (ale-py's C++ pool), "
            "so a checkpoint cannot hold it; --checkpoint-every and --resume are refused "
            "for this env (run without them)"
        )
    xla_cache.configure(opts.compile_cache)
    if opts.debug_nans:
        jax.config.update("jax_debug_nans", True)
    return job
