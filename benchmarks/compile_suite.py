"""``jaxrl bench --suite compile``: cold and warm compile seconds and the optimised HLO size
of each training program, every run in a fresh process.

Cases: every registered algorithm on its default env (case name ``ALGO``), and ppo, sac
and td3 on ``brax/inverted_pendulum`` and ``playground/CartpoleSwingup`` (``ALGO@ENV``;
gpayn's default env is ``grasp/box``). Each case gets a fresh temporary directory for the
persistent compilation cache and runs ``jaxrl train ALGO --env ENV --seeds 1 --no-progress``
at the algorithm's golden budget (``experiments/golden.py``: small, every update path runs)
twice, each in a new process with ``JAXRL_COMPILE_CACHE`` set to that directory: the first
compiles cold (empty cache), the second loads what the first wrote (warm). The figures come
from each run's ``summary.json`` (``compile_seconds``, ``trace_seconds``,
``backend_compile_seconds``, ``compile_cache``, ``hlo_instructions``, ``hlo_bytes``).
JAX writes only programs that took at least 1 s to compile (its default), so a small
program recompiles in the warm run, as it would for a user.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Non-default envs: MJX physics (Brax, Playground) and G-PAYN's grasp (its default).
EXTRA_ENVS = {
    "ppo": ("brax/inverted_pendulum", "playground/CartpoleSwingup"),
    "sac": ("brax/inverted_pendulum", "playground/CartpoleSwingup"),
    "td3": ("brax/inverted_pendulum", "playground/CartpoleSwingup"),
}
#: Seconds one process may take before its case is recorded as failed.
TIMEOUT = 1800


@dataclasses.dataclass(frozen=True)
class Case:
    """One program: ``algo`` on ``env`` with ``config`` overrides (``--set``)."""

    algo: str
    env: str
    config: dict[str, Any]
    default_env: bool

    @property
    def name(self) -> str:
        return self.algo if self.default_env else f"{self.algo}@{self.env}"


def golden_budgets() -> dict[str, dict[str, Any]]:
    """The golden results' small per-algorithm budgets (``experiments/golden.py``)."""
    spec = importlib.util.spec_from_file_location("_golden", ROOT / "experiments" / "golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BUDGETS


def cases() -> dict[str, Case]:
    """Every case of the suite by name, in order: the default envs, then the extra envs."""
    from jaxrl import agents

    budgets = golden_budgets()
    out: dict[str, Case] = {}
    for algo in agents.names():
        env = agents.get(algo).default_env
        out[algo] = Case(algo, env, budgets.get(algo, {}), True)
    for algo, names in EXTRA_ENVS.items():
        for env in names:
            case = Case(algo, env, budgets.get(algo, {}), False)
            out[case.name] = case
    return out


def train_argv(case: Case, out: Path) -> list[str]:
    """The ``jaxrl train`` command of ``case`` writing to ``out``."""
    argv = [sys.executable, "-m", "jaxrl", "train", case.algo, "--env", case.env]
    argv += ["--seeds", "1", "--no-progress", "--out", str(out)]
    for key, value in case.config.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def run_process(argv: list[str], cache_dir: Path, timeout: float) -> dict[str, Any]:
    """Runs one ``jaxrl train`` process with the persistent cache in ``cache_dir``: its
    ``summary.json`` figures, or ``{"status": "failed", "error": ...}``."""
    environ = {**os.environ, "JAXRL_COMPILE_CACHE": str(cache_dir)}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    out = Path(argv[argv.index("--out") + 1])
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - start
    if done.returncode != 0 or not (out / "summary.json").exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"status": "failed", "error": f"exit {done.returncode}: " + " | ".join(tail)}
    s = json.loads((out / "summary.json").read_text())
    cache = s.get("compile_cache", {})
    return {
        "status": "ok",
        "compile_seconds": s["compile_seconds"],
        "trace_seconds": s.get("trace_seconds"),
        "backend_compile_seconds": s.get("backend_compile_seconds"),
        "programs": cache.get("programs"),
        "cache_hits": cache.get("hits"),
        "cache_written": cache.get("written"),
        "cache_rejected": cache.get("rejected"),
        "hlo_instructions": s.get("hlo_instructions"),
        "hlo_bytes": s.get("hlo_bytes"),
        "run_seconds": s["run_seconds"],
        "process_seconds": wall,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def measure(case: Case, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``case``'s record: settings, the cold and the warm run, and the cold/warm ratios."""
    with tempfile.TemporaryDirectory(prefix="jaxrl-bench-compile-") as tmp:
        cache_dir = Path(tmp) / "xla"
        cold = run_process(train_argv(case, Path(tmp) / "cold"), cache_dir, timeout)
        warm = {"status": "skipped", "error": "the cold run failed"}
        if cold["status"] == "ok":
            warm = run_process(train_argv(case, Path(tmp) / "warm"), cache_dir, timeout)
    record: dict[str, Any] = {
        "settings": {"algo": case.algo, "env": case.env, "seeds": 1, "config": case.config},
        "cold": cold,
        "warm": warm,
    }
    if cold["status"] == warm["status"] == "ok":
        record["ratio_compile_cold_over_warm"] = _ratio(
            cold["compile_seconds"], warm["compile_seconds"]
        )
        record["ratio_backend_compile_cold_over_warm"] = _ratio(
            cold["backend_compile_seconds"], warm["backend_compile_seconds"]
        )
    return record


def run_compile_bench(
    names: list[str] | None = None,
    log: Callable[[str], None] = print,
    timeout: float = TIMEOUT,
    only: dict[str, Case] | None = None,
) -> dict[str, Any]:
    """The ``bench_compile.json`` object of ``names`` (default every case; ``only``
    replaces the suite's cases, for tests)."""
    known = cases() if only is None else only
    names = list(known) if names is None else names
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown compile case(s) {', '.join(unknown)}; known: {', '.join(known)}")
    results: dict[str, Any] = {}
    for name in names:
        log(f"bench compile: {name}")
        start = time.perf_counter()
        results[name] = measure(known[name], timeout)
        log(f"bench compile: {name} took {time.perf_counter() - start:.0f} s")
    from benchmarks import harness

    return {
        "meta": {
            "suite": "compile",
            "date": time.strftime("%Y-%m-%d"),
            "machine": platform.platform(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "versions": harness.versions(),
            "notes": [
                "cold: a fresh process with an empty persistent cache in a new temporary "
                "directory; warm: a second fresh process on the cache the cold run wrote",
                "compile_seconds: every program compiled up front (tracing, lowering, XLA, "
                "and the init program's first call); backend_compile_seconds: XLA alone (a "
                "cache load included); hlo_instructions: optimised HLO of those programs",
            ],
        },
        "cases": results,
        "done_when": done_when(results),
    }


def done_when(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 29's figure for ppo (a second identical ``jaxrl train ppo`` in a new process):
    its XLA compile cold/warm ratio (goal >= 10) and compile_seconds ratio (goal >= 3)."""
    ppo = results.get("ppo", {})
    return {
        "ppo_ratio_backend_compile_cold_over_warm": ppo.get("ratio_backend_compile_cold_over_warm"),
        "ppo_ratio_compile_cold_over_warm": ppo.get("ratio_compile_cold_over_warm"),
        "goals": {"backend_compile": 10.0, "compile_seconds": 3.0},
    }


def cpu_model() -> str:
    """The CPU's model name (Linux), else ``platform.processor()``."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _num(x: Any, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def format_compile_table(bench: dict[str, Any]) -> str:
    """A plain-text table: cold and warm compile seconds, XLA seconds, cache hits, HLO size."""
    header = (
        "case",
        "cold s",
        "cold XLA s",
        "warm s",
        "warm XLA s",
        "warm hits",
        "cold/warm",
        "HLO instr.",
    )
    rows = [header]
    for name, rec in bench["cases"].items():
        cold, warm = rec["cold"], rec["warm"]
        if cold["status"] != "ok":
            rows.append((name, "failed", cold.get("error", "")[:70], "", "", "", "", ""))
            continue
        ok = warm["status"] == "ok"
        rows.append(
            (
                name,
                _num(cold["compile_seconds"]),
                _num(cold["backend_compile_seconds"]),
                _num(warm["compile_seconds"]) if ok else "failed",
                _num(warm["backend_compile_seconds"]) if ok else "",
                f"{warm['cache_hits']} of {warm['programs']}" if ok else "",
                _num(rec.get("ratio_compile_cold_over_warm"), 2),
                f"{cold['hlo_instructions']:,}" if cold.get("hlo_instructions") else "n/a",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    rule = "-" * len(lines[0])
    d = bench.get("done_when", {})
    extra = [
        "ppo, second process over the first: XLA compile "
        f"{_num(d.get('ppo_ratio_backend_compile_cold_over_warm'), 2)}x faster (goal >= 10), "
        f"compile_seconds {_num(d.get('ppo_ratio_compile_cold_over_warm'), 2)}x smaller "
        "(goal >= 3)"
    ]
    return "\n".join([rule, lines[0], rule, *lines[1:], rule, *extra])


__all__ = ["Case", "cases", "format_compile_table", "measure", "run_compile_bench"]
