"""The one run driver: a registered algorithm over seeds as one compiled program, run in
chunks with checkpoints and exact resume, gathered from every host, written to a run
folder (metrics JSONL/CSV, summary JSON, curve, optional TensorBoard).

``jaxrl train`` is argument parsing plus ``run``; experiments and notebooks call it too::

    from jaxrl import runner
    result = runner.run("sac", env="pendulum", seeds=4, steps=20_000, out="runs/sac")
    result.summary["final_return_mean"], result.metrics["eval_return"]  # [seeds, evals]

A host env (``atari/<game>``, ``jaxrl.envs.is_host``) cannot run inside a compiled
program: ``run`` then steps it from Python, one seed after another, through
``jaxrl.loops.host_sequences`` (sequence-replay agents only) and writes the same folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl import agents, checkpoint, envs, loops, sweep
from jaxrl import compile_cache as xla_cache
from jaxrl import logging as jlog
from jaxrl.loops import AlgoSpec
from jaxrl.transforms import best

#: Evaluation protocols: ``standard`` (the last evaluation's return) and ``absolute``
#: (Gorsane et al. 2022: the best evaluation's agent re-evaluated with 10x the episodes).
PROTOCOLS = ("standard", "absolute")
ABSOLUTE_FACTOR = 10


class ProgressBar:
    """A tqdm bar fed from ``jax.debug.callback`` (host thread), throttled by tqdm."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "training (per seed)"):
        self._bar = None
        self._total = total
        self._enabled = enabled
        self._desc = desc
        self._lock = threading.Lock()

    def __call__(self, env_steps: Any) -> None:
        if not self._enabled:
            return
        n = int(np.max(np.asarray(env_steps)))
        with self._lock:
            if self._bar is None:  # created at the first call, so compile time is not counted
                from tqdm.auto import tqdm

                self._bar = tqdm(
                    total=self._total,
                    unit="step",
                    unit_scale=True,
                    mininterval=0.5,
                    dynamic_ncols=True,
                    desc=self._desc,
                )
            if n > self._bar.n:
                self._bar.update(n - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclasses.dataclass
class RunResult:
    """What ``run`` produced: ``summary`` (as in ``summary.json``), host ``metrics`` with
    leading ``[seeds, evals]``, the run folder, and ``stopped_early`` (``stop_after_chunks``)."""

    summary: dict[str, Any]
    metrics: dict[str, np.ndarray]
    out: Path
    stopped_early: bool = False


def to_host(tree: Any) -> Any:
    """NumPy copies of a pytree's arrays, gathered from every process under multi-host."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


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
      ValueError: for an unknown algorithm, env, field or value, or settings that
        cannot work, before any compilation.
    """
    spec = agents.get(algo) if isinstance(algo, str) else algo
    env_name = env or spec.default_env
    overrides = dict(config or {})
    if steps is not None:
        overrides["total_steps"] = steps
    env_obj = envs.make(env_name, **(env_kwargs or {}))
    try:
        cfg = spec.make_config(env_name, **overrides)
    except TypeError as err:
        raise ValueError(f"{spec.name}: {err}") from None
    hp = spec.default_hparams(**(hparams or {}))
    if envs.is_host(env_name) and not isinstance(spec.data(cfg, env_obj), loops.Sequences):
        raise ValueError(
            f"{env_name} is a host env (stepped from Python); only sequence-replay agents "
            f"(drama) train on it, not {spec.name}"
        )
    spec.validate(cfg, env_obj)
    return spec, env_name, env_obj, cfg, hp


def run(
    algo: str | AlgoSpec,
    env: str | None = None,
    *,
    seeds: int = 4,
    seed: int = 0,
    steps: int | None = None,
    config: dict[str, Any] | None = None,
    hparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    out: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
    tensorboard: bool = False,
    progress: bool = True,
    debug_nans: bool = False,
    stop_after_chunks: int | None = None,
    log: Callable[[str], None] | None = print,
    transform: Callable[[Any, Any], Any] | None = None,
    transform_meta: dict[str, Any] | None = None,
    runs_per_seed: int = 1,
    eval_protocol: str = "standard",
    compile_cache: bool = True,
) -> RunResult:
    """Trains ``algo`` on ``env`` for ``seeds`` vmapped seeds and writes the run folder.

    ``config`` / ``hparams`` override ``Config`` fields / hyperparameters (after the env's
    preset); ``env_kwargs`` go to ``jaxrl.envs.make``. With ``checkpoint_every`` the run
    goes in chunks of that many evaluation periods and checkpoints after each
    (``OUT/checkpoints``); ``resume`` continues the run in that folder from its newest
    checkpoint, bitwise as if never stopped.
    ``stop_after_chunks`` stops as if the process had been killed (for tests).
    ``transform(trainer, hparams) -> trainer`` wraps the run (e.g. ``run_pbt``'s
    population, ``runs_per_seed`` runs per seed); ``transform_meta`` describes it in
    checkpoints and ``summary.json``. ``eval_protocol="absolute"`` also keeps the agent
    state of each seed's best evaluation and re-evaluates it at the end with 10x the
    episodes (``absolute_return`` in ``summary.json``).
    The evaluation hooks the spec declares (``spec.eval_hooks``, e.g. SRL's
    Frequency-Averaged Score) add their fields to the summary.
    ``compile_cache=False`` turns the persistent compilation cache off
    (``jaxrl.compile_cache``); ``summary.json`` reports its hits either way.

    Raises:
      ValueError: bad input (unknown names, bad values, a checkpoint of another run).
    """
    if seeds <= 0:
        raise ValueError(f"seeds must be positive, got {seeds}")
    if steps is not None and steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if checkpoint_every is not None and checkpoint_every <= 0:
        raise ValueError(f"checkpoint_every must be positive, got {checkpoint_every}")
    check_protocol(eval_protocol, transform is None)
    spec, env_name, env_obj, cfg, hp = resolve(algo, env, config, hparams, steps, env_kwargs)
    xla_cache.configure(compile_cache)
    if debug_nans:
        jax.config.update("jax_debug_nans", True)
    stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
    out = Path(out or resume or f"runs/{spec.name}-{env_name.replace('/', '_')}-{stamp}")
    config_dict = {k: _plain(v) for k, v in dataclasses.asdict(cfg).items()}
    hparams_dict = {k: float(v) for k, v in dataclasses.asdict(hp).items()}
    # What a checkpoint must have been written for to be resumed by this call.
    run_meta = {
        "algo": spec.name,
        "env": env_name,
        "env_kwargs": env_kwargs or {},
        "seeds": seeds,
        "seed": seed,
        "config": config_dict,
        "hparams": hparams_dict,
        **(transform_meta or {}),
    }
    if envs.is_host(env_name):
        if checkpoint_every or resume or transform or eval_protocol != "standard":
            raise ValueError(
                f"{env_name} is a host env (stepped from Python): checkpoints, resume, pbt "
                "and the absolute protocol need a compiled run"
            )
        return run_host(
            spec, env_name, env_obj, cfg, hp, seeds, seed, out, env_kwargs, progress, tensorboard
        )
    schedule = spec.schedule(cfg, env_obj)
    bar = ProgressBar(schedule.total_steps, enabled=progress)
    # Without a bar no host callback is compiled in: JAX never caches a program with one.
    trainer = spec.make_train(cfg, env_obj, progress=bar if progress else None)
    if transform is not None:
        trainer = transform(trainer, hp)
    if eval_protocol == "absolute":
        trainer = best.with_best(trainer)
        run_meta["eval_protocol"] = eval_protocol
    num_evals = schedule.num_evals
    steps_per_period = schedule.iters_per_eval * schedule.steps_per_iter
    keys = sweep.seed_keys(seed, seeds)
    init = sweep.over_seeds(trainer.init, seeds)

    def periods_fn(num: int):
        return sweep.over_seeds(functools.partial(trainer.run_periods, num=num), seeds)

    done = execute(
        init,
        periods_fn,
        keys,
        hp,
        num_evals=num_evals,
        period_axis=1,
        out=out,
        run_meta=run_meta,
        checkpoint_every=checkpoint_every,
        resume=resume,
        stop_after_chunks=stop_after_chunks,
        bar=bar,
        log=log,
    )
    metrics, start = done.metrics, done.start
    if done.stopped_early:
        return RunResult({}, metrics, out, stopped_early=True)
    compile_s, run_s = done.compile_seconds, done.run_seconds

    sps = (num_evals - start) * steps_per_period * seeds * runs_per_seed / max(run_s, 1e-9)
    summary = make_summary(
        spec.name,
        env_name,
        seeds,
        seed,
        schedule.total_steps,
        metrics,
        steps_per_second=sps,
        compile_s=compile_s,
        run_s=run_s,
        resumed_from=start if resume else None,
        config_dict=config_dict,
        hparams_dict=hparams_dict,
        compiles=done.compiles,
    )
    summary.update(transform_meta or {})
    if eval_protocol == "absolute":
        fn = sweep.over_seeds(_absolute_fn(trainer, cfg.num_eval_envs), seeds)
        summary.update(_absolute_fields(*to_host(fn(done.state, hp)), cfg.num_eval_envs))
    if spec.eval_hooks and transform is None:
        agent = spec.make_agent(cfg, env_obj, hp, schedule)
        given = loops.HookInput(
            agent, done.state.agent_state, env_obj, env_name, cfg, seed, to_host
        )
        summary.update(hook_fields(spec, given))
    if jax.process_index() == 0:
        write_run(out, summary, metrics, f"{spec.name} on {env_name}", tensorboard)
    return RunResult(summary, metrics, out)


def run_host(
    spec: AlgoSpec,
    env_name: str,
    env_obj: Any,
    cfg: Any,
    hp: Any,
    seeds: int,
    seed: int,
    out: Path,
    env_kwargs: dict[str, Any] | None,
    progress: bool,
    tensorboard: bool,
) -> RunResult:
    """``run`` on a host env: each seed steps its own env instance (env seed ``seed + i``)
    from Python and is evaluated every ``total_steps / num_evals`` steps on a second
    instance for ``num_eval_envs`` whole episodes. Writes the same run folder as ``run``.

    ``cfg`` comes from ``resolve``, which refuses agents that do not learn from
    sequence replay.
    """
    data = spec.data(cfg, env_obj)
    schedule = spec.schedule(cfg, env_obj)
    config_dict = {k: _plain(v) for k, v in dataclasses.asdict(cfg).items()}
    hparams_dict = {k: float(v) for k, v in dataclasses.asdict(hp).items()}
    keys = sweep.seed_keys(seed, seeds)
    per_seed, first_calls = [], 0.0
    start = time.perf_counter()
    with xla_cache.CompileStats() as compiles:
        for i in range(seeds):
            kwargs = {"seed": seed + i, **(env_kwargs or {})}
            env = envs.make(env_name, **kwargs)
            eval_env = envs.make(env_name, **{**kwargs, "seed": seed + i + 10_000})
            bar = ProgressBar(cfg.total_steps, enabled=progress, desc=f"training (seed {i})")
            agent = spec.make_agent(cfg, env, hp, schedule)
            _, metrics, first_call = loops.host_sequences(
                data,
                agent,
                env,
                keys[i],
                cfg.total_steps,
                num_evals=cfg.num_evals,
                eval_env=eval_env,
                eval_episodes=cfg.num_eval_envs,
                progress=bar,
            )
            bar.close()
            per_seed.append(metrics)
            first_calls += first_call
    wall = time.perf_counter() - start
    metrics = {k: np.stack([m[k] for m in per_seed]) for k in per_seed[0]}
    summary = make_summary(
        spec.name,
        env_name,
        seeds,
        seed,
        cfg.total_steps,
        metrics,
        steps_per_second=cfg.total_steps * seeds / max(wall - first_calls, 1e-9),
        compile_s=first_calls,
        run_s=wall - first_calls,
        resumed_from=None,
        config_dict=config_dict,
        hparams_dict=hparams_dict,
        compiles=compiles,
    )
    summary["host_env"] = True
    if jax.process_index() == 0:
        write_run(out, summary, metrics, f"{spec.name} on {env_name}", tensorboard)
    return RunResult(summary, metrics, out)


def check_protocol(eval_protocol: str, plain: bool) -> None:
    """Raises ValueError for an unknown protocol, or ``absolute`` on a wrapped run."""
    if eval_protocol not in PROTOCOLS:
        raise ValueError(f"unknown eval protocol {eval_protocol!r}; known: {', '.join(PROTOCOLS)}")
    if eval_protocol == "absolute" and not plain:
        raise ValueError("the absolute eval protocol is for train and sweep runs, not pbt")


def _absolute_fn(trainer: Any, num_eval_envs: int) -> Callable:
    def fn(state: Any, hp: Any) -> tuple[jax.Array, jax.Array]:
        return best.absolute_return(trainer, state, hp, ABSOLUTE_FACTOR * num_eval_envs)

    return fn


def _absolute_fields(mean: np.ndarray, std: np.ndarray, num_eval_envs: int) -> dict[str, Any]:
    """``summary.json`` fields of the absolute protocol from per-seed ``mean``/``std``."""
    return {
        "eval_protocol": "absolute",
        "absolute_return": float(np.mean(mean)),
        "absolute_returns": [float(x) for x in np.ravel(mean)],
        "absolute_return_stds": [float(x) for x in np.ravel(std)],
        "absolute_episodes": ABSOLUTE_FACTOR * num_eval_envs,
    }


def make_summary(
    algo: str,
    env_name: str,
    seeds: int,
    seed: int,
    total_steps: int,
    metrics: dict[str, np.ndarray],
    *,
    steps_per_second: float,
    compile_s: float,
    run_s: float,
    resumed_from: int | None,
    config_dict: dict[str, Any],
    hparams_dict: dict[str, float],
    compiles: xla_cache.CompileStats | None = None,
) -> dict[str, Any]:
    """``summary.json`` of one run from its host ``metrics`` (leading ``[seeds, evals]``);
    ``compiles`` adds tracing and XLA seconds and the persistent cache's hits."""
    final = metrics["eval_return"][:, -1]
    finite = metrics["finite"]
    first_bad = None
    if not finite.all():
        first_bad = int(metrics["env_steps"][0][np.argmin(finite.all(axis=0))])
    return {
        "algo": algo,
        "env": env_name,
        "seeds": seeds,
        "seed": seed,
        "steps": total_steps,
        "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()),
        "final_return_min": float(final.min()),
        "final_return_max": float(final.max()),
        "final_returns": [float(x) for x in final],
        "steps_per_second": steps_per_second,
        "compile_seconds": compile_s,
        **(compiles.fields() if compiles is not None else {}),
        "run_seconds": run_s,
        "finite": first_bad is None,
        "first_nonfinite_step": first_bad,
        "resumed_from_period": resumed_from,
        "config": config_dict,
        "hparams": hparams_dict,
        "jax_backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "num_processes": jax.process_count(),
    }


def run_pbt(
    algo: str | AlgoSpec,
    env: str | None = None,
    *,
    population: int = 8,
    perturb: Sequence[str] = ("lr",),
    ready: int = 2,
    ranges: dict[str, tuple[float, float]] | None = None,
    resample_prob: float = 0.0,
    **kwargs: Any,
) -> RunResult:
    """``run`` of a PBT population (``jaxrl.transforms.pbt``) per seed.

    Takes ``run``'s keyword arguments besides the PBT settings. Writes ``run``'s files
    (``eval_return`` is the best member's), with ``summary.json`` also holding the PBT
    settings and each seed's best final member's hyperparameters, plus ``pbt.png``:
    each perturbed hyperparameter's trajectory per member (seed 0).

    Raises:
      ValueError: bad input, including bad PBT settings.
    """
    from jaxrl.transforms import pbt

    config = pbt.PBTConfig(
        population=population,
        perturb=tuple(perturb),
        ready=ready,
        ranges=dict(ranges or {}),
        resample_prob=resample_prob,
    )
    spec = agents.get(algo) if isinstance(algo, str) else algo
    base = spec.default_hparams(**(kwargs.get("hparams") or {}))
    pbt.resolve_ranges(config, base)  # fail before any compile

    def transform(trainer: Any, hp: Any) -> Any:
        return pbt.with_pbt(trainer, hp, config)

    result = run(
        spec,
        env,
        transform=transform,
        transform_meta={"pbt": config.describe()},
        runs_per_seed=population,
        **kwargs,
    )
    if result.stopped_early:
        return result
    m = result.metrics
    last = np.nan_to_num(m["member_eval_return"][:, -1], nan=-np.inf)  # [S, P]
    best = np.argmax(last, axis=1)
    result.summary["final_best_member_hparams"] = [
        {n: float(m[f"member_{n}"][s, -1, best[s]]) for n in perturb} for s in range(len(best))
    ]
    result.summary["member_final_returns"] = m["member_eval_return"][:, -1].tolist()
    result.summary["total_env_steps_per_seed"] = result.summary["steps"] * population
    if jax.process_index() == 0:
        jlog.write_json(result.out / "summary.json", result.summary)
        plot_population(result.out / "pbt.png", m, list(perturb))
    return result


def plot_population(path: Path, metrics: dict[str, np.ndarray], names: list[str]) -> None:
    """One panel per perturbed hyperparameter (and the members' returns): a line per
    member of seed 0 over env steps, from ``member_*`` metrics ``[S, E, P]``."""
    panels = [*names, "eval_return"]
    fig, axes = jlog.new_figure(1, len(panels), figsize=(4.5 * len(panels), 3.6), dpi=100)
    steps = metrics["env_steps"][0]
    for ax, name in zip(np.atleast_1d(axes), panels, strict=True):
        values = np.asarray(metrics[f"member_{name}"][0], np.float64)  # [E, P]
        for j in range(values.shape[1]):
            ax.step(steps, values[:, j], where="post", lw=1.2, alpha=0.8, label=f"member {j}")
        if name != "eval_return" and (values > 0).all():
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("env steps (per member)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="best")
    fig.suptitle("PBT population (seed 0): hyperparameters in use and evaluation returns")
    fig.tight_layout()
    jlog.save_figure(fig, path)


@dataclasses.dataclass
class SweepResult:
    """What ``run_sweep`` produced: ``summary`` (as in ``sweep.json``), host ``metrics``
    with leading ``[settings, seeds, evals]``, the sweep folder, and ``stopped_early``."""

    summary: dict[str, Any]
    metrics: dict[str, np.ndarray]
    out: Path
    stopped_early: bool = False


def run_sweep(
    algo: str | AlgoSpec,
    env: str | None = None,
    *,
    grid: dict[str, Sequence[float]],
    seeds: int = 4,
    seed: int = 0,
    steps: int | None = None,
    config: dict[str, Any] | None = None,
    hparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    out: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
    tensorboard: bool = False,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    log: Callable[[str], None] | None = print,
    eval_protocol: str = "standard",
    compile_cache: bool = True,
) -> SweepResult:
    """The cartesian ``grid`` of hyperparameters x ``seeds`` as one compiled program.

    Hyperparameters are traced, so every setting and seed runs in one vmapped call (the
    settings axis sharded over devices); chunks, checkpoints and resume as in ``run``.
    Writes one sub-folder per setting (the files of ``run``) and, at the top,
    ``sweep.json`` / ``sweep.md`` / ``sweep.png``: per setting the final-return IQM over
    seeds with a 95% bootstrap CI, ranked. ``eval_protocol="absolute"`` and
    ``compile_cache`` as in ``run``.

    Raises:
      ValueError: bad input, including an unknown, repeated or empty grid axis, a
        non-number value, or a ``Config`` field (which needs separate compiles).
    """
    if seeds <= 0:
        raise ValueError(f"seeds must be positive, got {seeds}")
    if steps is not None and steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if checkpoint_every is not None and checkpoint_every <= 0:
        raise ValueError(f"checkpoint_every must be positive, got {checkpoint_every}")
    check_protocol(eval_protocol, True)
    spec = agents.get(algo) if isinstance(algo, str) else algo
    grid = sweep.check_grid(grid, spec.config, spec.hparams)
    spec, env_name, env_obj, cfg, hp = resolve(spec, env, config, hparams, steps, env_kwargs)
    if envs.is_host(env_name):
        raise ValueError(
            f"{env_name} is a host env (stepped from Python): sweep one train at a time"
        )
    xla_cache.configure(compile_cache)
    stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
    out = Path(out or resume or f"runs/sweep-{spec.name}-{env_name.replace('/', '_')}-{stamp}")
    batched_hp, settings = sweep.grid(hp, **grid)
    num_settings = len(settings)
    config_dict = {k: _plain(v) for k, v in dataclasses.asdict(cfg).items()}
    hparams_dict = {k: float(v) for k, v in dataclasses.asdict(hp).items()}
    run_meta = {
        "algo": spec.name,
        "env": env_name,
        "env_kwargs": env_kwargs or {},
        "seeds": seeds,
        "seed": seed,
        "config": config_dict,
        "hparams": hparams_dict,
        "grid": {k: list(v) for k, v in grid.items()},
    }
    schedule = spec.schedule(cfg, env_obj)
    bar = ProgressBar(schedule.total_steps, enabled=progress, desc="sweep (per run)")
    trainer = spec.make_train(cfg, env_obj, progress=bar if progress else None)
    if eval_protocol == "absolute":
        trainer = best.with_best(trainer)
        run_meta["eval_protocol"] = eval_protocol
    num_evals = schedule.num_evals
    keys = sweep.seed_keys(seed, seeds)
    init = sweep.over_grid(trainer.init, seeds, num_settings, first_batched=False)

    def periods_fn(num: int):
        fn = functools.partial(trainer.run_periods, num=num)
        return sweep.over_grid(fn, seeds, num_settings, first_batched=True)

    done = execute(
        init,
        periods_fn,
        keys,
        batched_hp,
        num_evals=num_evals,
        period_axis=2,
        out=out,
        run_meta=run_meta,
        checkpoint_every=checkpoint_every,
        resume=resume,
        stop_after_chunks=stop_after_chunks,
        bar=bar,
        log=log,
    )
    metrics = done.metrics
    if done.stopped_early:
        return SweepResult({}, metrics, out, stopped_early=True)
    steps_per_period = schedule.iters_per_eval * schedule.steps_per_iter
    runs = num_settings * seeds
    sps = (num_evals - done.start) * steps_per_period * runs / max(done.run_seconds, 1e-9)
    rows = sweep.rank_settings(settings, metrics["eval_return"][:, :, -1])
    names = [sweep.setting_name(i, s) for i, s in enumerate(settings)]
    absolute = None
    if eval_protocol == "absolute":
        fn = sweep.over_grid(_absolute_fn(trainer, cfg.num_eval_envs), seeds, num_settings, True)
        absolute = to_host(fn(done.state, batched_hp))  # ([H, S], [H, S])
    for row in rows:
        row["dir"] = names[row["index"]]
        if absolute is not None:
            i = row["index"]
            row.update(_absolute_fields(absolute[0][i], absolute[1][i], cfg.num_eval_envs))
    title = f"sweep: {spec.name} on {env_name}, {seeds} seeds x {schedule.total_steps:,} steps"
    summary = {
        "algo": spec.name,
        "env": env_name,
        "seeds": seeds,
        "seed": seed,
        "steps": schedule.total_steps,
        "grid": run_meta["grid"],
        "num_settings": num_settings,
        "compile_seconds": done.compile_seconds,
        **done.compiles.fields(),
        "run_seconds": done.run_seconds,
        "steps_per_second": sps,
        "resumed_from_period": done.start if resume else None,
        "best": rows[0]["hparams"],
        "config": config_dict,
        "hparams": hparams_dict,
        "jax_backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "settings": rows,
    }
    if jax.process_index() == 0:
        for i, setting in enumerate(settings):
            m = jax.tree.map(lambda x, i=i: x[i], metrics)
            setting_summary = make_summary(
                spec.name,
                env_name,
                seeds,
                seed,
                schedule.total_steps,
                m,
                steps_per_second=sps / num_settings,
                compile_s=done.compile_seconds,
                run_s=done.run_seconds,
                resumed_from=done.start if resume else None,
                config_dict=config_dict,
                hparams_dict={**hparams_dict, **setting},
                compiles=done.compiles,
            )
            if absolute is not None:
                fields = _absolute_fields(absolute[0][i], absolute[1][i], cfg.num_eval_envs)
                setting_summary.update(fields)
            label = ", ".join(f"{k}={v:g}" for k, v in setting.items())
            write_run(
                out / names[i],
                setting_summary,
                m,
                f"{spec.name} on {env_name}: {label}",
                tensorboard,
            )
        jlog.write_json(out / "sweep.json", summary)
        jlog.atomic_write(out / "sweep.md", sweep.sweep_markdown(title, rows))
        sweep.plot_sweep(out / "sweep.png", title, rows)
    return SweepResult(summary, metrics, out)


def sweep_table(result: SweepResult, top: int = 10) -> str:
    """The ranked lines ``jaxrl sweep`` prints at the end."""
    s = result.summary
    lines = [
        f"{s['num_settings']} settings x {s['seeds']} seeds x {s['steps']:,} steps: "
        f"{s['compiles']} XLA compile(s), {s['compile_seconds']:.1f} s compiling, "
        f"{s['run_seconds']:.1f} s running",
        f"compile cache: {xla_cache.describe(s['compile_cache'])}",
    ]
    for r in s["settings"][:top]:
        label = ", ".join(f"{k}={v:g}" for k, v in r["hparams"].items())
        lines.append(
            f"{r['rank']:>3}. {label:<40} IQM {r['iqm']:9.1f}  "
            f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        )
    lines.append(f"wrote {result.out / 'sweep.json'}, sweep.md, sweep.png")
    return "\n".join(lines)


@dataclasses.dataclass
class Executed:
    """What ``execute`` returns: host ``metrics``, the device ``state`` at the end, the
    period resumed from, compile and run seconds, and whether it stopped early; ``compiles``
    counts the up-front compiles (tracing and XLA seconds, persistent-cache hits)."""

    metrics: dict[str, np.ndarray]
    state: Any
    start: int
    compile_seconds: float
    run_seconds: float
    stopped_early: bool
    compiles: xla_cache.CompileStats


def execute(
    init: Callable[[jax.Array, Any], Any],
    periods_fn: Callable[[int], Callable[[Any, Any], tuple[Any, Any]]],
    keys: jax.Array,
    hp: Any,
    *,
    num_evals: int,
    period_axis: int,
    out: Path,
    run_meta: dict[str, Any],
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
    stop_after_chunks: int | None = None,
    bar: ProgressBar | None = None,
    log: Callable[[str], None] | None = print,
) -> Executed:
    """Runs batched chunks of evaluation periods with checkpoints and exact resume.

    ``init(keys, hp) -> state`` and ``periods_fn(num)(state, hp) -> (state, metrics)`` are
    the batched (vmapped, jitted) ``Trainer.init`` / ``run_periods``; metrics carry the
    period axis at ``period_axis`` (1 for ``[seeds, evals]``, 2 for ``[settings, seeds,
    evals]``). Every function is compiled before the first chunk runs.
    """
    chunk = min(checkpoint_every or num_evals, num_evals)
    state_like = jax.eval_shape(init, keys, hp)
    start, metrics, state = 0, None, None
    if resume:
        ckpt_dir = Path(resume) / "checkpoints"
        description = checkpoint.read_meta(ckpt_dir)
        checkpoint.check_run(description, run_meta)  # before any tracing: fast
        start = description["step"]
        metric_like = jax.eval_shape(periods_fn(1), state_like, hp)[1]
        a = period_axis
        like = {
            "state": state_like,
            "metrics": jax.tree.map(
                lambda m: jax.ShapeDtypeStruct((*m.shape[:a], start, *m.shape[a + 1 :]), m.dtype),
                metric_like,
            ),
        }
        restored = checkpoint.restore(ckpt_dir, start, like, run_meta)
        state, metrics = restored["state"], restored["metrics"]

    # Compile every function the run needs up front: init, a chunk, the last shorter chunk.
    t0 = time.perf_counter()
    sizes = {min(chunk, num_evals - p) for p in range(start, num_evals, chunk)}
    with xla_cache.CompileStats() as compiles:
        compiled = {k: periods_fn(k).lower(state_like, hp).compile() for k in sizes}
        if not resume:
            state = init.lower(keys, hp).compile()(keys, hp)
    compile_s = time.perf_counter() - t0

    def concat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x, y], axis=period_axis)

    t0 = time.perf_counter()
    period, chunks_run = start, 0
    while period < num_evals:
        num = min(chunk, num_evals - period)
        state, new = compiled[num](state, hp)
        new = to_host(jax.block_until_ready(new))
        metrics = new if metrics is None else jax.tree.map(concat, metrics, new)
        period, chunks_run = period + num, chunks_run + 1
        if checkpoint_every or resume:
            tree = {"state": to_host(state), "metrics": metrics}
            if jax.process_index() == 0:
                checkpoint.save(out / "checkpoints", period, tree, run_meta)
        if stop_after_chunks is not None and chunks_run >= stop_after_chunks:
            if bar is not None:
                bar.close()
            if log is not None:
                log(f"stopped after {chunks_run} chunk(s) at period {period} of {num_evals}")
            return Executed(metrics, state, start, compile_s, 0.0, True, compiles)
    run_s = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return Executed(metrics, state, start, compile_s, run_s, False, compiles)


