"""World models: Drama's Mamba world model (``jaxrl.models.world_model``), a probabilistic
dynamics ensemble (``jaxrl.models.dynamics``) and model rollouts (``jaxrl.models.rollout``).
"""

from jaxrl.models.dynamics import DynamicsModel, Ensemble, select_elites
from jaxrl.models.rollout import rollout, to_dataset

__all__ = ["DynamicsModel", "Ensemble", "rollout", "select_elites", "to_dataset"]
