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

With a ``human_action_cost`` in the game the edge also charges the cost times the
predicted probability that the human's reply changes the grid.

Flags:

- ``human_source``: the search's human model. ``"online"`` (default): the human-action
  head, trained on the replies of the human met in training. ``"learned_bc"``: as the
  paper, a model learned from recorded human data: ``init`` records
  ``human_episodes`` games of the simulated human building alone at the game's
  temperature and fits a ``BCPolicy`` by behaviour cloning (``human_data``); the search
  reads it, frozen, in place of the head.
- ``human_model=False``: the ablation without a human in search (the tree's human never
  acts).
- ``imitate=True``: the imitation baseline, as the paper's: an assistant cloned from
  recorded human data. ``init`` records ``human_episodes`` human-human games (a second
  scripted human, who knows the goal, in the assistant's seat) and fits a ``BCPolicy``
  to the assistant seat's actions on its observations; ``act`` samples it (evaluation:
  argmax), no search and no training updates.
- ``value_target``: ``"search"`` (default): the root's search value, AlphaZero's;
  ``"n_step"``: the discounted return of ``td_steps`` real rewards bootstrapped with
  the network's value (held fixed) where the episode goes on (the official code trains
  on discounted returns of real rewards); the replay then hands runs of ``td_steps``
  steps and every loss is taken on the first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import mctx
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.planning import common as pc
from jaxrl.agents.planning import human_data
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, hparam
from jaxrl.envs import Env, HumanModel, capability
from jaxrl.envs import assist as game
from jaxrl.loops import AlgoSpec
from jaxrl.returns import n_step_return

EXTRAS = (*pc.EXTRAS, "goal", "goal_known")
HUMAN_SOURCES = ("online", "learned_bc")
VALUE_TARGETS = ("search", "n_step")


@dataclasses.dataclass(frozen=True)
class Config(pc.Config):
    """The planners' settings plus the two AssistanceZero switches."""

    updates_per_iter: int = 4
    human_model: bool = True  # False: the ablation, the search's human never acts
    human_source: str = "online"  # or "learned_bc": BC on recorded human episodes
    imitate: bool = False  # True: the BC baseline, an assistant cloned from human data
    human_episodes: int = 256  # recorded games (learned_bc, imitate)
    human_fit_steps: int = 2000  # Adam steps of the BC fit (learned_bc, imitate)
    value_target: str = "search"  # or "n_step": discounted returns of real rewards
    td_steps: int = 10  # n of the n-step value target


@struct.dataclass
class HParams(pc.HParams):
    human_coef: float = hparam(1.0, NONNEGATIVE)
    goal_coef: float = hparam(1.0, NONNEGATIVE)


class AZState(pc.PlanState):
    """``PlanState`` plus the frozen parameters of a ``BCPolicy`` fitted at ``init``: the
    search's human model (``human_source="learned_bc"``) or the assistant (``imitate``)."""

    bc_params: Any


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


def n_step_first(
    batch: Transition, value_fn: Callable[[jax.Array], jax.Array], gamma: jax.Array | float
) -> Transition:
    """The first step of each run of ``batch`` (leaves ``[L, B, ...]``) with its
    ``search_value`` extra replaced by the n-step return of the run's real rewards,
    ``sum_{t<m} gamma^t r_t + gamma^m (1 - terminated) value_fn(next_obs[m - 1])``
    (``m``: ``L`` or up to the first episode end; ``value_fn`` held fixed)."""
    ret, discount, last = n_step_return(
        batch.reward.astype(jnp.float32), batch.terminated, batch.truncated, gamma
    )
    boot_obs = jnp.take_along_axis(batch.next_obs, last[None, :, None], axis=0)[0]
    boot = jax.lax.stop_gradient(value_fn(boot_obs))
    first = jax.tree.map(lambda x: x[0], batch.replace(context=None))
    extras = {**first.extras, "search_value": ret + discount * boot}
    return first.replace(extras=extras, context=batch.context)


def check(config: Config, env: Env) -> None:
    pc.check(config, env)
    capability(env, HumanModel)
    if config.imitate and not config.human_model:
        raise ValueError("imitate=True is the BC baseline: keep human_model=True")
    if config.human_source not in HUMAN_SOURCES:
        raise ValueError(
            f"human_source must be one of {HUMAN_SOURCES}, got {config.human_source!r}"
        )
    if config.value_target not in VALUE_TARGETS:
        raise ValueError(
            f"value_target must be one of {VALUE_TARGETS}, got {config.value_target!r}"
        )
    for f in ("human_episodes", "human_fit_steps", "td_steps"):
        if getattr(config, f) <= 0:
            raise ValueError(f"{f} must be positive, got {getattr(config, f)}")


