"""Pieces the off-policy actor-critic family shares (SAC, TD3, DSAC-T, DrM, MENTOR):
the replay ``Config`` and data declaration, typed states, twin critics, the critic,
stochastic-actor and temperature steps, and Box action scaling."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl import loops
from jaxrl.core import adam
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.nets.mlp import tanh_gaussian
from jaxrl.transforms.dormant import dormant_ratio


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings every actor-critic algorithm here has (shapes, control flow)."""

    total_steps: int = 20_000
    num_envs: int = 1
    batch_size: int = 256
    buffer_size: int = 1_000_000
    warmup_steps: int = 1_000
    utd_ratio: float = 1.0  # gradient updates per env step
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    critic_layer_norm: bool = False
    num_evals: int = 20
    num_eval_envs: int = 8
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length
    log_dormant: bool = False  # add the actor's tau-dormant ratio (DrM) to the metrics

    @property
    def updates_per_iter(self) -> int:
        return max(1, round(self.utd_ratio * self.num_envs))


class ActorCritic(struct.PyTreeNode):
    """The state every actor-critic agent here has (subclasses add their own parts).

    Attributes:
      actor_params: the policy's parameters.
      critic_params: twin critics stacked on a leading ``[2]`` axis (``twin``).
      target_critic_params: Polyak-averaged copy of ``critic_params``.
      actor_opt, critic_opt: optimiser states.
      step: int32, updates done.
    """

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    actor_opt: Any
    critic_opt: Any
    step: jax.Array


class SoftActorCritic(ActorCritic):
    """``ActorCritic`` with a learned entropy temperature ``exp(log_alpha)`` (SAC family)."""

    log_alpha: jax.Array
    alpha_opt: Any


def initial_parts(
    actor_params: Any,
    critic_params: Any,
    actor_tx: optax.GradientTransformation,
    critic_tx: optax.GradientTransformation,
) -> dict[str, Any]:
    """The ``ActorCritic`` fields of a new state: fresh optimisers, target critics equal
    to the critics, step 0."""
    return {
        "actor_params": actor_params,
        "critic_params": critic_params,
        "target_critic_params": critic_params,
        "actor_opt": actor_tx.init(actor_params),
        "critic_opt": critic_tx.init(critic_params),
        "step": jnp.zeros((), jnp.int32),
    }


def initial_soft_parts(
    actor_params: Any,
    critic_params: Any,
    txs: tuple[optax.GradientTransformation, ...],
    init_alpha: jax.Array,
) -> dict[str, Any]:
    """The ``SoftActorCritic`` fields of a new state; ``txs``: the actor's, critics' and
    temperature's optimisers; ``log_alpha = log(init_alpha)``."""
    actor_tx, critic_tx, alpha_tx = txs
    log_alpha = jnp.log(init_alpha).astype(jnp.float32)
    parts = initial_parts(actor_params, critic_params, actor_tx, critic_tx)
    return {**parts, "log_alpha": log_alpha, "alpha_opt": alpha_tx.init(log_alpha)}


def soft_txs(hparams: Any) -> tuple[optax.GradientTransformation, ...]:
    """Adam for the actor, the critics and the temperature, at their hparams' rates."""
    return adam(hparams.actor_lr), adam(hparams.critic_lr), adam(hparams.alpha_lr)


def init_soft(
    key: jax.Array,
    actor: nn.Module,
    critic: Twin,
    txs: tuple[optax.GradientTransformation, ...],
    shapes: tuple[tuple[int, ...], int],
    init_alpha: jax.Array,
) -> dict[str, Any]:
    """``initial_soft_parts`` of freshly initialised networks (``shapes``: the obs shape and
    the action size): the actor from ``key``'s first split, the twin critics from its second."""
    obs_shape, act_dim = shapes
    actor_key, critic_key = jax.random.split(key)
    obs = jnp.zeros((1, *obs_shape), jnp.float32)
    actor_params = actor.init(actor_key, obs)
    critic_params = critic.init(critic_key, obs, jnp.zeros((1, act_dim), jnp.float32))
    return initial_soft_parts(actor_params, critic_params, txs, init_alpha)


