"""Shared pieces of the planning family (AlphaZero, AssistanceZero, MuZero) on ``mctx``.

A planner acts by running a tree search from every env in the batch
(``mctx.gumbel_muzero_policy``, or PUCT ``mctx.muzero_policy``). The search statistics
are returned in ``act``'s info and kept by the replay buffer (``Replay(extras=...)``):

- ``search_policy [B, A]``: the improved policy (Gumbel: ``softmax(logits + sigma(q))``;
  PUCT: the normalised visit counts), the policy target;
- ``search_value [B]``: the root's backed-up value, the value target;
- ``searched [B]``: 1 for steps the search chose (0 for the loop's random warm-up steps,
  whose extras are zeros), a loss mask.

The info also carries ``visit_counts [B, A]`` (int32), the simulations that went through
each root action, and ``search_depth [B]`` (int32), the depth of the deepest node the
search expanded (the root is depth 0), for inspection (no replay keeps them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
import optax
from flax import struct

from jaxrl import loops
from jaxrl.core import domains
from jaxrl.core.domains import NONNEGATIVE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.nets.mlp import MLP

SEARCHES = ("gumbel", "puct")
EXTRAS = ("search_policy", "search_value", "searched")
POSITIVE = (*loops.REPLAY_POSITIVE, "updates_per_iter", "num_simulations")


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings of every planner here (replay, network, search)."""

    total_steps: int = 20_000
    num_envs: int = 16
    batch_size: int = 128
    buffer_size: int = 20_000
    warmup_steps: int = 256
    updates_per_iter: int = 1
    hidden: tuple[int, ...] = (128, 128)
    search: str = "gumbel"  # "gumbel" (Gumbel MuZero) or "puct" (AlphaZero/MuZero PUCT)
    num_simulations: int = 16
    max_considered: int = 16  # Gumbel: actions considered at the root
    num_evals: int = 10
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays, vmappable)."""

    lr: float = hparam(1e-3, domains.POSITIVE)
    gamma: float = hparam(0.95, UNIT)
    value_coef: float = hparam(0.5, NONNEGATIVE)


class PlanState(struct.PyTreeNode):
    """Network parameters, optimiser state and the update count (int32)."""

    params: Any
    opt_state: Any
    step: jax.Array


class PlanNet(nn.Module):
    """MLP torso with a policy ``[..., A]`` and value ``[...]`` head; with
    ``num_cells > 0`` also a human-action head ``[..., A]`` and a goal head
    ``[..., num_cells]`` (AssistanceZero)."""

    num_actions: int
    hidden: tuple[int, ...]
    num_cells: int = 0

    @nn.compact
    def __call__(self, obs: jax.Array) -> dict[str, jax.Array]:
        h = MLP(self.hidden)(obs)
        out = {
            "policy": nn.Dense(self.num_actions)(h),
            "value": nn.Dense(1)(h)[..., 0],
        }
        if self.num_cells:
            out["human"] = nn.Dense(self.num_actions)(MLP(self.hidden[-1:])(obs))
            out["goal"] = nn.Dense(self.num_cells)(MLP(self.hidden[-1:])(obs))
        return out


def check(config: Config, env: Env) -> None:
    """ValueError for settings no planner here can run."""
    if config.search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {config.search!r}")
    if not env.action_spec.discrete:
        raise ValueError("a tree search needs a discrete action space")
    if config.max_considered <= 0:
        raise ValueError(f"max_considered must be positive, got {config.max_considered}")
    if len(env.observation_spec.shape) != 1:
        raise ValueError(f"needs flat observations, got shape {env.observation_spec.shape}")


def data(
    config: Config, env: Env, extras: tuple[str, ...] = EXTRAS, sequence_len: int = 1
) -> loops.Replay:
    """Replay that keeps the search statistics (and any further ``extras``); with
    ``sequence_len > 1`` batches are runs of consecutive steps ``[sequence_len, B, ...]``."""
    return loops.Replay.from_config(config, extras, sequence_len)


def tree_depth(tree: mctx.Tree) -> jax.Array:
    """``[B]`` int32: the largest depth of an expanded node of ``tree`` (root 0).

    A node's depth is its parent's plus one; nodes are numbered in expansion order, so
    one pass in that order sees every parent before its children."""
    parents = tree.parents  # [B, N], -1 for the root and unexpanded nodes
    num_nodes = parents.shape[1]

    def body(i, depth):
        parent = parents[:, i]
        d = jnp.take_along_axis(depth, jnp.maximum(parent, 0)[:, None], 1)[:, 0] + 1
        return depth.at[:, i].set(jnp.where(parent >= 0, d, 0))

    depth = jax.lax.fori_loop(1, num_nodes, body, jnp.zeros(parents.shape, jnp.int32))
    expanded = tree.node_visits > 0
    return jnp.max(jnp.where(expanded, depth, 0), axis=1)


def run_search(
    config: Config,
    params: Any,
    key: jax.Array,
    root: mctx.RootFnOutput,
    recurrent_fn: Callable,
    explore: bool,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """One batched search from ``root`` (leaves ``[B, ...]``).

    Returns ``(action [B] int32, info)`` with ``info`` the ``EXTRAS`` and the root's
    ``visit_counts [B, A]``. ``explore=False`` picks the search's best action
    deterministically.
    """
    if config.search == "gumbel":
        out = mctx.gumbel_muzero_policy(
            params,
            key,
            root,
            recurrent_fn,
            num_simulations=config.num_simulations,
            max_num_considered_actions=config.max_considered,
            gumbel_scale=1.0 if explore else 0.0,
        )
        action = out.action
    else:
        out = mctx.muzero_policy(
            params,
            key,
            root,
            recurrent_fn,
            num_simulations=config.num_simulations,
            dirichlet_fraction=0.25 if explore else 0.0,
        )
        action = out.action if explore else jnp.argmax(out.action_weights, axis=-1)
    summary = out.search_tree.summary()
    info = {
        "search_policy": out.action_weights,
        "search_value": summary.value,
        "searched": jnp.ones_like(summary.value),
        "visit_counts": summary.visit_counts.astype(jnp.int32),
        "search_depth": tree_depth(out.search_tree),
    }
    return action.astype(jnp.int32), info


def search_losses(
    out: dict[str, jax.Array], extras: dict[str, jax.Array], value_coef: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Cross-entropy to the search policy plus ``value_coef`` x squared error to the
    search value, averaged over the searched steps. ``out``: the net on ``[N, obs]``."""
    mask = extras["searched"]
    chex.assert_equal_shape([out["value"], mask, extras["search_value"]])
    denom = jnp.maximum(jnp.sum(mask), 1.0)
    log_pi = jax.nn.log_softmax(out["policy"])
    policy_loss = -jnp.sum(mask * jnp.sum(extras["search_policy"] * log_pi, -1)) / denom
    value_loss = jnp.sum(mask * (out["value"] - extras["search_value"]) ** 2) / denom
    metrics = {"policy_loss": policy_loss, "value_loss": value_loss}
    return policy_loss + value_coef * value_loss, metrics


def apply_grads(state: PlanState, tx: optax.GradientTransformation, grads: Any) -> PlanState:
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return PlanState(optax.apply_updates(state.params, updates), opt_state, state.step + 1)
