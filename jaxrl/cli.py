"""Command line.

``jaxrl train ALGO [--env NAME] [--seeds N] [--steps S] [--set k=v ...] [--out DIR]
[--checkpoint-every K] [--resume DIR] [--distributed]``;
``jaxrl plot RUN_DIR [RUN_DIR ...] [--out DIR]``;
``jaxrl bench [--quick] [--out DIR] [--cases NAME,...]``.

Bad input gives one ``jaxrl: error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import sys
import threading
import time
import typing
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxrl", description="Purely functional RL in JAX.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    train = sub.add_parser("train", help="train an agent over several seeds in one jitted call")
    train.add_argument("algo", help="algorithm: ppo, sac")
    train.add_argument("--env", default=None, help="environment name (default: the algo's own)")
    train.add_argument("--seeds", type=int, default=4, help="number of seeds, vmapped (default 4)")
    train.add_argument(
        "--seed", type=int, default=0, help="base seed the per-seed keys derive from"
    )
    train.add_argument("--steps", type=int, default=None, help="env steps per seed")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Config field or a hyperparameter; repeatable",
    )
    train.add_argument("--out", default=None, help="output folder (default runs/ALGO-ENV-TIME)")
    train.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--debug-nans", action="store_true", help="stop at the first NaN (slow)")
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="K",
        help="run in chunks of K evaluation periods and checkpoint after each (OUT/checkpoints)",
    )
    train.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run in DIR from its newest checkpoint (same ALGO and options)",
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (multi-host; see README)",
    )
    # Tests only: stop after N chunks as if the process had been killed.
    train.add_argument("--stop-after-chunks", type=int, default=None, help=argparse.SUPPRESS)
    plot = sub.add_parser("plot", help="learning curves and aggregate metrics of run folders")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by jaxrl train")
    plot.add_argument("--out", default="plots", help="output folder (default ./plots)")
    plot.add_argument(
        "--threshold",
        type=float,
        default=1.0,
        help="optimality-gap threshold on normalised scores (default 1.0)",
    )
    bench = sub.add_parser("bench", help="benchmark jaxrl against rejax and Stable-Baselines3")
    bench.add_argument("--quick", action="store_true", help="small budgets (< 10 min, 2 cores)")
    bench.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests only
    bench.add_argument("--out", default="bench", help="output folder for bench.json")
    bench.add_argument("--cases", default=None, help="comma-separated case names (default all)")
    return parser


def _parse_value(name: str, text: str, kind: Any) -> Any:
    """Converts ``text`` to the type of a Config field (int, float, bool, str, tuple[int])."""
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if origin is tuple:
            return tuple(int(x) for x in text.strip("()[] ").split(",") if x.strip())
        if kind is str:
            return text
    except ValueError:
        pass
    type_name = getattr(kind, "__name__", str(kind))
    raise UsageError(f"--set {name}={text}: expected a value of type {type_name}")


def parse_overrides(items: list[str], config_cls: type, hparams_cls: type) -> tuple[dict, dict]:
    """Splits ``KEY=VALUE`` items into Config and HParams overrides, typed."""
    config_types = typing.get_type_hints(config_cls)
    config_fields = {f.name for f in dataclasses.fields(config_cls)}
    hparam_fields = {f.name for f in dataclasses.fields(hparams_cls)}
    config_over, hparam_over = {}, {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        if name in config_fields:
            config_over[name] = _parse_value(name, text, config_types[name])
        elif name in hparam_fields:
            hparam_over[name] = _parse_value(name, text, float)
        else:
            known = ", ".join(sorted(config_fields | hparam_fields))
            raise UsageError(f"unknown key {name!r} in --set; known: {known}")
    return config_over, hparam_over


class ProgressBar:
    """A tqdm bar fed from ``jax.debug.callback`` (host thread), throttled by tqdm."""

    def __init__(self, total: int, enabled: bool):
        self._bar = None
        self._total = total
        self._enabled = enabled
        self._lock = threading.Lock()

    def __call__(self, env_steps: Any) -> None:
        if not self._enabled:
            return
        import numpy as np

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
                    desc="training (per seed)",
                )
            if n > self._bar.n:
                self._bar.update(n - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    return "\n".join([line, *(f"{k:<{width}} | {v}" for k, v in rows), line])


def _to_host(tree: Any) -> Any:
    """NumPy copies of a pytree's arrays, gathered from every process under multi-host."""
    import jax
    import numpy as np

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def _concat_periods(a: Any, b: Any) -> Any:
    import numpy as np

    return np.concatenate([a, b], axis=1)