class Twin(NamedTuple):
    """Two independent copies of a critic module, parameters stacked on a leading ``[2]``.

    ``init(key, obs, action) -> params``; ``apply(params, obs [N, o], action [N, a]) ->
    q [2, N]`` (or a tuple of ``[2, N]`` for a module with several outputs).
    """

    init: Callable[[jax.Array, jax.Array, jax.Array], Any]
    apply: Callable[[Any, jax.Array, jax.Array], Any]


def twin(critic: nn.Module) -> Twin:
    """The twin critics of ``critic`` (a ``(obs, action) -> q`` module)."""

    def init(key: jax.Array, obs: jax.Array, action: jax.Array) -> Any:
        return jax.vmap(critic.init, in_axes=(0, None, None))(jax.random.split(key, 2), obs, action)

    return Twin(init, jax.vmap(critic.apply, in_axes=(0, None, None)))


def critic_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q: jax.Array,
    next_log_prob: jax.Array,
    alpha: jax.Array,
    gamma: jax.Array,
) -> jax.Array:
    """Soft Bellman target ``r + gamma (1 - term) (min_i Q_i' - alpha log pi')``.

    Shapes: ``next_q [2, N]``, the rest ``[N]``; returns ``[N]``.
    """
    soft_v = jnp.min(next_q, axis=0) - alpha * next_log_prob
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * soft_v


def temperature_loss(
    log_alpha: jax.Array, log_prob: jax.Array, target_entropy: jax.Array
) -> jax.Array:
    """``J(alpha) = E[-alpha (log pi(a|s) + H_target)]``, differentiated w.r.t. ``log_alpha``."""
    return -jnp.mean(jnp.exp(log_alpha) * jax.lax.stop_gradient(log_prob + target_entropy))


def box_action_scale(env: Env, algo: str = "sac") -> tuple[int, np.ndarray, np.ndarray]:
    """``(act_dim, center, half)``: env action = ``center + half * a`` for ``a`` in [-1, 1].

    Raises:
      ValueError: for a discrete or unbounded action spec.
    """
    spec = env.action_spec
    if spec.discrete:
        raise ValueError(
            f"{algo} needs a continuous (Box) action spec; use ppo for discrete actions"
        )
    low = np.broadcast_to(np.asarray(spec.low, np.float32), spec.shape)
    high = np.broadcast_to(np.asarray(spec.high, np.float32), spec.shape)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{algo} needs a bounded action spec (finite low and high)")
    return spec.shape[0], (high + low) / 2, (high - low) / 2


