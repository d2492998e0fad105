"""The one run driver: a registered algorithm over seeds as one compiled program, run in
chunks with checkpoints and exact resume, gathered from every host, written to a run
folder (metrics JSONL/CSV, summary JSON, curve, optional TensorBoard).

``jaxrl train`` is argument parsing plus ``run``; experiments and notebooks call it too::

    from jaxrl import runner
    result = runner.run("sac", env="pendulum", seeds=4, steps=20_000, out="runs/sac")
    result.summary["final_return_mean"], result.metrics["eval_return"]  # [seeds, evals]
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

from jaxrl import agents, checkpoint, envs, sweep
from jaxrl import logging as jlog
from jaxrl.core.spec import AlgoSpec


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
    fas_intervals: Sequence[int] | None = None,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Trains ``algo`` on ``env`` for ``seeds`` vmapped seeds and writes the run folder.

    ``config`` / ``hparams`` override ``Config`` fields / hyperparameters (after the env's
    preset); ``env_kwargs`` go to ``jaxrl.envs.make``. With ``checkpoint_every`` the run
    goes in chunks of that many evaluation periods and checkpoints after each
    (``OUT/checkpoints``); ``resume`` continues the run in that folder from its newest
    checkpoint, bitwise as if never stopped.
    ``stop_after_chunks`` stops as if the process had been killed (for tests).
    ``fas_intervals`` (default: the config's ``fas_intervals`` field, if it has one)
    evaluates the final policies at those decision intervals and adds the
    Frequency-Averaged Score to the summary (``fas``; ``fas_returns`` per seed).

    Raises:
      ValueError: bad input (unknown names, bad values, a checkpoint of another run).
    """
    if seeds <= 0:
        raise ValueError(f"seeds must be positive, got {seeds}")
    if steps is not None and steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if checkpoint_every is not None and checkpoint_every <= 0:
        raise ValueError(f"checkpoint_every must be positive, got {checkpoint_every}")
    spec, env_name, env_obj, cfg, hp = resolve(algo, env, config, hparams, steps, env_kwargs)
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
    }
    schedule = spec.schedule(cfg, env_obj)
    bar = ProgressBar(schedule.total_steps, enabled=progress)
    trainer = spec.make_train(cfg, env_obj, progress=bar)
    num_evals = schedule.num_evals
    steps_per_period = schedule.iters_per_eval * schedule.steps_per_iter
    chunk = min(checkpoint_every or num_evals, num_evals)
    keys = sweep.seed_keys(seed, seeds)
    init = sweep.over_seeds(trainer.init, seeds)
    state_like = jax.eval_shape(init, keys, hp)

    def periods_fn(num: int):
        return sweep.over_seeds(functools.partial(trainer.run_periods, num=num), seeds)

    start, metrics = 0, None
    if resume:
        ckpt_dir = Path(resume) / "checkpoints"
        description = checkpoint.read_meta(ckpt_dir)
        checkpoint.check_run(description, run_meta)  # before any tracing: fast
        start = description["step"]
        metric_like = jax.eval_shape(periods_fn(1), state_like, hp)[1]
        like = {
            "state": state_like,
            "metrics": jax.tree.map(
                lambda m: jax.ShapeDtypeStruct((m.shape[0], start, *m.shape[2:]), m.dtype),
                metric_like,
            ),
        }
        restored = checkpoint.restore(ckpt_dir, start, like, run_meta)
        state, metrics = restored["state"], restored["metrics"]

    # Compile every function the run needs up front: init, a chunk, the last shorter chunk.
    t0 = time.perf_counter()
    sizes = {min(chunk, num_evals - p) for p in range(start, num_evals, chunk)}
    compiled = {k: periods_fn(k).lower(state_like, hp).compile() for k in sizes}
    if not resume:
        state = init.lower(keys, hp).compile()(keys, hp)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    period, chunks_run = start, 0
    while period < num_evals:
        num = min(chunk, num_evals - period)
        state, new = compiled[num](state, hp)
        new = to_host(jax.block_until_ready(new))
        metrics = new if metrics is None else jax.tree.map(_concat_periods, metrics, new)
        period, chunks_run = period + num, chunks_run + 1
        if checkpoint_every or resume:
            tree = {"state": to_host(state), "metrics": metrics}
            if jax.process_index() == 0:
                checkpoint.save(out / "checkpoints", period, tree, run_meta)
        if stop_after_chunks is not None and chunks_run >= stop_after_chunks:
            bar.close()
            if log is not None:
                log(f"stopped after {chunks_run} chunk(s) at period {period} of {num_evals}")
            return RunResult({}, metrics, out, stopped_early=True)
    run_s = time.perf_counter() - t0
    bar.close()

    final = metrics["eval_return"][:, -1]
    sps = (num_evals - start) * steps_per_period * seeds / max(run_s, 1e-9)
    finite = metrics["finite"]
    first_bad = None
    if not finite.all():
        first_bad = int(metrics["env_steps"][0][np.argmin(finite.all(axis=0))])
    summary = {
        "algo": spec.name,
        "env": env_name,
        "seeds": seeds,
        "seed": seed,
        "steps": schedule.total_steps,
        "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()),
        "final_return_min": float(final.min()),
        "final_return_max": float(final.max()),
        "final_returns": [float(x) for x in final],
        "steps_per_second": sps,
        "compile_seconds": compile_s,
        "run_seconds": run_s,
        "finite": first_bad is None,
        "first_nonfinite_step": first_bad,
        "resumed_from_period": start if resume else None,
        "config": config_dict,
        "hparams": hparams_dict,
        "jax_backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "num_processes": jax.process_count(),
    }
    intervals = tuple(fas_intervals or getattr(cfg, "fas_intervals", ()) or ())
    if intervals:
        agent = spec.make_agent(cfg, env_obj, hp, schedule)
        summary.update(
            fas_summary(agent, state.agent_state, env_obj, env_name, cfg, seed, intervals)
        )
    if jax.process_index() == 0:
        write_run(out, summary, metrics, f"{spec.name} on {env_name}", tensorboard)
    return RunResult(summary, metrics, out)


