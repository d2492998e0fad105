"""Command line.

``jaxrl train ALGO [--env NAME] [--seeds N] [--steps S] [--set k=v ...] [--env-arg k=v ...]
[--out DIR] [--checkpoint-every K] [--resume DIR] [--distributed]``;
``jaxrl sweep ALGO --grid KEY=V1,V2,... [--grid ...] [train's options]``;
``jaxrl pbt ALGO --population P --perturb KEY,KEY [--ready K] [train's options]``;
``jaxrl list``; ``jaxrl plot RUN_DIR [RUN_DIR ...] [--out DIR]``;
``jaxrl bench [--suite cpu|gpu|compile] [--quick] [--out DIR] [--cases NAME,...]`` (from a checkout:
it runs the repository's ``benchmarks/``, which is not installed with jaxrl).

Bad input gives one ``jaxrl: error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


def algo_names() -> list[str]:
    from jaxrl.agents import ALGOS  # the registry table: no algorithm module is imported

    return sorted(ALGOS)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """The options ``train``, ``sweep`` and ``pbt`` share."""
    p.add_argument("algo", help=f"algorithm: {', '.join(algo_names())} (jaxrl list)")
    p.add_argument("--env", default=None, help="environment name (default: the algo's own)")
    p.add_argument("--seeds", type=int, default=4, help="number of seeds, vmapped (default 4)")
    p.add_argument("--seed", type=int, default=0, help="base seed the per-seed keys derive from")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Config field or a hyperparameter; repeatable",
    )
    p.add_argument(
        "--env-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env option passed to jaxrl.envs.make: episode_length, reward_scale or the "
        "env's own constructor argument (an unknown key's error lists them); repeatable",
    )
    p.add_argument("--out", default=None, help="output folder (default runs/ALGO-ENV-TIME)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (its host callback keeps the run out of the compile cache)",
    )
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not read or write the persistent compilation cache (~/.cache/jaxrl/xla; "
        "JAXRL_COMPILE_CACHE=DIR moves it, =0 turns it off)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="K",
        help="run in chunks of K evaluation periods and checkpoint after each (OUT/checkpoints)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run in DIR from its newest checkpoint (same ALGO and options)",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (multi-host; see README)",
    )
    # Tests only: stop after N chunks as if the process had been killed.
    p.add_argument("--stop-after-chunks", type=int, default=None, help=argparse.SUPPRESS)


def _add_protocol_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--eval-protocol",
        choices=("standard", "absolute"),
        default="standard",
        help="absolute: also re-evaluate the best evaluation's agent with 10x the episodes "
        "at the end (absolute_return in summary.json)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxrl", description="Purely functional RL in JAX.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    train = sub.add_parser("train", help="train an agent over several seeds in one jitted call")
    _add_run_args(train)
    train.add_argument("--debug-nans", action="store_true", help="stop at the first NaN (slow)")
    _add_protocol_arg(train)
    sweep = sub.add_parser(
        "sweep", help="a hyperparameter grid x seeds as one compiled program, ranked"
    )
    _add_run_args(sweep)
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values of a hyperparameter; repeatable (the cartesian product is swept)",
    )
    _add_protocol_arg(sweep)
    pbt = sub.add_parser(
        "pbt", help="population-based training of an agent, one compiled program per run"
    )
    _add_run_args(pbt)
    pbt.add_argument("--population", type=int, default=8, help="members per seed (default 8)")
    pbt.add_argument(
        "--perturb",
        default="lr",
        metavar="KEY,KEY,...",
        help="hyperparameters to explore (default lr)",
    )
    pbt.add_argument(
        "--ready",
        type=int,
        default=2,
        metavar="K",
        help="evaluation periods between exploit/explore steps (default 2)",
    )
    pbt.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="KEY=LOW:HIGH",
        help="initial range of a perturbed hyperparameter (default v/4:4v); repeatable",
    )
    pbt.add_argument(
        "--resample-prob",
        type=float,
        default=0.0,
        help="probability of resampling instead of multiplying by 0.8/1.25 (default 0)",
    )
    sub.add_parser("list", help="algorithms (action kinds, default env) and env families")
    plot = sub.add_parser("plot", help="learning curves and aggregate metrics of run folders")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by jaxrl train")
    plot.add_argument("--out", default="plots", help="output folder (default ./plots)")
    plot.add_argument(
        "--threshold",
        type=float,
        default=1.0,
        help="optimality-gap threshold on normalised scores (default 1.0)",
    )
    bench = sub.add_parser(
        "bench", help="benchmark jaxrl against rejax and Stable-Baselines3 (from a checkout)"
    )
    bench.add_argument(
        "--suite",
        choices=("cpu", "gpu", "compile"),
        default="cpu",
        help="cpu: the CPU bench (default); gpu: published GPU figures (~8 min on one GPU); "
        "compile: cold and warm compile seconds and HLO size per algorithm (fresh processes)",
    )
    bench.add_argument("--quick", action="store_true", help="small budgets (< 10 min, 2 cores)")
    bench.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests only
    bench.add_argument(
        "--out", default="bench", help="output folder for bench.json (bench_compile.json)"
    )
    bench.add_argument("--cases", default=None, help="comma-separated case names (default all)")
    return parser


def _parse_value(name: str, text: str, kind: Any, flag: str = "--set") -> Any:
    """Converts ``text`` to ``kind``: int, float, bool, str, a tuple of them (``1,2`` or
    ``(1,2)``), or one of them or None (``none``); ``flag`` names the option in errors."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    try:
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            if text.strip().lower() == "none":
                return None
            (kind,) = [a for a in args if a is not type(None)]
            return _parse_value(name, text, kind, flag)
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
            parts = [x.strip() for x in text.strip("()[] ").split(",") if x.strip()]
            item = args[0] if args and args[0] is not Ellipsis else int
            if len(args) > 1 and args[1] is not Ellipsis and len(parts) != len(args):
                raise ValueError
            return tuple(_parse_value(name, x, item, flag) for x in parts)
        if kind is str:
            return text
    except (ValueError, UsageError):
        pass
    type_name = kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
    raise UsageError(f"{flag} {name}={text}: expected a value of type {type_name}")


