"""Core types (``types``) and the one optimiser builder (``optim``): the bottom layer,
importing no other part of jaxrl (``AlgoSpec`` is ``jaxrl.loops.AlgoSpec``)."""

from jaxrl.core.optim import adam, clip_by_global_norm, global_norm
from jaxrl.core.types import (
    ActFn,
    Agent,
    AgentState,
    Carry,
    InitFn,
    LoopContext,
    Metrics,
    ObserveFn,
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
    "Carry",
    "InitFn",
    "LoopContext",
    "Metrics",
    "ObserveFn",
    "Transition",
    "UpdateFn",
    "adam",
    "clip_by_global_norm",
    "global_norm",
    "hparams_from",
    "mean_metrics",
    "tree_finite",
]
