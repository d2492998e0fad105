"""AssistanceZero (Laidlaw et al., 2025, "AssistanceZero: Scalably Solving Assistance
Games") on the ``assist/<name>`` building games (``jaxrl.envs.assist``).

AlphaZero's policy and value heads plus two more on the assistant's observation:

- a human-action head: the human's next action (``[2N + 1]`` logits), given the board
  the assistant's move leaves (the observation carries the human's history);
- a goal head: per-cell logits of the hidden goal (``[N]``).

The search never touches the hidden goal or the simulated human. A tree node is the
observable ``Board`` (grid, human history, time) plus the root's goal belief
``p = sigmoid(goal logits)``; an edge applies the assistant's action with the known
block physics, samples the human's reply from the human-action head, applies it, and
scores the step with the expected progress under ``p``,
``E[matches(g')] - E[matches(g)]`` with ``E[matches(g)] = sum(g p + (1 - g)(1 - p))``,
the human's part taken in expectation over the predicted reply (the sample only picks
the child node; with one visit per root action a sampled reply's +-1 swamps the
assistant's own +-1);
the predicted probability that the grid equals the goal, ``prod(g p + (1 - g)(1 - p))``,
ends the episode (``discount = gamma (1 - P(done))``). Root search statistics are the
policy and value targets (as AlphaZero); the human head is trained by cross-entropy on
the human's observed replies and the goal head by per-cell cross-entropy on the goal,
which the simulated human reveals at training time (the act-time extra ``goal``).

Flags: ``human_model=False`` is the ablation without the human-action head in search
(the tree's human never acts); ``imitate=True`` is the imitation-learning baseline: no
search, the assistant samples (evaluation: argmax) the human-action head, i.e. does what
the human would do (behaviour cloning of the human's actions).
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import mctx
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.planning import common as pc
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, hparam
from jaxrl.envs import Env, HumanModel, capability
from jaxrl.envs import assist as game
from jaxrl.loops import AlgoSpec

EXTRAS = (*pc.EXTRAS, "goal", "goal_known")


@dataclasses.dataclass(frozen=True)
class Config(pc.Config):
    """The planners' settings plus the two AssistanceZero switches."""

    updates_per_iter: int = 4
    human_model: bool = True  # False: the ablation, the search's human never acts
    imitate: bool = False  # True: the BC baseline, act with the human-action head


@struct.dataclass
class HParams(pc.HParams):
    human_coef: float = hparam(1.0, NONNEGATIVE)
    goal_coef: float = hparam(1.0, NONNEGATIVE)


class Node(struct.PyTreeNode):
    """A search node: the observable board and the root's goal belief ``[B, N]``."""

    board: game.Board
    goal_prob: jax.Array


def expected_matches(grid: jax.Array, goal_prob: jax.Array) -> jax.Array:
    """``E[#cells equal to the goal]`` under independent per-cell goal probabilities."""
    return jnp.sum(grid * goal_prob + (1.0 - grid) * (1.0 - goal_prob), axis=-1)


def done_prob(grid: jax.Array, goal_prob: jax.Array) -> jax.Array:
    """The probability that ``grid`` equals the goal (cells independent)."""
    match = grid * goal_prob + (1.0 - grid) * (1.0 - goal_prob)
    return jnp.exp(jnp.sum(jnp.log(jnp.clip(match, 1e-6, 1.0)), axis=-1))


def human_gains(grid: jax.Array, goal_prob: jax.Array) -> jax.Array:
    """``[..., 2N + 1]``: the change in ``expected_matches`` each action makes on ``grid``
    (no-op 0; placing on an empty cell ``2p - 1``; removing a block ``1 - 2p``)."""
    place = jnp.where(grid > 0, 0.0, 2.0 * goal_prob - 1.0)
    remove = jnp.where(grid > 0, 1.0 - 2.0 * goal_prob, 0.0)
    return jnp.concatenate([jnp.zeros_like(grid[..., :1]), place, remove], axis=-1)


def check(config: Config, env: Env) -> None:
    pc.check(config, env)
    capability(env, HumanModel)
    if config.imitate and not config.human_model:
        raise ValueError("imitate=True acts with the human-action head: needs human_model=True")


