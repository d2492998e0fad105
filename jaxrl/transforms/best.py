"""The absolute evaluation protocol (Gorsane et al. 2022): keep the agent state of the
run's best evaluation, then re-evaluate it with many more episodes at the end.

``with_best(trainer)`` returns a ``Trainer`` whose state also holds the agent state of the
best evaluation so far (by ``eval_return``, first best kept on ties); its training and
metrics are those of ``trainer``. ``absolute_return(trainer, state, hparams, episodes)``
evaluates that state with the loop's own evaluation routine.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.loops.run import RunState, Trainer


class BestState(struct.PyTreeNode):
    """``run``: the wrapped run's state; ``best``: the agent state of the best evaluation
    so far; ``best_return``: its ``eval_return`` (``-inf`` before the first)."""

    run: RunState
    best: Any
    best_return: jax.Array

    @property
    def agent_state(self) -> Any:
        return self.run.agent_state

    @property
    def carry(self) -> Any:
        return self.run.carry

    @property
    def period_keys(self) -> jax.Array:
        return self.run.period_keys


def with_best(trainer: Trainer) -> Trainer:
    """``trainer`` that also keeps the agent state of its best evaluation (see module)."""
    if trainer.evaluate is None:
        raise ValueError("with_best needs a loop's trainer (one with an evaluate routine)")
    one = functools.partial(trainer.run_periods, num=1)

    def init(key: jax.Array, hparams: Any) -> BestState:
        run = trainer.init(key, hparams)
        return BestState(run, run.agent_state, jnp.asarray(-jnp.inf, jnp.float32))

    def run_periods(state: BestState, hparams: Any, num: int) -> tuple[BestState, Any]:
        def period(s: BestState, _):
            run, metrics = one(s.run, hparams)
            metrics = jax.tree.map(lambda x: x[0], metrics)
            ret = metrics["eval_return"]
            better = ret > s.best_return  # NaN is never better
            best = jax.tree.map(
                lambda new, old: jnp.where(better, new, old), run.agent_state, s.best
            )
            return BestState(run, best, jnp.where(better, ret, s.best_return)), metrics

        return jax.lax.scan(period, state, None, length=num)

    return Trainer(trainer.schedule, init, run_periods, trainer.evaluate)


def absolute_return(
    trainer: Trainer, state: BestState, hparams: Any, episodes: int
) -> tuple[jax.Array, jax.Array]:
    """``(mean, std)`` return of ``state.best`` over ``episodes`` deterministic episodes.

    The evaluation key derives from the run's last period key, so it is fixed per run.
    """
    carry = state.run.carry.replace(agent_state=state.best)
    key = jax.random.fold_in(state.run.period_keys[-1], 1)
    return trainer.evaluate(carry, hparams, key, episodes)