def train_command(args: argparse.Namespace) -> int:
    if args.distributed:
        from jaxrl import sweep

        sweep.init_distributed()  # before anything touches a device

    from jaxrl import agents, envs

    if args.checkpoint_every is not None and args.checkpoint_every <= 0:
        raise UsageError(f"--checkpoint-every must be positive, got {args.checkpoint_every}")
    try:
        algo = agents.get(args.algo)
    except ValueError as err:
        raise UsageError(str(err)) from None
    env_name = args.env or algo.DEFAULT_ENV
    if args.seeds <= 0:
        raise UsageError(f"--seeds must be positive, got {args.seeds}")
    if args.steps is not None and args.steps <= 0:
        raise UsageError(f"--steps must be positive, got {args.steps}")
    config_over, hparam_over = parse_overrides(args.set, algo.Config, algo.HParams)
    if args.steps is not None:
        config_over["total_steps"] = args.steps
    try:
        env = envs.make(env_name)
        config = algo.Config(**{**algo.PRESETS.get(env_name, {}), **config_over})
        hparams = algo.default_hparams(config, **hparam_over)
        algo.validate(config)
        total = algo.schedule(config).total_steps
        if env.action_spec.discrete and not algo.SUPPORTS_DISCRETE:
            raise ValueError(f"{args.algo} needs a continuous action space; {env_name} is discrete")
        if not env.action_spec.discrete and not algo.SUPPORTS_CONTINUOUS:
            raise ValueError(f"{args.algo} needs a discrete action space; {env_name} is continuous")
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None

    import jax
    import numpy as np

    from jaxrl import checkpoint, sweep
    from jaxrl import logging as jlog

    if args.debug_nans:
        jax.config.update("jax_debug_nans", True)
    out = Path(
        args.out
        or args.resume
        or f"runs/{args.algo}-{env_name.replace('/', '_')}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    )
    config_dict = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()
    }
    hparams_dict = {k: float(v) for k, v in dataclasses.asdict(hparams).items()}
    # What a checkpoint must have been written for to be resumed by this command.
    run_meta = {
        "algo": args.algo,
        "env": env_name,
        "seeds": args.seeds,
        "seed": args.seed,
        "config": config_dict,
        "hparams": hparams_dict,
    }
    bar = ProgressBar(total, enabled=not args.no_progress)
    try:  # make_train may still reject the input, e.g. an offline dataset file
        trainer = algo.make_train(config, env, progress=bar)
    except ValueError as err:
        raise UsageError(str(err)) from None
    num_evals = trainer.schedule.num_evals
    steps_per_period = trainer.schedule.iters_per_eval * trainer.schedule.steps_per_iter
    chunk = min(args.checkpoint_every or num_evals, num_evals)
    keys = sweep.seed_keys(args.seed, args.seeds)
    init = sweep.over_seeds(trainer.init, args.seeds)
    state_like = jax.eval_shape(init, keys, hparams)

    def periods_fn(num: int):
        return sweep.over_seeds(functools.partial(trainer.run_periods, num=num), args.seeds)

    start, metrics = 0, None
    if args.resume:
        ckpt_dir = Path(args.resume) / "checkpoints"
        try:
            description = checkpoint.read_meta(ckpt_dir)
            checkpoint.check_run(description, run_meta)  # before any tracing: fast
            start = description["step"]
            metric_like = jax.eval_shape(periods_fn(1), state_like, hparams)[1]
            like = {
                "state": state_like,
                "metrics": jax.tree.map(
                    lambda m: jax.ShapeDtypeStruct((m.shape[0], start, *m.shape[2:]), m.dtype),
                    metric_like,
                ),
            }
            restored = checkpoint.restore(ckpt_dir, start, like, run_meta)
        except checkpoint.CheckpointError as err:
            raise UsageError(str(err)) from None
        state, metrics = restored["state"], restored["metrics"]

    # Compile every function the run needs up front: init, a chunk, the last shorter chunk.
    t0 = time.perf_counter()
    sizes = {min(chunk, num_evals - p) for p in range(start, num_evals, chunk)}
    compiled = {k: periods_fn(k).lower(state_like, hparams).compile() for k in sizes}
    if not args.resume:
        state = init.lower(keys, hparams).compile()(keys, hparams)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    period, chunks_run = start, 0
    while period < num_evals:
        num = min(chunk, num_evals - period)
        state, new = compiled[num](state, hparams)
        new = _to_host(jax.block_until_ready(new))
        metrics = new if metrics is None else jax.tree.map(_concat_periods, metrics, new)
        period, chunks_run = period + num, chunks_run + 1
        if args.checkpoint_every or args.resume:
            tree = {"state": _to_host(state), "metrics": metrics}
            if jax.process_index() == 0:
                checkpoint.save(out / "checkpoints", period, tree, run_meta)
        if args.stop_after_chunks is not None and chunks_run >= args.stop_after_chunks:
            bar.close()
            print(f"stopped after {chunks_run} chunk(s) at period {period} of {num_evals}")
            return 0
    run_s = time.perf_counter() - t0
    bar.close()
    if jax.process_index() != 0:
        return 0

    final = metrics["eval_return"][:, -1]
    sps = (num_evals - start) * steps_per_period * args.seeds / max(run_s, 1e-9)
    finite = metrics["finite"]
    first_bad = None
    if not finite.all():
        first_bad = int(metrics["env_steps"][0][np.argmin(finite.all(axis=0))])
    summary = {
        "algo": args.algo,
        "env": env_name,
        "seeds": args.seeds,
        "seed": args.seed,
        "steps": total,
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
        "resumed_from_period": start if args.resume else None,
        "config": config_dict,
        "hparams": hparams_dict,
        "jax_backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "num_processes": jax.process_count(),
    }
    rows = jlog.metric_rows(metrics)
    jlog.write_jsonl(out / "metrics.jsonl", rows)
    jlog.write_csv(out / "metrics.csv", rows)
    jlog.write_json(out / "summary.json", summary)
    jlog.plot_curve(
        out / "curve.png",
        metrics["env_steps"][0],
        metrics["eval_return"],
        title=f"{args.algo} on {env_name}",
    )
    if args.tensorboard:
        jlog.write_tensorboard(out / "tb", metrics)
    print(
        _table(
            [
                ("algo / env", f"{args.algo} / {env_name}"),
                ("seeds x steps", f"{args.seeds} x {total:,}"),
                (
                    "final return",
                    f"{final.mean():.1f} +- {final.std():.1f} (min {final.min():.1f}, "
                    f"max {final.max():.1f})",
                ),
                ("compile", f"{compile_s:.1f} s"),
                ("run", f"{run_s:.1f} s, {sps:,.0f} env steps/s (all seeds)"),
                ("output", str(out)),
            ]
        )
    )
    if first_bad is not None:
        print(
            f"jaxrl: warning: non-finite loss or parameters first seen by env step {first_bad}; "
            "rerun with --debug-nans",
            file=sys.stderr,
        )
        return 1
    return 0