def data(config: Config, env: Env) -> loops.Replay:
    """Replay with the search statistics; runs of ``td_steps`` steps for ``n_step``."""
    seq = config.td_steps if config.value_target == "n_step" else 1
    return pc.data(config, env, EXTRAS, sequence_len=seq)


def fits_bc(config: Config) -> bool:
    """Whether ``init`` records human data and fits a ``BCPolicy``."""
    return config.imitate or (config.human_model and config.human_source == "learned_bc")


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

    bc_net = human_data.BCPolicy(num_actions, tuple(config.hidden))
    use_bc_human = not config.imitate and config.human_model and config.human_source != "online"
    cost = float(cfg.human_action_cost)

    def init(key: jax.Array) -> pc.PlanState:
        if not fits_bc(config):  # today's path, key for key
            params = net.init(key, jnp.zeros(env.observation_spec.shape))
            return pc.PlanState(params, tx.init(params), jnp.zeros((), jnp.int32))
        key, record_key, fit_key = jax.random.split(key, 3)
        params = net.init(key, jnp.zeros(env.observation_spec.shape))
        human, assistant = human_data.record(
            cfg, record_key, config.human_episodes, assistant=config.imitate
        )
        demos = assistant if config.imitate else human
        bc_params = human_data.fit_bc(bc_net, fit_key, demos, config.human_fit_steps)
        return AZState(params, tx.init(params), jnp.zeros((), jnp.int32), bc_params)

    def search_human_logits(params, bc_params, mid_obs):
        if use_bc_human:
            return bc_net.apply(bc_params, mid_obs)
        return net.apply(params, mid_obs)["human"]

    def recurrent_fn(search_params, key, action, node: Node):
        params, bc_params = search_params if use_bc_human else (search_params, None)
        board, p = node.board, node.goal_prob
        mid_grid = jax.vmap(game.apply_action)(board.grid, action)
        reward = expected_matches(mid_grid, p) - expected_matches(board.grid, p)
        if config.human_model:
            mid = board.replace(grid=mid_grid)
            human_logits = search_human_logits(params, bc_params, observe(mid))
            human = jax.random.categorical(key, human_logits).astype(jnp.int32)
            # The human's part of the reward in expectation over the predicted reply
            # (the sampled reply only picks the child): far less noise per simulation.
            gain = human_gains(mid_grid, p)
            if cost:  # the expected cost of the reply: P(it changes the grid) x cost
                gain = gain - cost * game.effective(mid_grid)
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
            logits = bc_net.apply(state.bc_params, obs)
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
            search_params = (state.params, state.bc_params) if use_bc_human else state.params
            action, info = pc.run_search(config, search_params, key, root, recurrent_fn, explore)
        if env_state is None:  # no simulator: nothing reveals the goal
            goal, known = jnp.zeros_like(out["goal"]), jnp.zeros_like(out["value"])
        else:
            goal, known = model.goal(env_state), jnp.ones_like(out["value"])
        return action, {**info, "goal": goal, "goal_known": known}

    def losses(params, batch: Transition):
        if config.value_target == "n_step":
            batch = n_step_first(batch, lambda o: net.apply(params, o)["value"], hparams.gamma)
        out = net.apply(params, batch.obs)
        loss, metrics = pc.search_losses(out, batch.extras, hparams.value_coef)
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
        rank = 3 if config.value_target == "n_step" else 2
        chex.assert_rank([batch.obs, batch.next_obs], rank)
        chex.assert_shape(batch.extras["goal"], (*batch.obs.shape[:-1], n))
        if config.imitate:  # the cloned assistant is fixed: nothing to train
            return state, {"loss": jnp.zeros(())}
        (loss, metrics), grads = jax.value_and_grad(losses, has_aux=True)(state.params, batch)
        new = pc.apply_grads(state, tx, grads)
        if isinstance(state, AZState):
            new = AZState(new.params, new.opt_state, new.step, state.bc_params)
        return new, {**metrics, "loss": loss}

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
    positive=(*pc.POSITIVE, "human_episodes", "human_fit_steps", "td_steps"),
    check=check,
)
