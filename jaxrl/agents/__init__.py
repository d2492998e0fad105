"""The algorithm registry: name -> the module holding its ``SPEC`` (a
``jaxrl.loops.AlgoSpec``). Modules are imported on first use, so listing the
algorithms stays fast. Adding an algorithm = its file + one line here + its test.

Algorithms are grouped by family: ``actor_critic`` (off-policy, replay), ``on_policy``
(rollouts), ``stream`` (one transition per update), ``offline`` (fixed datasets) and
``model_based`` (world models), ``planning`` (tree search on ``mctx``) and ``value``
(discrete Q-learning: DQN on replay, PQN on rollouts).
"""

from __future__ import annotations

import importlib

from jaxrl.loops import AlgoSpec

ALGOS: dict[str, str] = {
    "alphazero": "jaxrl.agents.planning.alphazero",
    "assistancezero": "jaxrl.agents.planning.assistancezero",
    "bc": "jaxrl.agents.offline.bc",
    "drama": "jaxrl.agents.model_based.drama",
    "drm": "jaxrl.agents.actor_critic.drm",
    "dqn": "jaxrl.agents.value.dqn",
    "drrpo": "jaxrl.agents.linear.drrpo",
    "dsac_t": "jaxrl.agents.actor_critic.dsac_t",
    "gpayn": "jaxrl.agents.actor_critic.gpayn",
    "iql": "jaxrl.agents.offline.iql",
    "mbrcsl": "jaxrl.agents.offline.mbrcsl",
    "mentor": "jaxrl.agents.actor_critic.mentor",
    "muzero": "jaxrl.agents.planning.muzero",
    "ppo": "jaxrl.agents.on_policy.ppo",
    "ppo_rnn": "jaxrl.agents.on_policy.ppo_rnn",
    "pqn": "jaxrl.agents.value.pqn",
    "rcsl": "jaxrl.agents.offline.rcsl",
    "sac": "jaxrl.agents.actor_critic.sac",
    "srl": "jaxrl.agents.actor_critic.srl",
    "stream_ac": "jaxrl.agents.stream.stream_ac",
    "stream_q": "jaxrl.agents.stream.stream_q",
    "stream_td": "jaxrl.agents.stream.stream_td",
    "td3": "jaxrl.agents.actor_critic.td3",
}


def get(name: str) -> AlgoSpec:
    """The spec of algorithm ``name``; ValueError listing the known ones otherwise."""
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGOS))}")
    return importlib.import_module(ALGOS[name]).SPEC


def names() -> list[str]:
    """Every registered algorithm, sorted."""
    return sorted(ALGOS)