def bench_command(args: argparse.Namespace) -> int:
    from jaxrl import bench
    from jaxrl import logging as jlog
    from jaxrl.bench.cases import format_table

    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    unknown = [c for c in cases or [] if c not in bench.CASES]
    if unknown:
        raise UsageError(
            f"unknown bench case(s) {', '.join(unknown)}; known: {', '.join(bench.CASES)}"
        )
    t0 = time.perf_counter()
    result = bench.run_bench(bench.budget_for(mode), cases)
    result["meta"]["wall_seconds"] = time.perf_counter() - t0
    out = Path(args.out) / "bench.json"
    jlog.write_json(out, result)
    print(format_table(result))
    print(f"wall time {result['meta']['wall_seconds']:.0f} s; wrote {out}")
    return 0


def plot_command(args: argparse.Namespace) -> int:
    from jaxrl import report

    try:
        runs = [report.load_run(d) for d in args.runs]
    except ValueError as err:
        raise UsageError(str(err)) from None
    written = report.write_report(runs, Path(args.out), threshold=args.threshold)
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("missing command; try: jaxrl train ppo")
        if args.command == "bench":
            return bench_command(args)
        if args.command == "plot":
            return plot_command(args)
        return train_command(args)
    except UsageError as err:
        print(f"jaxrl: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