def parse_env_args(items: list[str], env_name: str) -> dict[str, Any]:
    """``["episode_length=500", ...]`` -> ``{"episode_length": 500}``, typed by
    ``jaxrl.envs.env_args(env_name)``; a ``UsageError`` listing the env's options for an
    unknown key."""
    if not items:
        return {}
    from jaxrl import envs

    try:
        kinds = envs.env_args(env_name)
    except ValueError as err:
        raise UsageError(str(err)) from None
    out = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise UsageError(f"--env-arg expects KEY=VALUE, got {item!r}")
        if name not in kinds:
            known = ", ".join(sorted(kinds)) or "none"
            raise UsageError(f"unknown key {name!r} in --env-arg for {env_name}; it takes: {known}")
        out[name] = _parse_value(name, text, kinds[name], "--env-arg")
    return out


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


def _checked_run_args(args: argparse.Namespace) -> tuple[Any, dict, dict, dict]:
    """``(spec, config overrides, hparam overrides, env kwargs)`` of a train/sweep/pbt
    command, checked."""
    from jaxrl import agents
    from jaxrl.runner import check_counts

    try:
        check_counts(args.seeds, args.steps, args.checkpoint_every, flags=True)
        spec = agents.get(args.algo)
    except ValueError as err:
        raise UsageError(str(err)) from None
    config_over, hparam_over = parse_overrides(args.set, spec.config, spec.hparams)
    env_kwargs = parse_env_args(args.env_arg, args.env or spec.default_env)
    return spec, config_over, hparam_over, env_kwargs


