"""Agent transforms (``Agent`` -> ``Agent``) and run transforms (``Trainer`` -> ``Trainer``:
``pbt.with_pbt``, ``best.with_best``)."""

from jaxrl.transforms.action_sequences import with_action_sequences
from jaxrl.transforms.demonstrations import with_demonstrations
from jaxrl.transforms.dormant import (
    dormant_ratio,
    perturb,
    perturbation_coefficient,
    with_dormant_perturbation,
)
from jaxrl.transforms.model_rollouts import with_model_rollouts
from jaxrl.transforms.world_model import with_world_model

__all__ = [
    "dormant_ratio",
    "perturb",
    "perturbation_coefficient",
    "with_action_sequences",
    "with_demonstrations",
    "with_dormant_perturbation",
    "with_model_rollouts",
    "with_world_model",
]
