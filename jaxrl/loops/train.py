"""``make_train``: the loop for a data declaration, looked up by the declaration's type."""

from __future__ import annotations

from jaxrl.envs import Env
from jaxrl.loops.data import Data, Dataset, Replay, Rollout, Sequences, Stream
from jaxrl.loops.evaluate import EVAL_MAX_STEPS
from jaxrl.loops.off_policy import off_policy
from jaxrl.loops.offline import offline
from jaxrl.loops.on_policy import on_policy
from jaxrl.loops.run import (
    EvalProgress,
    LoopSetup,
    MakeAgent,
    Progress,
    Schedule,
    Trainer,
    make_schedule,
)
from jaxrl.loops.sequences import sequences
from jaxrl.loops.streaming import streaming

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
    eval_max_steps: int | None = EVAL_MAX_STEPS,
    eval_progress: EvalProgress | None = None,
) -> Trainer:
    """The loop for ``data`` as one ``train(key, hparams)`` function.

    Each evaluation runs ``num_eval_envs`` episodes of at most ``eval_max_steps`` steps
    (``None``: the env's whole episode limit). ``progress(env_steps)`` is called on the
    host about 100 times per run, ``eval_progress`` as each evaluation starts and ends.
    """
    if type(data) not in _LOOPS:
        raise TypeError(
            f"unknown data declaration {type(data).__name__}; known: "
            f"{', '.join(t.__name__ for t in _LOOPS)}"
        )
    schedule = schedule_for(data, total_steps, num_evals)
    setup = LoopSetup(
        make_agent, env, schedule, num_eval_envs, progress, eval_max_steps, eval_progress
    )
    return _LOOPS[type(data)](data, setup)
