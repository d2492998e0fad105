"""Algorithm registry. Each module exposes ``Config``, ``HParams``,
``default_hparams``, ``make_agent`` and ``make_train``; ``DEFAULT_ENV`` names the
env ``jaxrl train ALGO`` uses when none is given, and ``PRESETS`` maps env names
to ``Config`` overrides tuned for them (documented in each module).
"""

from __future__ import annotations

import importlib
from types import ModuleType

ALGOS: dict[str, str] = {
    "bc": "jaxrl.agents.bc",
    "drama": "jaxrl.agents.drama",
    "drm": "jaxrl.agents.drm",
    "dsac_t": "jaxrl.agents.dsac_t",
    "iql": "jaxrl.agents.iql",
    "mbrcsl": "jaxrl.agents.mbrcsl",
    "mentor": "jaxrl.agents.mentor",
    "ppo": "jaxrl.agents.ppo",
    "rcsl": "jaxrl.agents.rcsl",
    "sac": "jaxrl.agents.sac",
    "stream_ac": "jaxrl.agents.stream_ac",
    "stream_q": "jaxrl.agents.stream_q",
}


def get(name: str) -> ModuleType:
    """The module of algorithm ``name``; ValueError listing the known ones otherwise."""
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGOS))}")
    return importlib.import_module(ALGOS[name])