def fas_summary(
    agent: Any,
    agent_states: Any,
    env: Any,
    env_name: str,
    cfg: Any,
    seed: int,
    intervals: Sequence[int],
) -> dict[str, Any]:
    """The Frequency-Averaged Score of final policies ``agent_states`` (leading ``[seeds]``):
    ``fas`` (mean over seeds, normalised by ``report.fas_range`` when known),
    ``fas_per_seed``, ``fas_returns`` ``[seeds][intervals]``, ``fas_intervals``, ``fas_range``.

    Raises:
      ValueError: for a non-positive interval.
    """
    from jaxrl import report
    from jaxrl.loops import evaluate_intervals

    intervals = tuple(int(k) for k in intervals)
    if any(k < 1 for k in intervals):
        raise ValueError(f"fas_intervals must be positive ints, got {intervals}")
    seeds = jax.tree.leaves(agent_states)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 0xFA5), seeds)

    def one(state, key):
        return evaluate_intervals(agent, state, env, key, cfg.num_eval_envs, intervals)

    returns = to_host(jax.jit(jax.vmap(one))(agent_states, keys))
    bounds = report.fas_range(env_name)
    per_seed = report.frequency_averaged_score(returns, *(bounds or (None, None)))
    return {
        "fas": float(per_seed.mean()),
        "fas_per_seed": [float(x) for x in per_seed],
        "fas_returns": [[float(x) for x in row] for row in returns],
        "fas_intervals": list(intervals),
        "fas_range": list(bounds) if bounds else None,
    }


def _concat_periods(a: Any, b: Any) -> Any:
    return np.concatenate([a, b], axis=1)


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
            [("FAS", f"{s['fas']:.3f} (decision intervals {s['fas_intervals']})")]
            if "fas" in s
            else []
        ),
        ("compile", f"{s['compile_seconds']:.1f} s"),
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