def hook_fields(spec: AlgoSpec, given: loops.HookInput) -> dict[str, Any]:
    """The summary fields of every evaluation hook ``spec`` declares, in order."""
    fields: dict[str, Any] = {}
    for hook in spec.eval_hooks:
        fields.update(hook.run(given))
    return fields


def hook_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The table lines of the evaluation hooks of the summary's algorithm."""
    name = summary.get("algo")
    if name not in agents.names():
        return []
    return [row for hook in agents.get(name).eval_hooks for row in hook.rows(summary)]


def write_run(
    out: Path, summary: dict, metrics: dict[str, np.ndarray], title: str, tensorboard: bool
) -> None:
    """The run folder's files: metrics.jsonl/.csv, summary.json, curve.png, tb/."""
    rows = jlog.metric_rows(metrics)
    jlog.write_jsonl(out / "metrics.jsonl", rows)
    jlog.write_csv(out / "metrics.csv", rows)
    jlog.write_json(out / "summary.json", summary)
    jlog.plot_curve(out / "curve.png", metrics["env_steps"][0], metrics["eval_return"], title=title)
    if tensorboard:
        jlog.write_tensorboard(out / "tb", metrics)


def compile_line(summary: dict[str, Any]) -> str:
    """``compile_seconds`` and, when recorded, its tracing and XLA parts."""
    line = f"{summary['compile_seconds']:.1f} s"
    if "trace_seconds" in summary:
        line += (
            f" (tracing and lowering {summary['trace_seconds']:.1f} s, "
            f"XLA {summary['backend_compile_seconds']:.1f} s)"
        )
    return line