ActorApply = Callable[[Any, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]


def critic_step(
    critic_apply: Any,
    critic_tx: optax.GradientTransformation,
    state: Any,
    obs: jax.Array,
    action: jax.Array,
    target: jax.Array,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One optimiser step on the twin critics' squared error to ``target [N]``.

    ``state`` has ``critic_params`` and ``critic_opt``; ``critic_apply(params, obs [N, o],
    action [N, a]) -> q [2, N]``. Returns ``(critic_params, critic_opt, loss, mean q)``;
    the loss sums the two critics' mean squared errors.
    """

    def critic_loss(p):
        q = critic_apply(p, obs, action)
        return jnp.mean(jnp.sum(jnp.square(q - target[None]), axis=0)), jnp.mean(q)

    params = state.critic_params
    (loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(params)
    updates, opt = critic_tx.update(grads, state.critic_opt)
    return optax.apply_updates(params, updates), opt, loss, q_mean


def actor_step(
    apply_actor: ActorApply,
    tx: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
    obs: jax.Array,
    eps: jax.Array,
    q_fn: Callable[[jax.Array], jax.Array],
    alpha: jax.Array,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One Adam step on ``E[alpha log pi(a|s) - Q(s, a)] + aux``, ``a = tanh(mean + std eps)``.

    ``apply_actor(params, obs [N, ...]) -> (mean, std [N, act], aux_loss [])`` (aux is 0
    for a plain actor, a MoE's load/entropy loss for MENTOR); ``q_fn(a [N, act]) -> [N]``.
    Returns ``(params, opt_state, loss, log_prob [N])``.
    """

    def loss_fn(p):
        mean, std, aux = apply_actor(p, obs)
        a, log_prob = tanh_gaussian(mean, std, eps)
        return jnp.mean(alpha * log_prob - q_fn(a)) + aux, log_prob

    (loss, log_prob), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss, log_prob


def temperature_step(
    tx: optax.GradientTransformation,
    log_alpha: jax.Array,
    opt_state: Any,
    log_prob: jax.Array,
    target_entropy: jax.Array,
) -> tuple[jax.Array, Any, jax.Array]:
    """One Adam step on ``temperature_loss``; returns ``(log_alpha, opt_state, loss)``."""
    loss, grad = jax.value_and_grad(temperature_loss)(log_alpha, log_prob, target_entropy)
    update, opt_state = tx.update(grad, opt_state)
    return optax.apply_updates(log_alpha, update), opt_state, loss


def soft_policy_step(
    apply_actor: ActorApply,
    txs: tuple[optax.GradientTransformation, optax.GradientTransformation],
    state: SoftActorCritic,
    obs: jax.Array,
    eps: jax.Array,
    q_fn: Callable[[jax.Array], jax.Array],
    target_entropy: jax.Array,
) -> tuple[dict[str, Any], dict[str, jax.Array]]:
    """SAC's policy improvement: ``actor_step`` then ``temperature_step`` on its log-probs.

    ``txs``: the actor's and the temperature's optimisers. Returns ``(parts, metrics)``:
    the state's new ``actor_params, actor_opt, log_alpha, alpha_opt`` and ``actor_loss,
    alpha_loss, entropy``.
    """
    actor_tx, alpha_tx = txs
    alpha = jnp.exp(state.log_alpha)
    actor_params, actor_opt, a_loss, log_prob = actor_step(
        apply_actor, actor_tx, state.actor_params, state.actor_opt, obs, eps, q_fn, alpha
    )
    log_alpha, alpha_opt, t_loss = temperature_step(
        alpha_tx, state.log_alpha, state.alpha_opt, log_prob, target_entropy
    )
    parts = {
        "actor_params": actor_params,
        "actor_opt": actor_opt,
        "log_alpha": log_alpha,
        "alpha_opt": alpha_opt,
    }
    return parts, {"actor_loss": a_loss, "alpha_loss": t_loss, "entropy": -jnp.mean(log_prob)}


def dormant_metrics(module: nn.Module, params: Any, obs: jax.Array, prefix: str) -> dict:
    """``{prefix: overall tau-dormant ratio, prefix/layer: per-layer ratio}`` (DrM, tau 0.025)."""
    overall, layers = dormant_ratio(module, params, obs)
    return {prefix: overall, **{f"{prefix}/{k}": v for k, v in layers.items()}}


#: Replay settings every actor-critic ``Config`` has; they must be positive.
POSITIVE = loops.REPLAY_POSITIVE


def data(config: Config, env: Env) -> loops.Replay:
    """Uniform replay; ``utd_ratio`` gradient updates per env step."""
    return loops.Replay.from_config(config)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    loops.check_warmup(config)
    if config.utd_ratio <= 0:
        raise ValueError(f"utd_ratio must be positive, got {config.utd_ratio}")
    box_action_scale(env)


#: ``spec(name, summary, Config, HParams, make_agent, presets=..., positive=...)``: an
#: actor-critic ``AlgoSpec`` (replay data, continuous actions, pendulum by default).
spec = functools.partial(
    AlgoSpec, data=data, action_kinds=("continuous",), default_env="pendulum", check=check
)
