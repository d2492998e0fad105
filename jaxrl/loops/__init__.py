"""Training loops, written once and assembled from the data an algorithm declares.

``make_train(data, make_agent, env, ...)`` returns ``train(key, hparams) -> (agent_state,
metrics)``, one jittable function (a ``Trainer``, also runnable in chunks). The loop owns
the schedule: it computes it from the declaration and hands it to ``make_agent(hparams,
schedule)``. Algorithms choose a declaration (``Rollout``, ``Replay``, ``Stream``,
``Sequences``, ``Dataset``); they do not write a loop.
"""

from __future__ import annotations

from jaxrl.loops.carry import first_carry, next_carry, reset_where, silenced, silent_info
from jaxrl.loops.data import (
    REPLAY_POSITIVE,
    Data,
    Dataset,
    Replay,
    Rollout,
    Sequences,
    Stream,
    check_warmup,
)
from jaxrl.loops.evaluate import (
    EVAL_MAX_STEPS,
    Conditioning,
    act_step,
    episode_limit,
    evaluate,
)
from jaxrl.loops.host import host_sequences
from jaxrl.loops.off_policy import off_policy
from jaxrl.loops.offline import offline
from jaxrl.loops.on_policy import on_policy, transition
from jaxrl.loops.run import (
    EvalProgress,
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
from jaxrl.loops.spec import ACTION_KINDS, AlgoSpec, EvalHook, HookInput, action_kind
from jaxrl.loops.streaming import learners, streaming
from jaxrl.loops.train import make_train, schedule_for

__all__ = [
    "ACTION_KINDS",
    "AlgoSpec",
    "Conditioning",
    "Data",
    "Dataset",
    "EVAL_MAX_STEPS",
    "EvalHook",
    "EvalProgress",
    "HookInput",
    "LoopCarry",
    "LoopSetup",
    "MakeAgent",
    "Progress",
    "REPLAY_POSITIVE",
    "Replay",
    "Rollout",
    "RunState",
    "Schedule",
    "Sequences",
    "Stream",
    "Trainer",
    "act_step",
    "action_kind",
    "check_warmup",
    "episode_limit",
    "evaluate",
    "first_carry",
    "host_sequences",
    "learners",
    "make_schedule",
    "make_train",
    "next_carry",
    "off_policy",
    "offline",
    "on_policy",
    "reset_where",
    "run_loop",
    "schedule_for",
    "sequence_updates",
    "sequences",
    "silenced",
    "silent_info",
    "streaming",
    "transition",
]