def _run_options(args: argparse.Namespace) -> Any:
    """The ``RunOptions`` of a train/sweep/pbt command, checked."""
    from jaxrl.runner import RunOptions

    spec, config_over, hparam_over, env_kwargs = _checked_run_args(args)
    try:
        return RunOptions(
            spec,
            args.env,
            seeds=args.seeds,
            seed=args.seed,
            steps=args.steps,
            config=config_over,
            hparams=hparam_over,
            env_kwargs=env_kwargs,
            out=args.out,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            tensorboard=args.tensorboard,
            progress=not args.no_progress,
            debug_nans=getattr(args, "debug_nans", False),
            eval_protocol=getattr(args, "eval_protocol", "standard"),
            compile_cache=not args.no_compile_cache,
            stop_after_chunks=args.stop_after_chunks,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def sweep_command(args: argparse.Namespace) -> int:
    opts = _run_options(args)
    import jax

    from jaxrl import runner, sweep

    try:
        grid = sweep.parse_grid(args.grid, opts.algo.config, opts.algo.hparams)
        result = runner.run_sweep(opts, grid=grid)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    if result.stopped_early or jax.process_index() != 0:
        return 0
    print(runner.sweep_table(result))
    return 0


def pbt_command(args: argparse.Namespace) -> int:
    opts = _run_options(args)
    perturb = [x.strip() for x in args.perturb.split(",") if x.strip()]
    ranges = {}
    for item in args.range:
        name, eq, text = item.partition("=")
        low, colon, high = text.partition(":")
        try:
            if not eq or not colon:
                raise ValueError
            ranges[name.strip()] = (float(low), float(high))
        except ValueError:
            raise UsageError(f"--range expects KEY=LOW:HIGH, got {item!r}") from None
    import jax

    from jaxrl import runner

    try:
        result = runner.run_pbt(
            opts,
            population=args.population,
            perturb=perturb,
            ready=args.ready,
            ranges=ranges,
            resample_prob=args.resample_prob,
        )
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    if result.stopped_early or jax.process_index() != 0:
        return 0
    print(runner.summary_table(result))
    for s, hp in enumerate(result.summary["final_best_member_hparams"]):
        print(f"seed {s}: best member's final " + ", ".join(f"{k}={v:.3g}" for k, v in hp.items()))
    return 0


def train_command(args: argparse.Namespace) -> int:
    opts = _run_options(args)

    import jax

    from jaxrl import runner

    try:
        result = runner.run(opts)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    if result.stopped_early or jax.process_index() != 0:
        return 0
    print(runner.summary_table(result))
    first_bad = result.summary["first_nonfinite_step"]
    if first_bad is not None:
        print(
            f"jaxrl: warning: non-finite loss or parameters first seen by env step {first_bad}; "
            "rerun with --debug-nans",
            file=sys.stderr,
        )
        return 1
    return 0


def list_command(args: argparse.Namespace) -> int:
    from jaxrl import envs, runner

    rows = [("algorithm", "actions", "default env", "")] + runner.describe()
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for name, kinds, env, summary in rows:
        print(f"{name:<{widths[0]}}  {kinds:<{widths[1]}}  {env:<{widths[2]}}  {summary}")
    print("\nenvironments (jaxrl train ALGO --env NAME):")
    for family, names in envs.families().items():
        if family == "built-in":
            print(f"  {', '.join(names)}")
        elif names:
            more = ", ..." if len(names) > 4 else ""
            print(f"  {family}/<id>  ({len(names)} ids: {', '.join(names[:4])}{more})")
        else:
            print(f"  {family}/<id>  (package not installed)")
    print(
        "\nenv options (--env-arg KEY=VALUE, repeatable): episode_length and reward_scale for "
        "every env but atari/<id>,\nplus the env's own constructor arguments "
        "(jaxrl.envs.env_args(NAME); an unknown key's error lists them)"
    )
    return 0


#: What ``jaxrl bench`` says where there is no harness: an installed jaxrl, no checkout.
NO_BENCHMARKS = (
    "jaxrl bench runs the benchmarks/ folder of a jaxrl checkout, which an installed jaxrl "
    "does not include: git clone the jaxrl repository, then in it run "
    "pip install -e '.[bench]' and jaxrl bench again"
)


def checkout_root() -> Path:
    """The folder that holds the imported ``jaxrl`` package: a checkout's root when jaxrl
    runs from source or is installed editable (``pip install -e .``)."""
    import jaxrl

    return Path(jaxrl.__file__).resolve().parents[1]


def benchmarks_root() -> Path:
    """The checkout root whose ``benchmarks/`` holds the harness (found beside ``jaxrl/``, not
    installed with it); a ``UsageError`` saying what to do when there is none."""
    root = checkout_root()
    if not (root / "benchmarks" / "__init__.py").is_file():
        raise UsageError(NO_BENCHMARKS)
    return root


def bench_command(args: argparse.Namespace, root: Path) -> int:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the console script's sys.path lacks the checkout
    import benchmarks as bench
    from benchmarks import gpu_suite
    from benchmarks.cases import format_table
    from jaxrl import logging as jlog

    gpu = args.suite == "gpu"
    if args.suite != "cpu" and args.quick:
        raise UsageError(
            f"--quick sizes the cpu suite; use --suite {args.suite} alone (or --suite cpu)"
        )
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    if args.suite == "compile":
        return compile_bench_command(args, cases)
    known = gpu_suite.GPU_CASES if gpu else bench.CASES
    unknown = [c for c in cases or [] if c not in known]
    if unknown:
        raise UsageError(
            f"unknown bench case(s) {', '.join(unknown)}; known in the {args.suite} suite: "
            f"{', '.join(known)}"
        )
    t0 = time.perf_counter()
    if gpu:
        result = gpu_suite.run_gpu_bench("tiny" if args.tiny else "gpu", cases)
    else:
        mode = "tiny" if args.tiny else "quick" if args.quick else "full"
        result = bench.run_bench(bench.budget_for(mode), cases)
    result["meta"]["wall_seconds"] = time.perf_counter() - t0
    out = Path(args.out) / "bench.json"
    jlog.write_json(out, result)
    print(format_table(result))
    if gpu:
        print(gpu_suite.format_published(result))
    print(f"wall time {result['meta']['wall_seconds']:.0f} s; wrote {out}")
    return 0


def compile_bench_command(args: argparse.Namespace, cases: list[str] | None) -> int:
    """``jaxrl bench --suite compile``: writes ``bench_compile.json`` and prints its table."""
    from benchmarks import compile_suite
    from jaxrl import logging as jlog

    known = compile_suite.cases()
    unknown = [c for c in cases or [] if c not in known]
    if unknown:
        raise UsageError(
            f"unknown bench case(s) {', '.join(unknown)}; known in the compile suite: "
            f"{', '.join(known)}"
        )
    t0 = time.perf_counter()
    result = compile_suite.run_compile_bench(cases)
    result["meta"]["wall_seconds"] = time.perf_counter() - t0
    out = Path(args.out) / "bench_compile.json"
    jlog.write_json(out, result)
    print(compile_suite.format_compile_table(result))
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
            bench_root = benchmarks_root()  # before the devices are set up below
        if args.command in ("train", "sweep", "pbt", "bench"):
            from jaxrl import sweep

            sweep.use_cpu_cores()  # seeds and settings shard over every CPU core
            if getattr(args, "distributed", False):
                sweep.init_distributed()  # before anything touches a device
        if args.command == "bench":
            return bench_command(args, bench_root)
        if args.command == "plot":
            return plot_command(args)
        if args.command == "list":
            return list_command(args)
        if args.command == "sweep":
            return sweep_command(args)
        if args.command == "pbt":
            return pbt_command(args)
        return train_command(args)
    except UsageError as err:
        print(f"jaxrl: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
