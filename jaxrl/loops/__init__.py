"""Training loops, written once and assembled from the data an algorithm declares.

``make_train(data, make_agent, env, ...)`` returns ``train(key, hparams) -> (agent_state,
metrics)``, one jittable function (a ``Trainer``, also runnable in chunks). The loop owns
the schedule: it computes it from the declaration and hands it to ``make_agent(hparams,
schedule)``. Algorithms choose a declaration (``Rollout``, ``Replay``, ``Stream``,
``Sequences``, ``Dataset``); they do not write a loop.
"""

from __future__ import annotations

from jaxrl.envs import Env
from jaxrl.loops.data import Data, Dataset, Replay, Rollout, Sequences, Stream
from jaxrl.loops.evaluate import (
    CARRY_KEY,
    Conditioning,
    act_step,
    evaluate,
    evaluate_intervals,
    reset_where,
)
from jaxrl.loops.host import host_sequences
from jaxrl.loops.off_policy import off_policy
from jaxrl.loops.offline import offline
from jaxrl.loops.on_policy import on_policy, transition
from jaxrl.loops.run import (
    LoopCarry,
    LoopSetup,
    MakeAgent,
    Progress,
    RunState,
    Schedule,
    Trainer,
    make_schedule,
    run_loop,
)
from jaxrl.loops.sequences import sequence_updates, sequences
from jaxrl.loops.streaming import learners, streaming

_LOOPS = {
    Rollout: on_policy,
    Replay: off_policy,
    Stream: streaming,
    Sequences: sequences,
    Dataset: offline,
}


def schedule_for(data: Data, total_steps: int, num_evals: int) -> Schedule:
    """The schedule a loop over ``data`` runs ``total_steps`` in ``num_evals`` periods."""
    return make_schedule(total_steps, data.steps_per_iter, num_evals)


def make_train(
    data: Data,
    make_agent: MakeAgent,
    env: Env,
    *,
    total_steps: int,
    num_evals: int,
    num_eval_envs: int,
    progress: Progress | None = None,
) -> Trainer:
    """The loop for ``data`` as one ``train(key, hparams)`` function.

    ``progress(env_steps)`` is called on the host about 100 times per run.
    """
    if type(data) not in _LOOPS:
        raise TypeError(
            f"unknown data declaration {type(data).__name__}; known: "
            f"{', '.join(t.__name__ for t in _LOOPS)}"
        )
    schedule = schedule_for(data, total_steps, num_evals)
    setup = LoopSetup(make_agent, env, schedule, num_eval_envs, progress)
    return _LOOPS[type(data)](data, setup)


__all__ = [
    "CARRY_KEY",
    "Conditioning",
    "Data",
    "Dataset",
    "LoopCarry",
    "LoopSetup",
    "MakeAgent",
    "Progress",
    "Replay",
    "Rollout",
    "RunState",
    "Schedule",
    "Sequences",
    "Stream",
    "Trainer",
    "act_step",
    "evaluate",
    "evaluate_intervals",
    "host_sequences",
    "learners",
    "make_schedule",
    "make_train",
    "off_policy",
    "offline",
    "on_policy",
    "reset_where",
    "run_loop",
    "schedule_for",
    "sequence_updates",
    "sequences",
    "streaming",
    "transition",
]
