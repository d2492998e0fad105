"""Core types (``types``), the one optimiser builder (``optim``) and, in ``spec``, the
``AlgoSpec`` record every algorithm registers."""

from jaxrl.core.optim import adam, clip_by_global_norm, global_norm
from jaxrl.core.types import (
    ActFn,
    Agent,
    AgentState,
    InitFn,
    LoopContext,
    Metrics,
    Transition,
    UpdateFn,
    hparams_from,
    mean_metrics,
    tree_finite,
)

__all__ = [
    "ActFn",
    "Agent",
    "AgentState",
    "InitFn",
    "LoopContext",
    "Metrics",
    "Transition",
    "UpdateFn",
    "adam",
    "clip_by_global_norm",
    "global_norm",
    "hparams_from",
    "mean_metrics",
    "tree_finite",
]
