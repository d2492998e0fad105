"""``run``: one algorithm over vmapped seeds as one compiled program (``train``, which
entry points such as ``run_pbt`` call with a ``Transform``), or over a host env stepped
from Python (``run_host``)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl import compile_cache as xla_cache
from jaxrl import envs, loops, sweep
from jaxrl.loops import AlgoSpec
from jaxrl.runner.display import ProgressBar
from jaxrl.runner.engine import Executed, Program, execute, to_host
from jaxrl.runner.hooks import (
    Transform,
    absolute_fields,
    absolute_fn,
    run_hooks,
    time_evaluation,
    with_protocol,
)
from jaxrl.runner.options import Job, RunOptions, RunResult, check_protocol, prepare
from jaxrl.runner.outputs import Timing, make_summary, write_run


def run(algo: str | AlgoSpec | RunOptions, env: str | None = None, **fields: Any) -> RunResult:
    """Trains ``algo`` on ``env`` for ``seeds`` vmapped seeds and writes the run folder.

    ``fields`` are ``RunOptions``'s (``seeds``, ``steps``, ``config``, ``hparams``,
    ``out``, ``checkpoint_every``, ``resume``, ...); ``algo`` may itself be a
    ``RunOptions``. ``eval_protocol="absolute"`` also keeps the agent state of each seed's
    best evaluation and re-evaluates it at the end with 10x the episodes
    (``absolute_return`` in ``summary.json``). The evaluation hooks the spec declares
    (``spec.eval_hooks``, e.g. SRL's Frequency-Averaged Score) add their fields to the
    summary; ``summary.json`` reports the compilation cache's hits.

    Raises:
      ValueError: bad input (unknown names, bad values, a checkpoint of another run).
    """
    return train(RunOptions.of(algo, env, **fields))


def train(opts: RunOptions, transform: Transform | None = None) -> RunResult:
    """``run`` of ``opts``, its trainer wrapped by ``transform`` when given."""
    check_protocol(opts.eval_protocol, transform is None)
    job = prepare(opts)
    out = job.out_path()
    run_meta = job.meta(**(transform.meta if transform else {}))
    if envs.is_host(job.env_name):
        if opts.checkpoint_every or opts.resume or transform or opts.eval_protocol != "standard":
            raise ValueError(
                f"{job.env_name} is a host env (stepped from Python): checkpoints, resume, "
                "pbt and the absolute protocol need a compiled run"
            )
        return run_host(job, out)
    spec, cfg, hp, seeds = job.spec, job.cfg, job.hp, opts.seeds
    schedule = spec.schedule(cfg, job.env)
    bar = ProgressBar(schedule.total_steps, enabled=opts.progress)
    # Without a bar no host callback is compiled in: JAX never caches a program with one.
    trainer = spec.make_train(cfg, job.env, *bar.hooks())
    if transform is not None:
        trainer = transform.wrap(trainer, hp)
    trainer = with_protocol(trainer, opts.eval_protocol, run_meta)
    init = sweep.over_seeds(trainer.init, seeds, job.devices)

    def periods_fn(num: int):
        return sweep.over_seeds(functools.partial(trainer.run_periods, num=num), seeds, job.devices)

    keys = sweep.seed_keys(opts.seed, seeds)
    program = Program(init, periods_fn, keys, hp, schedule.num_evals, period_axis=1)
    done = execute(program, opts, out, run_meta, bar)
    if done.stopped_early:
        return RunResult({}, done.metrics, out, stopped_early=True)
    runs = seeds * (transform.runs_per_seed if transform else 1)
    measured = time_evaluation(
        trainer,
        lambda fn: sweep.over_seeds(fn, seeds, job.devices),
        done.state,
        hp,
        cfg.num_eval_envs,
    )
    speed = timing(done, schedule, runs, measured)
    summary = make_summary(job, schedule.total_steps, done.metrics, speed)
    summary.update(transform.meta if transform else {})
    if opts.eval_protocol == "absolute":
        fn = sweep.over_seeds(absolute_fn(trainer, cfg.num_eval_envs), seeds, job.devices)
        summary.update(absolute_fields(*to_host(fn(done.state, hp)), cfg.num_eval_envs))
    if spec.eval_hooks and transform is None:
        summary.update(run_hooks(job, schedule, done.state))
    if jax.process_index() == 0:
        write_run(out, summary, done.metrics, f"{spec.name} on {job.env_name}", opts.tensorboard)
    return RunResult(summary, done.metrics, out)


def timing(
    done: Executed, schedule: Any, runs: int, evaluation: tuple[float, float] | None = None
) -> Timing:
    """The ``Timing`` of an executed program of ``runs`` batched runs; ``evaluation``:
    ``time_evaluation``'s ``(seconds of one evaluation, measuring seconds)``."""
    periods = schedule.num_evals - done.start
    run_steps = periods * schedule.iters_per_eval * schedule.steps_per_iter * runs
    one_eval, measuring = evaluation if evaluation is not None else (None, None)
    return Timing(
        steps_per_second=run_steps / max(done.run_seconds, 1e-9),
        compile_seconds=done.compile_seconds,
        run_seconds=done.run_seconds,
        resumed_from=done.start if done.resumed else None,
        compiles=done.compiles,
        eval_seconds=None if one_eval is None else periods * one_eval,
        eval_timing_seconds=measuring,
    )


def run_host(job: Job, out: Path) -> RunResult:
    """``run`` on a host env: each seed steps its own env instance (env seed ``seed + i``)
    from Python and is evaluated every ``total_steps / num_evals`` steps on a second
    instance for ``num_eval_envs`` whole episodes. Writes the same run folder as ``run``.

    ``job`` comes from ``prepare``, whose ``resolve`` refuses agents that do not learn
    from sequence replay.
    """
    opts, spec, cfg, hp = job.opts, job.spec, job.cfg, job.hp
    data = spec.data(cfg, job.env)
    schedule = spec.schedule(cfg, job.env)
    keys = sweep.seed_keys(opts.seed, opts.seeds)
    per_seed, first_calls = [], 0.0
    start = time.perf_counter()
    with xla_cache.CompileStats() as compiles:
        for i in range(opts.seeds):
            kwargs = {"seed": opts.seed + i, **(opts.env_kwargs or {})}
            env = envs.make(job.env_name, **kwargs)
            eval_env = envs.make(job.env_name, **{**kwargs, "seed": opts.seed + i + 10_000})
            bar = ProgressBar(cfg.total_steps, enabled=opts.progress, desc=f"training (seed {i})")
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
                eval_max_steps=cfg.eval_max_steps,
                progress=bar,
            )
            bar.close()
            per_seed.append(metrics)
            first_calls += first_call
    wall = time.perf_counter() - start
    metrics = {k: np.stack([m[k] for m in per_seed]) for k in per_seed[0]}
    speed = Timing(
        steps_per_second=cfg.total_steps * opts.seeds / max(wall - first_calls, 1e-9),
        compile_seconds=first_calls,
        run_seconds=wall - first_calls,
        compiles=compiles,
    )
    summary = make_summary(job, cfg.total_steps, metrics, speed)
    summary["host_env"] = True
    if jax.process_index() == 0:
        write_run(out, summary, metrics, f"{spec.name} on {job.env_name}", opts.tensorboard)
    return RunResult(summary, metrics, out)
