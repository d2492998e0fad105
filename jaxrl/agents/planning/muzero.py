"""MuZero (Schrittwieser et al., 2020, "Mastering Atari, Go, Chess and Shogi by Planning
with a Learned Model") on ``mctx``: the search never touches the simulator.

Three networks over a hidden state ``s [B, E]`` (min-max normalised to ``[0, 1]`` per
sample, as the paper's Appendix G):

- representation ``h``: ``obs [B, obs] -> s``;
- dynamics ``g``: ``(s, a) -> (s', r)`` (reward of the move);
- prediction ``f``: ``s -> (policy logits [B, A], value [B])``.

``act`` runs ``mctx.muzero_policy`` (PUCT, ``search="puct"``) or
``mctx.gumbel_muzero_policy`` (``search="gumbel"``) from ``s = h(obs)`` with ``g`` and
``f`` as the ``recurrent_fn`` and a constant discount ``gamma`` (the model does not
predict episode ends: past a termination it is trained to an absorbing state).

**Training** (the paper's Appendix G loss). The replay loop hands runs of ``K + n``
consecutive steps ``[K + n, B, ...]`` (``K = unroll_steps``, ``n = td_steps``). From
``s_0 = h(o_t)`` the dynamics unrolls the stored actions ``a_t..a_{t+K-1}``; at each
unroll step ``k`` (``0..K``):

- value target ``z_{t+k} = sum_{i<m} gamma^i r_{t+k+i} + gamma^m v(o_{t+k+m})``, the
  n-step return of real rewards, ``m = n`` or up to the first episode end (a termination
  does not bootstrap, a truncation does); ``v`` is the current network's value of that
  observation, held fixed (the paper bootstraps from the stored search value; a fresh
  network value keeps the random warm-up steps usable);
- reward target (``k >= 1``) ``u_{t+k} = r_{t+k-1}``, the real reward of the move;
- policy target: the stored search policy (Gumbel: the improved policy; PUCT: visit
  counts), masked on the loop's random warm-up steps.

Past the first episode end in a run: after a termination the state is absorbing (value
and reward targets 0, no policy loss); after a truncation nothing is trained (the run's
rest belongs to another episode). Loss ``sum_k [value_coef (v_k - z)^2 +
reward_coef (r_k - u)^2 + CE(pi, p_k)]`` averaged over the batch, with the gradient of
each step ``k >= 1`` scaled by ``1 / K`` and the hidden state's by ``0.5`` at each
dynamics step. Value and reward heads are scalars: ``value_transform="h"`` trains them
on ``h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x`` (``eps = 1e-3``; Pohlen et al. 2018,
the paper's transform) of their targets and the search reads ``h^-1``; the default
``"identity"`` suits small tasks with returns of a few units. Departures: scalar heads
(the paper: categorical over 601 supports), Adam without weight decay, uniform replay
(the paper: prioritised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
from flax import struct

from jaxrl import loops
from jaxrl.agents.planning import common as pc
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, hparam
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.nets.mlp import MLP
from jaxrl.returns import n_step_return

TRANSFORMS = ("identity", "h")
H_EPS = 1e-3


@dataclasses.dataclass(frozen=True)
class Config(pc.Config):
    """The planners' settings plus the model's."""

    updates_per_iter: int = 2
    num_simulations: int = 32  # more than max_considered: the tree grows past depth 1
    max_considered: int = 8
    unroll_steps: int = 5  # K: dynamics steps unrolled in training
    td_steps: int = 5  # n: steps of real rewards in the value target
    embed_size: int = 32  # E: hidden-state size
    value_transform: str = "identity"  # or "h" (the paper's invertible transform)


@struct.dataclass
class HParams(pc.HParams):
    value_coef: float = hparam(0.25, NONNEGATIVE)  # the paper scales the value loss by 0.25
    reward_coef: float = hparam(1.0, NONNEGATIVE)


# ---- value transform ------------------------------------------------------------------


def h_transform(x: jax.Array) -> jax.Array:
    """``sign(x)(sqrt(|x| + 1) - 1) + eps x`` (elementwise)."""
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + H_EPS * x


def h_inverse(y: jax.Array) -> jax.Array:
    """The inverse of ``h_transform`` (closed form)."""
    root = (jnp.sqrt(1.0 + 4.0 * H_EPS * (jnp.abs(y) + 1.0 + H_EPS)) - 1.0) / (2.0 * H_EPS)
    return jnp.sign(y) * (root**2 - 1.0)


def transforms(name: str) -> tuple[Callable, Callable]:
    """``(to_head, from_head)`` for ``value_transform`` ``name``."""
    if name == "h":
        return h_transform, h_inverse
    return (lambda x: x), (lambda x: x)


# ---- networks -------------------------------------------------------------------------


def min_max(s: jax.Array) -> jax.Array:
    """``[..., E]`` scaled to ``[0, 1]`` per vector: ``(s - min) / (max - min)`` (the
    range floored at 1e-5)."""
    lo, hi = jnp.min(s, -1, keepdims=True), jnp.max(s, -1, keepdims=True)
    return (s - lo) / jnp.maximum(hi - lo, 1e-5)


def scale_gradient(x: jax.Array, scale: float) -> jax.Array:
    """``x`` in the forward pass; its gradient times ``scale`` in the backward pass."""
    return x * scale + jax.lax.stop_gradient(x) * (1.0 - scale)


class MuZeroNet(nn.Module):
    """Representation, dynamics and prediction MLPs (methods ``represent``,
    ``dynamics``, ``predict``; ``__call__`` runs all three once, for ``init``)."""

    num_actions: int
    hidden: tuple[int, ...]
    embed_size: int

    def setup(self) -> None:
        self.repr_torso = MLP(self.hidden)
        self.repr_out = nn.Dense(self.embed_size)
        self.dyn_torso = MLP(self.hidden)
        self.dyn_state = nn.Dense(self.embed_size)
        self.dyn_reward = nn.Dense(1)
        self.pred_torso = MLP(self.hidden)
        self.pred_policy = nn.Dense(self.num_actions)
        self.pred_value = nn.Dense(1)

    def represent(self, obs: jax.Array) -> jax.Array:
        """``[B, obs] -> s [B, E]``."""
        return min_max(self.repr_out(self.repr_torso(obs)))

    def dynamics(self, s: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(s [B, E], action [B] int) -> (s' [B, E], reward head [B])``."""
        x = jnp.concatenate([s, jax.nn.one_hot(action, self.num_actions)], -1)
        h = self.dyn_torso(x)
        return min_max(self.dyn_state(h)), self.dyn_reward(h)[..., 0]

    def predict(self, s: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``s [B, E] -> (policy logits [B, A], value head [B])``."""
        h = self.pred_torso(s)
        return self.pred_policy(h), self.pred_value(h)[..., 0]

    def __call__(self, obs: jax.Array, action: jax.Array) -> Any:
        s, r = self.dynamics(self.represent(obs), action)
        return self.predict(s), r


class Model(NamedTuple):
    """The learned model as pure functions of ``params`` (heads in transformed units):
    ``represent(params, obs) -> s``, ``dynamics(params, s, a) -> (s', r)``,
    ``predict(params, s) -> (logits, v)``. Tests hand-set one."""

    represent: Callable
    dynamics: Callable
    predict: Callable


def net_model(net: MuZeroNet) -> Model:
    return Model(
        lambda p, obs: net.apply(p, obs, method=MuZeroNet.represent),
        lambda p, s, a: net.apply(p, s, a, method=MuZeroNet.dynamics),
        lambda p, s: net.apply(p, s, method=MuZeroNet.predict),
    )


# ---- search ---------------------------------------------------------------------------


def plan(
    config: Config,
    model: Model,
    params: Any,
    key: jax.Array,
    obs: jax.Array,
    gamma: jax.Array | float,
    explore: bool,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A search in the learned model from ``obs [B, obs]``: ``(action [B] int32, info)``
    with ``pc.EXTRAS`` in ``info`` (``pc.run_search``)."""
    _, from_head = transforms(config.value_transform)
    s = model.represent(params, obs)
    logits, value = model.predict(params, s)
    root = mctx.RootFnOutput(prior_logits=logits, value=from_head(value), embedding=s)

    def recurrent_fn(params, key, action, s):
        del key  # the learned model is deterministic
        nxt, reward = model.dynamics(params, s, action)
        logits, value = model.predict(params, nxt)
        out = mctx.RecurrentFnOutput(
            reward=from_head(reward),
            discount=jnp.full_like(reward, gamma),
            prior_logits=logits,
            value=from_head(value),
        )
        return out, nxt

    return pc.run_search(config, params, key, root, recurrent_fn, explore)


# ---- targets and loss -----------------------------------------------------------------


class Targets(struct.PyTreeNode):
    """Unroll targets and masks (float32; ``k = 0..K`` unless noted).

    Attributes:
      value, value_mask: ``[K + 1, B]`` value targets (real units) and where they count.
      reward, reward_mask: ``[K, B]`` targets of the rewards predicted at ``k = 1..K``.
      policy: ``[K + 1, B, A]`` search policies; ``policy_mask [K + 1, B]``.
    """

    value: jax.Array
    value_mask: jax.Array
    reward: jax.Array
    reward_mask: jax.Array
    policy: jax.Array
    policy_mask: jax.Array


def episode_masks(
    terminated: jax.Array, truncated: jax.Array, unroll: int
) -> tuple[jax.Array, jax.Array]:
    """``(live, absorbed)`` ``[K + 1, B]`` of ``terminated, truncated [L, B]``: state ``k``
    of the run is still in the first step's episode, or past an episode end that was a
    termination (an absorbing state)."""
    done = jnp.logical_or(terminated, truncated).astype(jnp.float32)[:unroll]
    term = terminated.astype(jnp.float32)[:unroll]
    zero = jnp.zeros_like(done[:1])
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(zero), 1.0 - done]), axis=0)  # [K+1]
    absorbed = jnp.cumsum(jnp.concatenate([zero, alive[:-1] * term]), axis=0)
    return alive, absorbed


