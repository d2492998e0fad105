"""How many copies of the MJX physics a training run's programs hold, and what they cost.

Builds the two programs ``jaxrl train ALGO --env ENV --seeds 1 --steps STEPS`` compiles
(the batched ``Trainer.init`` and ``run_periods`` over every evaluation period, as
``jaxrl.runner`` builds them) and, while lowering each, counts the MJX physics it traces:
``steps`` (``mjx.step`` calls: collection, evaluation, demonstration recording) and
``forwards`` (``mjx.forward`` calls, those inside a step included; ``forwards - steps``
are resets). Each traced call is one copy in the compiled program (XLA inlines calls). With
``--compile`` it also compiles each program (no persistent cache) and reports seconds
and optimised HLO lines. Prints one JSON object.

    python experiments/mjx_compile_probe.py gpayn grasp/box --steps 2000 [--compile]
    python experiments/mjx_compile_probe.py gpayn grasp/box --compile --xla KEY=VALUE

Measured (2-core AMD EPYC, quiet, cold): ``gpayn grasp/box``: ``init`` holds 1 step and
2 resets (training envs, demonstration envs), ``run_periods`` 2 steps and 2 resets
(collection, auto-reset, evaluation reset and steps); one vmapped ``grasp/box`` step
alone compiles in about 8 s and one reset in about 7 s. On 2026-12-07: lowering 14-16 s
(``init``) and 18-25 s (``run_periods``), Python-bound; XLA 35-43 s (``init``) and 68 s
(``run_periods``) one after another, but XLA:CPU uses only ~1.3 of the 2 cores (43 s wall,
57 s CPU for ``init``), so both compiled side by side (what ``jaxrl.runner`` now does)
took 62 s wall. XLA options on ``init``: ``xla_backend_optimization_level=0`` compiles
28% faster but changes ``init``'s output (not bitwise), so it is not used;
``xla_llvm_disable_expensive_passes=true`` keeps it bitwise and saves nothing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import time
from collections.abc import Iterator
from typing import Any

import jax
from mujoco import mjx
from mujoco.mjx._src import forward as mjx_forward

from jaxrl import sweep
from jaxrl.runner.options import RunOptions, prepare


@contextlib.contextmanager
def counting_physics() -> Iterator[collections.Counter]:
    """Counts ``mjx.step`` and ``mjx.forward`` traces while the block runs (restored after)."""
    counts: collections.Counter = collections.Counter()
    patched = []
    for owner in (mjx, mjx_forward):
        for name, label in (("step", "steps"), ("forward", "forwards")):
            orig = getattr(owner, name)

            def counted(*args: Any, _orig=orig, _label=label, **kwargs: Any) -> Any:
                counts[_label] += 1
                return _orig(*args, **kwargs)

            patched.append((owner, name, orig))
            setattr(owner, name, functools.wraps(orig)(counted))
    try:
        yield counts
    finally:
        for owner, name, orig in patched:
            setattr(owner, name, orig)


def probe(
    algo: str, env: str, steps: int, compile_: bool, xla: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Per program (``init``, ``run_periods``): physics copies, lowering seconds, StableHLO
    lines and, with ``compile_``, XLA compile seconds and optimised HLO lines; ``xla``:
    XLA compiler options for those compiles (``{"xla_backend_optimization_level": 1}``)."""
    opts = RunOptions.of(algo, env, seeds=1, steps=steps, progress=False, compile_cache=False)
    job = prepare(opts)
    schedule = job.spec.schedule(job.cfg, job.env)
    trainer = job.spec.make_train(job.cfg, job.env, progress=None)
    init = sweep.over_seeds(trainer.init, 1)
    keys = sweep.seed_keys(0, 1)
    periods = sweep.over_seeds(functools.partial(trainer.run_periods, num=schedule.num_evals), 1)
    out: dict[str, Any] = {"algo": algo, "env": env, "steps": steps, "xla": xla or {}}
    for name, fn, args in (
        ("init", init, lambda: (keys, job.hp)),
        ("run_periods", periods, lambda: (jax.eval_shape(init, keys, job.hp), job.hp)),
    ):
        args = args()
        with counting_physics() as counts:
            t0 = time.perf_counter()
            lowered = fn.lower(*args)
            rec: dict[str, Any] = {"lower_seconds": time.perf_counter() - t0}
        rec["steps"] = counts["steps"]
        rec["resets"] = counts["forwards"] - counts["steps"]
        rec["stablehlo_lines"] = lowered.as_text().count("\n")
        if compile_:
            t0 = time.perf_counter()
            compiled = lowered.compile(xla)
            rec["compile_seconds"] = time.perf_counter() - t0
            rec["optimized_hlo_lines"] = compiled.as_text().count("\n")
        out[name] = rec
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("algo")
    parser.add_argument("env")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--compile", action="store_true", help="also compile each program")
    parser.add_argument(
        "--xla", action="append", default=[], metavar="KEY=VALUE", help="an XLA compile option"
    )
    a = parser.parse_args()
    xla = dict(kv.split("=", 1) for kv in a.xla) or None
    print(json.dumps(probe(a.algo, a.env, a.steps, a.compile, xla), indent=1))


if __name__ == "__main__":
    main()
