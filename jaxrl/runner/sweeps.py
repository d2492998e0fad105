"""``run_sweep``: a grid of hyperparameters x seeds as one compiled program."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import agents, envs, sweep
from jaxrl.loops import AlgoSpec
from jaxrl.runner.display import ProgressBar
from jaxrl.runner.engine import Program, execute, to_host
from jaxrl.runner.entry import timing
from jaxrl.runner.hooks import absolute_fields, absolute_fn, time_evaluation, with_protocol
from jaxrl.runner.options import RunOptions, SweepResult, prepare
from jaxrl.runner.outputs import eval_bound, make_summary, write_run, write_sweep


def run_sweep(
    algo: str | AlgoSpec | RunOptions,
    env: str | None = None,
    *,
    grid: dict[str, Sequence[float]],
    **fields: Any,
) -> SweepResult:
    """The cartesian ``grid`` of hyperparameters x ``seeds`` as one compiled program.

    Hyperparameters are traced, so every setting and seed runs in one vmapped call (the
    settings axis sharded over devices); ``fields`` (``RunOptions``'s), chunks,
    checkpoints, resume, ``eval_protocol`` and ``compile_cache`` as in ``run``.
    Writes one sub-folder per setting (the files of ``run``) and, at the top,
    ``sweep.json`` / ``sweep.md`` / ``sweep.png``: per setting the final-return IQM over
    seeds with a 95% bootstrap CI, ranked.

    Raises:
      ValueError: bad input, including an unknown, repeated or empty grid axis, a
        non-number value, or a ``Config`` field (which needs separate compiles).
    """
    return sweep_options(RunOptions.of(algo, env, **fields), grid)


def sweep_options(opts: RunOptions, grid: dict[str, Sequence[float]]) -> SweepResult:
    """``run_sweep`` of ``opts`` over ``grid``."""
    spec = agents.get(opts.algo) if isinstance(opts.algo, str) else opts.algo
    grid = sweep.check_grid(grid, spec.config, spec.hparams)
    job = prepare(opts)
    if envs.is_host(job.env_name):
        raise ValueError(
            f"{job.env_name} is a host env (stepped from Python): sweep one train at a time"
        )
    out = job.out_path("sweep-")
    batched_hp, settings = sweep.grid(job.hp, **grid)
    num_settings, seeds, cfg = len(settings), opts.seeds, job.cfg
    run_meta = job.meta(grid={k: list(v) for k, v in grid.items()})
    schedule = spec.schedule(cfg, job.env)
    bar = ProgressBar(schedule.total_steps, enabled=opts.progress, desc="sweep (per run)")
    trainer = spec.make_train(cfg, job.env, *bar.hooks())
    trainer = with_protocol(trainer, opts.eval_protocol, run_meta)
    # An env with external state resets its emulators only along vmapped inputs: give
    # every setting its own copy of the seed keys so each gets its own emulators.
    own_keys = getattr(job.env, "external_state", False)
    init = sweep.over_grid(trainer.init, seeds, num_settings, own_keys, job.devices)

    def periods_fn(num: int):
        fn = functools.partial(trainer.run_periods, num=num)
        return sweep.over_grid(fn, seeds, num_settings, True, job.devices)

    keys = sweep.seed_keys(opts.seed, seeds)
    if own_keys:
        keys = jnp.broadcast_to(keys, (num_settings, *keys.shape))
    program = Program(init, periods_fn, keys, batched_hp, schedule.num_evals, period_axis=2)
    done = execute(program, opts, out, run_meta, bar)
    metrics = done.metrics
    if done.stopped_early:
        return SweepResult({}, metrics, out, stopped_early=True)
    batched = functools.partial(sweep.over_grid, num_seeds=seeds, batch_size=num_settings)
    measured = time_evaluation(
        trainer,
        lambda fn: batched(fn, first_batched=True, devices=job.devices),
        done.state,
        batched_hp,
        cfg.num_eval_envs,
    )
    speed = timing(done, schedule, num_settings * seeds, measured)
    rows = sweep.rank_settings(settings, metrics["eval_return"][:, :, -1])
    names = [sweep.setting_name(i, s) for i, s in enumerate(settings)]
    absolute = None
    if opts.eval_protocol == "absolute":
        fn = absolute_fn(trainer, cfg.num_eval_envs)
        fn = sweep.over_grid(fn, seeds, num_settings, True, job.devices)
        absolute = to_host(fn(done.state, batched_hp))  # ([H, S], [H, S])
    for row in rows:
        row["dir"] = names[row["index"]]
        if absolute is not None:
            i = row["index"]
            row.update(absolute_fields(absolute[0][i], absolute[1][i], cfg.num_eval_envs))
    title = f"sweep: {spec.name} on {job.env_name}, {seeds} seeds x {schedule.total_steps:,} steps"
    summary = {
        **job.head(schedule.total_steps),
        "grid": run_meta["grid"],
        "num_settings": num_settings,
        "compile_seconds": done.compile_seconds,
        **done.compiles.fields(),
        "run_seconds": done.run_seconds,
        **speed.eval_fields(),
        **eval_bound(job),
        "steps_per_second": speed.steps_per_second,
        "resumed_from_period": speed.resumed_from,
        "best": rows[0]["hparams"],
        "config": job.config_dict,
        "hparams": job.hparams_dict,
        "jax_backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "settings": rows,
    }
    if jax.process_index() == 0:
        per_setting = dataclasses.replace(
            speed, steps_per_second=speed.steps_per_second / num_settings
        )
        for i, setting in enumerate(settings):
            m = jax.tree.map(lambda x, i=i: x[i], metrics)
            hparams = {**job.hparams_dict, **setting}
            setting_summary = make_summary(job, schedule.total_steps, m, per_setting, hparams)
            if absolute is not None:
                fields = absolute_fields(absolute[0][i], absolute[1][i], cfg.num_eval_envs)
                setting_summary.update(fields)
            label = ", ".join(f"{k}={v:g}" for k, v in setting.items())
            title_i = f"{spec.name} on {job.env_name}: {label}"
            write_run(out / names[i], setting_summary, m, title_i, opts.tensorboard)
        write_sweep(out, title, summary)
    return SweepResult(summary, metrics, out)
