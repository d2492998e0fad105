"""Checks the agent test modules share: bitwise pytree equality, a two-seed jitted run,
a discrete-only registry entry and learning CartPole (``import train_checks``: pytest puts
``tests/`` on the path)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import agents, sweep
from jaxrl.loops import AlgoSpec


def leaves_equal(a: Any, b: Any) -> bool:
    """Whether pytrees ``a`` and ``b`` have the same leaves, bit for bit."""
    return all(bool(jnp.all(x == y)) for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True))


def two_seed_run(spec: AlgoSpec, config: Any, env: Any) -> Any:
    """The final agent states (leaves ``[2, ...]``) of ``config`` on ``env`` over two seeds
    (``sweep.over_seeds``, default hparams), after asserting that ``eval_return`` is
    ``[2, num_evals]`` and finite, that the seeds' first parameters differ and that a
    second run gives the same states bit for bit."""
    train = spec.make_train(config, env)
    hp = spec.default_hparams()
    keys = sweep.seed_keys(0, 2)
    run = sweep.over_seeds(train, 2)
    states, metrics = run(keys, hp)
    assert metrics["eval_return"].shape == (2, config.num_evals)
    assert bool(np.all(metrics["finite"]))
    first = jax.tree.leaves(states.params)[0]
    assert not np.allclose(first[0], first[1])  # the seeds differ
    assert leaves_equal(states, run(keys, hp)[0])  # a run is a function of its key
    return states


def check_discrete_only(spec: AlgoSpec) -> None:
    """``spec`` is registered under its name, for discrete actions only, and its
    ``make_train`` refuses pendulum's continuous actions."""
    assert agents.get(spec.name) is spec and spec.action_kinds == ("discrete",)
    with pytest.raises(ValueError, match=f"{spec.name} needs a discrete action space"):
        spec.make_train(spec.config(), E.make("pendulum"))


def check_learns_cartpole(spec: AlgoSpec, total_steps: int, threshold: float) -> None:
    """Two seeds of ``spec``'s default ``Config`` on cartpole for ``total_steps`` env steps
    end finite, with a mean final evaluation return of at least ``threshold``."""
    train = spec.make_train(spec.config(total_steps=total_steps), E.make("cartpole"))
    _, metrics = sweep.over_seeds(train, 2)(sweep.seed_keys(0, 2), spec.default_hparams())
    final = np.asarray(metrics["eval_return"])[:, -1]
    print(f"{spec.name} cartpole {total_steps} steps, final returns:", final)
    assert bool(np.all(metrics["finite"]))
    assert final.mean() >= threshold, final
