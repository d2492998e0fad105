"""jaxrl: purely functional reinforcement learning in JAX.

A training run is one jittable function ``train(key, hparams) -> (state, metrics)``;
see ``jaxrl.agents`` for algorithms, ``jaxrl.envs`` for environments and
``jaxrl.sweep`` for seed and hyperparameter sweeps.
"""

from jaxrl.core import Agent, Transition
from jaxrl.cpu_linalg import use_xla_linalg_on_cpu

use_xla_linalg_on_cpu()  # no LAPACK thread-pool deadlock on CPU (see jaxrl.cpu_linalg)

__version__ = "0.1.0"
__all__ = ["Agent", "Transition", "__version__"]
