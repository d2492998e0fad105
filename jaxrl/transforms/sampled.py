"""Sampled-action evaluation of a run's final agents, as an evaluation hook.

The loop's evaluation (``jaxrl.loops.evaluate``) takes the policy's mode (greedy) unless
the env samples (``eval_explore``); an untrained or nearly flat policy then repeats one
action. A spec that declares ``eval_hooks=(sampled.HOOK,)`` gets, after training, the
final agents evaluated twice by that same routine over ``num_eval_envs`` episodes of at
most ``eval_max_steps`` steps: with sampled actions (``explore=True``) and greedily
(``explore=False``), with the same keys. ``summary.json`` gains ``sampled_return`` and
``greedy_return`` (means over seeds), ``sampled_returns`` and ``greedy_returns`` (per
seed) and ``sampled_episodes``.
"""

from __future__ import annotations

from typing import Any

import jax

from jaxrl.loops import EvalHook, HookInput, evaluate


def run(given: HookInput) -> dict[str, Any]:
    """Per-seed sampled and greedy returns of the final agents (leading ``[seeds]``)."""
    seeds = jax.tree.leaves(given.agent_states)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(given.seed), 0x5A3), seeds)
    num_envs = given.config.num_eval_envs
    max_steps = given.config.eval_max_steps

    def one(state: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        def mean_return(explore: bool) -> jax.Array:
            agent, env = given.agent, given.env
            return evaluate(agent, state, env, key, num_envs, None, max_steps, explore)[0]

        return mean_return(True), mean_return(False)

    sampled, greedy = given.to_host(jax.jit(jax.vmap(one))(given.agent_states, keys))
    return {
        "sampled_return": float(sampled.mean()),
        "sampled_returns": [float(x) for x in sampled],
        "greedy_return": float(greedy.mean()),
        "greedy_returns": [float(x) for x in greedy],
        "sampled_episodes": int(num_envs),
    }


def rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The line of ``jaxrl train``'s table."""
    if "sampled_return" not in summary:
        return []
    text = f"{summary['sampled_return']:.2f} sampled, {summary['greedy_return']:.2f} greedy"
    return [("final return", f"{text} ({summary['sampled_episodes']} episodes per seed)")]


HOOK = EvalHook("sampled", run, rows)