def n_step_windows(
    reward: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
    unroll: int,
    td_steps: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``n_step_return`` of the window ``[k, k + n)`` for every ``k = 0..K``:
    ``(ret, discount, index)`` ``[K + 1, B]``, ``index`` the run step whose ``next_obs``
    bootstraps (``k + last``)."""
    chex.assert_axis_dimension(reward, 0, unroll + td_steps)
    idx = jnp.arange(unroll + 1)[:, None] + jnp.arange(td_steps)[None]  # [K+1, n]
    window = jax.vmap(n_step_return, in_axes=(0, 0, 0, None))
    ret, discount, last = window(reward[idx], terminated[idx], truncated[idx], gamma)
    return ret, discount, last + jnp.arange(unroll + 1)[:, None]


def make_targets(
    batch: Transition,
    boot_value: jax.Array,
    ret: jax.Array,
    discount: jax.Array,
    unroll: int,
) -> Targets:
    """The unroll's targets from a run ``batch`` (leaves ``[K + n, B, ...]``) and the
    windows' ``ret, discount`` and bootstrap values ``boot_value`` (``[K + 1, B]``)."""
    live, absorbed = episode_masks(batch.terminated, batch.truncated, unroll)
    value = live * (ret + discount * boot_value)
    reward = live[:-1] * batch.reward[:unroll].astype(jnp.float32)
    searched = batch.extras["searched"][: unroll + 1]
    return Targets(
        value=value,
        value_mask=live + absorbed,
        reward=reward,
        reward_mask=live[:-1] + absorbed[:-1],
        policy=batch.extras["search_policy"][: unroll + 1],
        policy_mask=live * searched,
    )


def unroll_model(
    model: Model, params: Any, obs: jax.Array, actions: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """From ``s_0 = h(obs [B, obs])`` through ``actions [K, B]``: ``(logits [K+1, B, A],
    values [K+1, B], rewards [K, B])`` (heads' units). Steps ``k >= 1`` carry ``1 / K``
    of their gradient, and the hidden state half of its gradient at each dynamics step."""
    unroll = actions.shape[0]
    s = model.represent(params, obs)
    logits0, value0 = model.predict(params, s)

    def step(s, action):
        nxt, reward = model.dynamics(params, s, action)
        logits, value = model.predict(params, nxt)
        out = jax.tree.map(lambda x: scale_gradient(x, 1.0 / unroll), (logits, value, reward))
        return scale_gradient(nxt, 0.5), out

    _, (logits, values, rewards) = jax.lax.scan(step, s, actions)
    logits = jnp.concatenate([logits0[None], logits])
    values = jnp.concatenate([value0[None], values])
    return logits, values, rewards


def unrolled_loss(
    logits: jax.Array,
    values: jax.Array,
    rewards: jax.Array,
    targets: Targets,
    value_coef: jax.Array | float,
    reward_coef: jax.Array | float,
    to_head: Callable = lambda x: x,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``sum_k`` of the masked value, reward and policy losses, averaged over the batch
    (a masked entry counts as zero). Heads are compared with ``to_head`` of the targets."""
    chex.assert_equal_shape([values, targets.value, targets.value_mask])
    chex.assert_equal_shape([rewards, targets.reward, targets.reward_mask])
    chex.assert_equal_shape([logits, targets.policy])
    batch = values.shape[1]
    value_sq = targets.value_mask * (values - to_head(targets.value)) ** 2
    reward_sq = targets.reward_mask * (rewards - to_head(targets.reward)) ** 2
    ce = -jnp.sum(targets.policy * jax.nn.log_softmax(logits), -1)
    policy = targets.policy_mask * ce
    value_loss = jnp.sum(value_sq) / batch
    reward_loss = jnp.sum(reward_sq) / batch
    policy_loss = jnp.sum(policy) / batch
    loss = value_coef * value_loss + reward_coef * reward_loss + policy_loss
    metrics = {"value_loss": value_loss, "reward_loss": reward_loss, "policy_loss": policy_loss}
    return loss, metrics


def muzero_loss(
    config: Config,
    model: Model,
    params: Any,
    batch: Transition,
    gamma: jax.Array | float,
    value_coef: jax.Array | float,
    reward_coef: jax.Array | float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """MuZero's loss on a run ``batch`` (leaves ``[K + n, B, ...]``)."""
    unroll = config.unroll_steps
    to_head, from_head = transforms(config.value_transform)
    ret, discount, index = n_step_windows(
        batch.reward, batch.terminated, batch.truncated, gamma, unroll, config.td_steps
    )
    boot_obs = jnp.take_along_axis(batch.next_obs, index[..., None], axis=0)  # [K+1, B, obs]
    flat = boot_obs.reshape(-1, boot_obs.shape[-1])
    boot_value = from_head(model.predict(params, model.represent(params, flat))[1])
    boot_value = jax.lax.stop_gradient(boot_value.reshape(index.shape))
    targets = make_targets(batch, boot_value, ret, discount, unroll)
    logits, values, rewards = unroll_model(model, params, batch.obs[0], batch.action[:unroll])
    loss, metrics = unrolled_loss(
        logits, values, rewards, targets, value_coef, reward_coef, to_head
    )
    return loss, {**metrics, "value_target": jnp.mean(targets.value)}


# ---- the agent ------------------------------------------------------------------------


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """MuZero's (init, act, update); ``act`` reads observations only."""
    num_actions = env.action_spec.num_actions
    net = MuZeroNet(num_actions, tuple(config.hidden), config.embed_size)
    model = net_model(net)
    tx = adam(hparams.lr)

    def init(key: jax.Array) -> pc.PlanState:
        obs = jnp.zeros((1, *env.observation_spec.shape))
        params = net.init(key, obs, jnp.zeros((1,), jnp.int32))
        return pc.PlanState(params, tx.init(params), jnp.zeros((), jnp.int32))

    def act(state, obs, key, explore=True, *, env_state=None, carry=None):
        del env_state, carry  # plans in the learned model only
        return plan(config, model, state.params, key, obs, hparams.gamma, explore)

    def update(state: pc.PlanState, batch: Transition, key: jax.Array):
        chex.assert_rank(batch.obs, 3)  # [K + n, B, obs]
        chex.assert_axis_dimension(batch.obs, 0, config.unroll_steps + config.td_steps)

        def loss_fn(params):
            return muzero_loss(
                config,
                model,
                params,
                batch,
                hparams.gamma,
                hparams.value_coef,
                hparams.reward_coef,
            )

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return pc.apply_grads(state, tx, grads), {**metrics, "loss": loss}

    return Agent(init, act, update)


def data(config: Config, env: Env) -> loops.Replay:
    """Replay of runs of ``unroll_steps + td_steps`` steps with the search statistics."""
    return pc.data(config, env, sequence_len=config.unroll_steps + config.td_steps)


def check(config: Config, env: Env) -> None:
    pc.check(config, env)
    if config.value_transform not in TRANSFORMS:
        raise ValueError(
            f"value_transform must be one of {TRANSFORMS}, got {config.value_transform!r}"
        )
    runs = (config.unroll_steps + config.td_steps) * config.num_envs
    if config.buffer_size < runs:
        raise ValueError(
            f"buffer_size={config.buffer_size} must hold (unroll_steps + td_steps) * "
            f"num_envs = {runs} transitions"
        )


SPEC = AlgoSpec(
    name="muzero",
    summary="MuZero: mctx search (Gumbel or PUCT) in a learned model, K-step unrolled losses",
    config=Config,
    hparams=HParams,
    make_agent=make_agent,
    data=data,
    action_kinds=("discrete",),
    default_env="assist/build-3x3",
    positive=(*pc.POSITIVE, "unroll_steps", "td_steps", "embed_size"),
    check=check,
)
