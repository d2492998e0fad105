"""The one run driver: a registered algorithm over seeds as one compiled program, run in
chunks with checkpoints and exact resume, gathered from every host, written to a run
folder (metrics JSONL/CSV, summary JSON, curve, optional TensorBoard).

``jaxrl train`` is argument parsing plus ``run``; experiments and notebooks call it too::

    from jaxrl import runner
    result = runner.run("sac", env="pendulum", seeds=4, steps=20_000, out="runs/sac")
    result.summary["final_return_mean"], result.metrics["eval_return"]  # [seeds, evals]

``run``, ``run_sweep`` and ``run_pbt`` take the fields of one ``RunOptions`` record (or
the record itself). A host env (``atari/<game>``, ``jaxrl.envs.is_host``) cannot run
inside a compiled program: ``run`` then steps it from Python, one seed after another,
through ``jaxrl.loops.host_sequences`` (sequence-replay agents only) and writes the same
folder.

Modules, by job: ``options`` (``RunOptions``, validation, ``resolve``), ``engine`` (chunks,
checkpoints, resume, compile accounting), ``entry`` (``run``, ``run_host``),
``sweeps`` (``run_sweep``), ``population`` (``run_pbt``), ``hooks`` (run transforms, the
absolute protocol, evaluation hooks), ``outputs`` (summary, run folder, plots),
``display`` (progress bar, tables).
"""

from jaxrl.runner.display import ProgressBar, compile_line, describe, summary_table, sweep_table
from jaxrl.runner.engine import Executed, Program, execute, to_host
from jaxrl.runner.entry import run, run_host, train
from jaxrl.runner.hooks import (
    ABSOLUTE_FACTOR,
    Transform,
    absolute_fields,
    absolute_fn,
    hook_fields,
    hook_rows,
)
from jaxrl.runner.options import (
    PROTOCOLS,
    Job,
    RunOptions,
    RunResult,
    SweepResult,
    check_counts,
    check_protocol,
    prepare,
    resolve,
)
from jaxrl.runner.outputs import Timing, make_summary, plot_population, write_run, write_sweep
from jaxrl.runner.population import run_pbt
from jaxrl.runner.sweeps import run_sweep, sweep_options

__all__ = [
    "ABSOLUTE_FACTOR",
    "PROTOCOLS",
    "Executed",
    "Job",
    "Program",
    "ProgressBar",
    "RunOptions",
    "RunResult",
    "SweepResult",
    "Timing",
    "Transform",
    "absolute_fields",
    "absolute_fn",
    "check_counts",
    "check_protocol",
    "compile_line",
    "describe",
    "execute",
    "hook_fields",
    "hook_rows",
    "make_summary",
    "plot_population",
    "prepare",
    "resolve",
    "run",
    "run_host",
    "run_pbt",
    "run_sweep",
    "summary_table",
    "sweep_options",
    "sweep_table",
    "to_host",
    "train",
    "write_run",
    "write_sweep",
]