def data(config: Config, env: Env) -> loops.Replay:
    return pc.data(config, env, EXTRAS)


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """AssistanceZero's (init, act, update) on an assistance game (``HumanModel``)."""
    model = capability(env, HumanModel)
    cfg = model.config
    n, horizon, num_actions = cfg.num_cells, cfg.horizon, cfg.num_actions
    net = pc.PlanNet(num_actions, tuple(config.hidden), num_cells=n)
    tx = adam(hparams.lr)
    observe = jax.vmap(lambda b: game.observe(b, horizon))
    from_obs = jax.vmap(lambda o: game.board_from_obs(o, horizon))

    def init(key: jax.Array) -> pc.PlanState:
        params = net.init(key, jnp.zeros(env.observation_spec.shape))
        return pc.PlanState(params, tx.init(params), jnp.zeros((), jnp.int32))

    def recurrent_fn(params, key, action, node: Node):
        board, p = node.board, node.goal_prob
        mid_grid = jax.vmap(game.apply_action)(board.grid, action)
        reward = expected_matches(mid_grid, p) - expected_matches(board.grid, p)
        if config.human_model:
            mid = board.replace(grid=mid_grid)
            human_logits = net.apply(params, observe(mid))["human"]
            human = jax.random.categorical(key, human_logits).astype(jnp.int32)
            # The human's part of the reward in expectation over the predicted reply
            # (the sampled reply only picks the child): far less noise per simulation.
            gain = human_gains(mid_grid, p)
            reward = reward + jnp.sum(jax.nn.softmax(human_logits) * gain, axis=-1)
        else:
            human = jnp.zeros_like(action)
        nxt = jax.vmap(game.record_human)(board, mid_grid, human)
        out = net.apply(params, observe(nxt))
        discount = hparams.gamma * (1.0 - done_prob(nxt.grid, p))
        step = mctx.RecurrentFnOutput(
            reward=reward, discount=discount, prior_logits=out["policy"], value=out["value"]
        )
        return step, Node(nxt, p)

    def act(state, obs, key, explore=True, *, env_state=None, carry=None):
        out = net.apply(state.params, obs)
        if config.imitate:
            logits = out["human"]
            sampled = jax.random.categorical(key, logits)
            action = jnp.where(explore, sampled, jnp.argmax(logits, -1)).astype(jnp.int32)
            info = {
                "search_policy": jax.nn.softmax(logits),
                "search_value": out["value"],
                "searched": jnp.ones_like(out["value"]),
            }
        else:
            node = Node(from_obs(obs), jax.nn.sigmoid(out["goal"]))
            root = mctx.RootFnOutput(prior_logits=out["policy"], value=out["value"], embedding=node)
            action, info = pc.run_search(config, state.params, key, root, recurrent_fn, explore)
        if env_state is None:  # no simulator: nothing reveals the goal
            goal, known = jnp.zeros_like(out["goal"]), jnp.zeros_like(out["value"])
        else:
            goal, known = model.goal(env_state), jnp.ones_like(out["value"])
        return action, {**info, "goal": goal, "goal_known": known}

    def losses(params, batch: Transition):
        out = net.apply(params, batch.obs)
        loss, metrics = pc.search_losses(out, batch.extras, hparams.value_coef)
        if config.imitate:  # BC learns only the human's actions
            loss = 0.0 * loss
        # The human replied to the board the assistant's action left.
        board = from_obs(batch.obs)
        mid = board.replace(grid=jax.vmap(game.apply_action)(board.grid, batch.action))
        human = jax.vmap(game.plane_action)(from_obs(batch.next_obs).last_human)
        human_logits = net.apply(params, observe(mid))["human"]
        human_loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(human_logits, human))
        known = batch.extras["goal_known"]
        goal_ce = jnp.mean(
            optax.sigmoid_binary_cross_entropy(out["goal"], batch.extras["goal"]), -1
        )
        goal_loss = jnp.sum(known * goal_ce) / jnp.maximum(jnp.sum(known), 1.0)
        human_acc = jnp.mean((jnp.argmax(human_logits, -1) == human).astype(jnp.float32))
        total = loss + hparams.human_coef * human_loss + hparams.goal_coef * goal_loss
        metrics = {
            **metrics,
            "human_loss": human_loss,
            "goal_loss": goal_loss,
            "human_acc": human_acc,
        }
        return total, metrics

    def update(state: pc.PlanState, batch: Transition, key: jax.Array):
        chex.assert_rank([batch.obs, batch.next_obs], 2)
        chex.assert_shape(batch.extras["goal"], (batch.obs.shape[0], n))
        (loss, metrics), grads = jax.value_and_grad(losses, has_aux=True)(state.params, batch)
        return pc.apply_grads(state, tx, grads), {**metrics, "loss": loss}

    return Agent(init, act, update)


SPEC = AlgoSpec(
    name="assistancezero",
    summary="AssistanceZero: mctx search with learned human-action and goal heads (assist/*)",
    config=Config,
    hparams=HParams,
    make_agent=make_agent,
    data=data,
    action_kinds=("discrete",),
    default_env="assist/build",
    positive=pc.POSITIVE,
    check=check,
)
