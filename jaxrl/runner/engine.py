"""The chunk/checkpoint engine: a batched program run in chunks of evaluation periods,
compiled up front (compile accounting), checkpointed after each chunk, resumed exactly."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxrl import checkpoint
from jaxrl import compile_cache as xla_cache
from jaxrl.runner.options import RunOptions

if TYPE_CHECKING:
    from jaxrl.runner.display import ProgressBar


def to_host(tree: Any) -> Any:
    """NumPy copies of a pytree's arrays, gathered from every process under multi-host."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def compile_side_by_side(lowerings: list[Callable[[], Any]]) -> list[Any]:
    """The compiled programs of ``lowerings`` (each ``() -> jax.stages.Lowered``), in order.

    Tracing and lowering run here one after another (Python); each XLA compile starts on
    its own thread as soon as its program is lowered: XLA leaves the GIL while it compiles
    and on CPU keeps only about 1.3 cores busy per program (measured on 2 cores), so one
    program compiles while the next is traced and beside the others. The programs are
    those of a sequential compile.
    """
    if len(lowerings) == 1:
        return [lowerings[0]().compile()]
    with concurrent.futures.ThreadPoolExecutor(len(lowerings)) as pool:
        futures = [pool.submit(lower().compile) for lower in lowerings]
        return [f.result() for f in futures]


@dataclasses.dataclass(frozen=True)
class Program:
    """What ``execute`` runs: ``init(keys, hp) -> state`` and ``periods(num)(state, hp) ->
    (state, metrics)``, the batched (vmapped, jitted) ``Trainer.init`` / ``run_periods``;
    metrics carry the period axis at ``period_axis`` (1 for ``[seeds, evals]``, 2 for
    ``[settings, seeds, evals]``) and there are ``num_evals`` periods."""

    init: Callable[[jax.Array, Any], Any]
    periods: Callable[[int], Callable[[Any, Any], tuple[Any, Any]]]
    keys: jax.Array
    hp: Any
    num_evals: int
    period_axis: int


@dataclasses.dataclass
class Executed:
    """What ``execute`` returns: host ``metrics``, the device ``state`` at the end, the
    period resumed from, compile and run seconds, and whether it stopped early; ``compiles``
    counts the up-front compiles (tracing and XLA seconds, persistent-cache hits);
    ``resumed``: whether it continued from a checkpoint."""

    metrics: dict[str, np.ndarray]
    state: Any
    start: int
    compile_seconds: float
    run_seconds: float
    stopped_early: bool
    compiles: xla_cache.CompileStats
    resumed: bool = False


def _restore(program: Program, resume: str | Path, state_like: Any, run_meta: dict) -> tuple:
    """``(start, state, metrics)`` from the newest checkpoint in ``resume``."""
    ckpt_dir = Path(resume) / "checkpoints"
    description = checkpoint.read_meta(ckpt_dir)
    checkpoint.check_run(description, run_meta)  # before any tracing: fast
    start = description["step"]
    metric_like = jax.eval_shape(program.periods(1), state_like, program.hp)[1]
    a = program.period_axis
    like = {
        "state": state_like,
        "metrics": jax.tree.map(
            lambda m: jax.ShapeDtypeStruct((*m.shape[:a], start, *m.shape[a + 1 :]), m.dtype),
            metric_like,
        ),
    }
    restored = checkpoint.restore(ckpt_dir, start, like, run_meta)
    return start, restored["state"], restored["metrics"]


def execute(
    program: Program,
    opts: RunOptions,
    out: Path,
    run_meta: dict[str, Any],
    bar: ProgressBar | None = None,
) -> Executed:
    """Runs ``program`` in chunks of ``opts.checkpoint_every`` periods with checkpoints in
    ``out/checkpoints`` (written for ``run_meta``) and exact resume from ``opts.resume``.
    Every function is compiled before the first chunk runs."""
    init, hp, keys, num_evals = program.init, program.hp, program.keys, program.num_evals
    checkpoint_every, resume = opts.checkpoint_every, opts.resume
    chunk = min(checkpoint_every or num_evals, num_evals)
    state_like = jax.eval_shape(init, keys, hp)
    start, metrics, state = 0, None, None
    if resume:
        start, state, metrics = _restore(program, resume, state_like, run_meta)

    # Compile every function the run needs up front: init, a chunk, the last shorter chunk.
    t0 = time.perf_counter()
    sizes = sorted({min(chunk, num_evals - p) for p in range(start, num_evals, chunk)})
    with xla_cache.CompileStats() as compiles:
        lowered = [lambda k=k: program.periods(k).lower(state_like, hp) for k in sizes]
        if not resume:
            lowered.append(lambda: init.lower(keys, hp))
        programs = compile_side_by_side(lowered)
        compiled = dict(zip(sizes, programs[: len(sizes)], strict=True))
        if not resume:
            state = programs[-1](keys, hp)
    compile_s = time.perf_counter() - t0
    for exe in programs:  # the optimised HLO size, after the compile timing
        compiles.add_program(exe)

    def concat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x, y], axis=program.period_axis)

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
        if opts.stop_after_chunks is not None and chunks_run >= opts.stop_after_chunks:
            if bar is not None:
                bar.close()
            if opts.log is not None:
                opts.log(f"stopped after {chunks_run} chunk(s) at period {period} of {num_evals}")
            return Executed(metrics, state, start, compile_s, 0.0, True, compiles, bool(resume))
    run_s = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return Executed(metrics, state, start, compile_s, run_s, False, compiles, bool(resume))
