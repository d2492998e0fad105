"""The persistent XLA compilation cache: the one place that configures it, and what a run
reports about it.

On by default for ``jaxrl train|sweep|pbt``, ``jaxrl.runner.run*`` and the experiments: a
compiled program is written to ``$XDG_CACHE_HOME/jaxrl/xla`` (``~/.cache/jaxrl/xla``) and a
later process that compiles the same program (same computation and shapes, jax/jaxlib
version, devices and XLA flags) loads it instead. Resolution, first match wins:

1. ``--no-compile-cache`` (``enabled=False``), or ``JAXRL_COMPILE_CACHE`` empty, ``0``,
   ``off``, ``false`` or ``no``: off;
2. ``JAXRL_COMPILE_CACHE=DIR``: that directory;
3. a directory the user set for JAX (``JAX_COMPILATION_CACHE_DIR`` or
   ``jax.config.update("jax_compilation_cache_dir", ...)``): kept as it is;
4. ``$XDG_CACHE_HOME/jaxrl/xla``, else ``~/.cache/jaxrl/xla``.

JAX writes only programs that took at least ``jax_persistent_cache_min_compile_time_secs``
(1 s by default) to compile, and none with a host callback (the progress bar's).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

ENV_VAR = "JAXRL_COMPILE_CACHE"
OFF_VALUES = ("", "0", "off", "false", "no")
ON_VALUES = ("1", "on", "true", "yes")
#: The directory ``configure`` set last: a JAX directory equal to it is ours, not the user's.
_ours: dict[str, str | None] = {"dir": None}

_HIT = "/jax/compilation_cache/cache_hits"
_WRITTEN = "/jax/compilation_cache/cache_misses"  # recorded when an entry is written
_BACKEND = "/jax/core/compile/backend_compile_duration"  # a cache load included
_TRACE = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
)


def resolve_dir(
    environ: Mapping[str, str],
    jax_dir: str | None = None,
    *,
    enabled: bool = True,
    home: str | None = None,
) -> str | None:
    """The cache directory by the module's rules, or None when the cache is off.

    ``environ``: the environment; ``jax_dir``: a directory the user set for JAX;
    ``home``: the home directory (default ``~``).
    """
    if not enabled:
        return None
    value = environ.get(ENV_VAR)
    if value is not None and value.strip().lower() in OFF_VALUES:
        return None
    if value is not None and value.strip().lower() not in ON_VALUES:
        return str(Path(value.strip()).expanduser())
    if jax_dir:
        return jax_dir
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxrl", "xla")


def configure(
    enabled: bool = True,
    *,
    environ: Mapping[str, str] | None = None,
    min_compile_seconds: float | None = None,
) -> str | None:
    """Points JAX's persistent compilation cache at ``resolve_dir`` (or turns it off) and
    returns the directory (None: off). ``min_compile_seconds`` (default: JAX's setting, 1 s)
    is the shortest compile worth writing. Safe to call again: a change takes effect for
    the next compile."""
    current = jax.config.jax_compilation_cache_dir
    user_dir = None if current == _ours["dir"] else current
    directory = resolve_dir(os.environ if environ is None else environ, user_dir, enabled=enabled)
    state = (jax.config.jax_enable_compilation_cache, current)
    if directory is not None and directory != user_dir:
        jax.config.update("jax_compilation_cache_dir", directory)
        _ours["dir"] = directory
    jax.config.update("jax_enable_compilation_cache", directory is not None)
    if min_compile_seconds is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
    if state != (jax.config.jax_enable_compilation_cache, jax.config.jax_compilation_cache_dir):
        _jax_cache.reset_cache()  # JAX opens its cache once per process: reopen it
    return directory


def active_dir() -> str | None:
    """The directory JAX's persistent cache uses now, or None when it is off."""
    if not jax.config.jax_enable_compilation_cache:
        return None
    return jax.config.jax_compilation_cache_dir


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """The persistent cache off inside (cold compiles, for benchmarks), as before after."""
    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    _jax_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", before)
        _jax_cache.reset_cache()


def count_entries(directory: str | None) -> int:
    """Cache entries in ``directory`` (0 when it is None or missing)."""
    if not directory or not os.path.isdir(directory):
        return 0
    return sum(name.endswith("-cache") for name in os.listdir(directory))


def hlo_size(compiled: Any) -> tuple[int, int]:
    """``(bytes, instructions)`` of a compiled program's optimised HLO module text
    (``compiled.as_text()``; an instruction is an indented ``name = ...`` line); ``(0, 0)``
    when the backend gives no text. The count is the same for a program loaded from the
    persistent cache; the bytes differ slightly (source-location tables)."""
    try:
        text = compiled.as_text() or ""
    except Exception:  # noqa: BLE001 - a backend without HLO text: nothing to count
        return 0, 0
    instructions = sum(1 for line in text.splitlines() if line.startswith(" ") and " = " in line)
    return len(text.encode()), instructions


class CompileStats:
    """Counts XLA compiles while open (``with CompileStats() as stats:``) from JAX's
    monitoring events: ``count`` programs, ``seconds`` in XLA (a cache load included),
    ``trace_seconds`` tracing and lowering, ``hits`` loaded from the persistent cache,
    ``written`` new entries, ``rejected`` entries present but recompiled (an XLA:CPU build
    that refuses its own cached executables, jax-ml/jax#38445); ``hlo_bytes`` and
    ``hlo_instructions`` sum ``hlo_size`` over the programs given to ``add_program``."""

    def __init__(self) -> None:
        self.count, self.hits, self.written, self.rejected = 0, 0, 0, 0
        self.seconds = self.trace_seconds = 0.0
        self.hlo_bytes = self.hlo_instructions = 0
        self.dir: str | None = None
        self._entries = 0

    def _event(self, event: str, **_: Any) -> None:
        self.hits += event == _HIT
        self.written += event == _WRITTEN

    def _duration(self, event: str, duration: float, **_: Any) -> None:
        if event == _BACKEND:
            self.count += 1
            self.seconds += duration
        elif event in _TRACE:
            self.trace_seconds += duration

    def __enter__(self) -> CompileStats:
        self.dir = active_dir()
        self._entries = count_entries(self.dir)
        jax.monitoring.register_event_listener(self._event)
        jax.monitoring.register_event_duration_secs_listener(self._duration)
        return self

    def __exit__(self, *exc: object) -> None:
        jax.monitoring.unregister_event_listener(self._event)
        jax.monitoring.unregister_event_duration_listener(self._duration)
        added = count_entries(self.dir) - self._entries
        self.rejected = max(0, self.written - added)  # rewritten: was present, not loaded

    def add_program(self, compiled: Any) -> None:
        """Adds a compiled program's optimised HLO size (``hlo_size``)."""
        size, instructions = hlo_size(compiled)
        self.hlo_bytes += size
        self.hlo_instructions += instructions

    def fields(self) -> dict[str, Any]:
        """The ``summary.json`` fields: ``compiles``, ``trace_seconds``,
        ``backend_compile_seconds``, ``hlo_bytes``, ``hlo_instructions`` and
        ``compile_cache`` (``summary()``)."""
        return {
            "compiles": self.count,
            "trace_seconds": self.trace_seconds,
            "backend_compile_seconds": self.seconds,
            "hlo_bytes": self.hlo_bytes,
            "hlo_instructions": self.hlo_instructions,
            "compile_cache": self.summary(),
        }

    def summary(self) -> dict[str, Any]:
        """The ``compile_cache`` record of ``summary.json``."""
        return {
            "dir": self.dir,
            "programs": self.count,
            "hits": self.hits,
            "misses": self.count - self.hits,
            "written": self.written,
            "rejected": self.rejected,
        }


def describe(record: dict[str, Any]) -> str:
    """One line on a ``compile_cache`` record, for the printed run summary."""
    if record["dir"] is None:
        return "off"
    hits, programs, written = record["hits"], record["programs"], record["written"]
    line = f"{hits} of {programs} program(s) loaded, {written} written"
    if record["rejected"]:
        line += (
            f"; {record['rejected']} cached program(s) rejected by XLA and recompiled "
            "(no speed-up on this machine: jax-ml/jax#38445)"
        )
    return f"{line} ({record['dir']})"