def summary_table(result: RunResult) -> str:
    """The few lines ``jaxrl train`` prints at the end of a run."""
    s = result.summary
    rows = [
        ("algo / env", f"{s['algo']} / {s['env']}"),
        ("seeds x steps", f"{s['seeds']} x {s['steps']:,}"),
        (
            "final return",
            f"{s['final_return_mean']:.1f} +- {s['final_return_std']:.1f} "
            f"(min {s['final_return_min']:.1f}, max {s['final_return_max']:.1f})",
        ),
        *(
            [("absolute return", f"{s['absolute_return']:.1f} ({s['absolute_episodes']} episodes)")]
            if "absolute_return" in s
            else []
        ),
        *hook_rows(s),
        ("compile", compile_line(s)),
        *(
            [("compile cache", xla_cache.describe(s["compile_cache"]))]
            if "compile_cache" in s
            else []
        ),
        (
            "run",
            f"{s['run_seconds']:.1f} s, {s['steps_per_second']:,.0f} env steps/s (all seeds)",
        ),
        ("output", str(result.out)),
    ]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    return "\n".join([line, *(f"{k:<{width}} | {v}" for k, v in rows), line])


def describe(names: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
    """``(name, action kinds, default env, summary)`` for each registered algorithm."""
    rows = []
    for name in names or agents.names():
        spec = agents.get(name)
        rows.append((name, ",".join(spec.action_kinds), spec.default_env, spec.summary))
    return rows
