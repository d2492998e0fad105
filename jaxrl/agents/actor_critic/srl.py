"""SRL: Sequence Reinforcement Learning (Patel & Siegelmann, ICLR 2025, arXiv 2410.08979,
"Overcoming Slow Decision Frequencies in Continuous Control: Model-Based Sequence
Reinforcement Learning for Model-Free Control").

From one observation the actor emits a sequence of primitive actions; the env is then
stepped open loop. A primitive-step critic (SAC's twin critics, soft targets, learned
temperature) and a dynamics model are trained on real single-step transitions. The
actor learns through *temporal recall*: from a replayed state ``s`` the model predicts
the intermediate states ``s_hat_j`` the sequence passes through, and the critic scores
each action there, ``Q(s_hat_j, a_j)``. Acting needs no model.

Details chosen here (the paper and PAPERS.md leave them open or they had to fit a CPU):

- Actor: an MLP encodes ``s`` into the initial state of a GRU cell (the paper's choice)
  that runs autonomously (its input is the same encoding each step); each GRU output
  gives a tanh-Gaussian ``(mean, std)`` for one action. The GRU unrolls to any length,
  so one actor serves every decision interval: ``act`` returns ``act_len`` actions
  (``info["action_sequence"]``) and an evaluation at interval ``k <= act_len`` plays the
  first ``k`` (the paper's "sequences of arbitrary length").
- Training interaction: open loop, a decision every ``seq_len`` env steps
  (``with_action_sequences``), as SRL-J acts in the paper; ``train_interval`` sets
  another interval (1 = closed loop).
- Actor loss: ``mean_j mean_N [alpha log pi(a_j) - min_i Q_i(s_hat_j, a_j)]`` over the
  ``seq_len`` actions, one entropy term per action, ``s_hat_0 = s``,
  ``s_hat_{j+1} = f(s_hat_j, a_j)``. The predicted states are held fixed
  (``stop_gradient``): each action's learning signal is the critic at its own
  (recalled) state, which already values what follows it.
- Model: the library's Gaussian MLP dynamics (``jaxrl.models.Ensemble``) with one member
  and 2 x 64 SiLU layers, trained by one Adam step on its NLL per update on the same
  replay batch as the critics; its mean next state is the recall.
- Temperature: one target entropy ``-act_dim`` per primitive action, fitted to the mean
  log-probability over the sequence.
- ``planner``: the online-planning baseline (CEM over action sequences with the same
  learned model and critic), an evaluation-time policy over a trained SRL state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.actor_critic import common as ac
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import FINITE, POSITIVE, RATE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.models.dynamics import DynamicsModel, Ensemble
from jaxrl.nets import MLP, QNetwork
from jaxrl.nets.init import orthogonal
from jaxrl.nets.mlp import tanh_gaussian
from jaxrl.transforms import fas
from jaxrl.transforms.action_sequences import SEQUENCE_KEY, with_action_sequences

#: Pendulum: 2 x 64 layers; the sequence actor and the recall make an update several
#: times costlier than SAC's at 2 x 128 on a CPU.
PRESETS: dict[str, dict[str, Any]] = {"pendulum": {"hidden": (64, 64)}}


@dataclasses.dataclass(frozen=True)
class SequenceConfig(ac.Config):
    """The SAC family's settings plus the sequence and model settings.

    Attributes:
      seq_len: J, the actions per decision the actor is trained on (temporal recall).
      act_len: actions ``act`` returns (>= ``seq_len``; the GRU unrolls further).
      train_interval: env steps between decisions while training (0: ``seq_len``).
      gru_size: the GRU's state size.
      model_hidden: the dynamics model's hidden layers.
    """

    seq_len: int = 4
    act_len: int = 16
    train_interval: int = 0
    gru_size: int = 64
    model_hidden: tuple[int, ...] = (64, 64)

    @property
    def interval(self) -> int:
        return self.train_interval or self.seq_len


@dataclasses.dataclass(frozen=True)
class Config(fas.Config, SequenceConfig):
    """SRL's settings: ``SequenceConfig``'s, then the Frequency-Averaged Score's
    evaluation hook's (``jaxrl.transforms.fas.Config``; ``SPEC.eval_hooks``)."""


@struct.dataclass
class HParams:
    """Numeric hyperparameters (SAC's, plus the model's learning rate)."""

    actor_lr: float = hparam(3e-4, POSITIVE)
    critic_lr: float = hparam(3e-4, POSITIVE)
    alpha_lr: float = hparam(3e-4, POSITIVE)
    model_lr: float = hparam(1e-3, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    tau: float = hparam(0.005, RATE)
    init_alpha: float = hparam(1.0, POSITIVE)
    target_entropy_scale: float = hparam(1.0, FINITE)


class SRLState(ac.SoftActorCritic):
    """SAC's state plus the dynamics model and its optimiser state."""

    model: DynamicsModel
    model_opt: Any


class SequenceActor(nn.Module):
    """``obs [N, o] -> (mean, std)``, each ``[N, length, act]``: an MLP encoding sets a
    GRU's initial state; the GRU runs ``length`` steps on the encoding; a dense head per
    step gives a tanh-Gaussian's pre-tanh mean and std (SAC's log-std squashing)."""

    action_dim: int
    hidden: tuple[int, ...]
    gru_size: int
    act: str = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs: jax.Array, length: int) -> tuple[jax.Array, jax.Array]:
        x = MLP(self.hidden, self.act)(obs)
        h = jnp.tanh(nn.Dense(self.gru_size)(x))
        # jaxrl's Gram-Schmidt orthogonal init: flax's default (a QR) can hang vmapped on XLA:CPU.
        cell = nn.GRUCell(features=self.gru_size, recurrent_kernel_init=orthogonal())
        head = nn.Dense(2 * self.action_dim)
        outs = []
        for _ in range(length):  # length <= act_len (16): unrolled, one set of weights
            h, y = cell(h, x)
            outs.append(head(y))
        out = jnp.stack(outs, axis=1)
        mean, log_std = out[..., : self.action_dim], jnp.tanh(out[..., self.action_dim :])
        span = 0.5 * (self.log_std_max - self.log_std_min)
        return mean, jnp.exp(self.log_std_min + span * (log_std + 1))


def temporal_recall(
    step: Callable[[jax.Array, jax.Array], jax.Array],
    q_fn: Callable[[jax.Array, jax.Array], jax.Array],
    obs: jax.Array,
    actions: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The critic's score of each action of a sequence at its recalled state.

    ``step(s [N, o], a [N, act]) -> s' [N, o]`` (the model); ``q_fn(s, a) -> [N]``;
    ``obs [N, o]``, ``actions [N, J, act]``. ``s_hat_0 = obs``, ``s_hat_{j+1} =
    stop_gradient(step(s_hat_j, a_j))``. Returns ``(q [N, J], states [N, J, o])``.
    """
    chex.assert_rank(actions, 3)
    states, s = [], obs
    for j in range(actions.shape[1]):
        states.append(s)
        s = jax.lax.stop_gradient(step(s, actions[:, j]))
    states = jnp.stack(states, axis=1)
    q = jnp.stack([q_fn(states[:, j], actions[:, j]) for j in range(actions.shape[1])], 1)
    return q, states


def make_model(config: Config, env: Env) -> Ensemble:
    obs_dim = env.observation_spec.shape[0]
    return Ensemble(obs_dim, env.action_spec.shape[0], 1, 1, config.model_hidden)


def model_mean_step(ensemble: Ensemble, model: DynamicsModel) -> Callable:
    """``(s [N, o], a [N, act]) -> (s' [N, o], r [N])``: the model's mean prediction."""

    def step(s, a):
        mean, _ = ensemble.predict(model, s, a)
        return s + mean[0, :, :-1], mean[0, :, -1]

    return step


def make_sequence_agent(config: Config, env: Env, hparams: HParams) -> Agent:
    """SRL's feed-forward (init, act, update); ``act`` returns the whole sequence."""
    act_dim, center, half = ac.box_action_scale(env, "srl")
    obs_shape = env.observation_spec.shape
    if len(obs_shape) != 1:
        raise ValueError(f"srl needs flat observations, got shape {obs_shape}")
    actor = SequenceActor(act_dim, config.hidden, config.gru_size, config.activation)
    critic = ac.twin(QNetwork(config.hidden, config.activation, config.critic_layer_norm))
    ensemble = make_model(config, env)
    txs = ac.soft_txs(hparams)
    actor_tx, critic_tx, alpha_tx = txs
    model_tx = adam(hparams.model_lr)
    target_entropy = -hparams.target_entropy_scale * act_dim
    J = config.seq_len

    def init(key: jax.Array) -> SRLState:
        actor_key, critic_key, model_key = jax.random.split(key, 3)
        obs = jnp.zeros((1, *obs_shape), jnp.float32)
        actor_params = actor.init(actor_key, obs, 1)
        critic_params = critic.init(critic_key, obs, jnp.zeros((1, act_dim), jnp.float32))
        parts = ac.initial_soft_parts(actor_params, critic_params, txs, hparams.init_alpha)
        in_dim = obs_shape[0] + act_dim
        model = ensemble.init(model_key, jnp.zeros(in_dim), jnp.ones(in_dim))
        trainable = (model.params, model.max_logvar, model.min_logvar)
        return SRLState(**parts, model=model, model_opt=model_tx.init(trainable))

    def act(state: SRLState, obs: jax.Array, key: jax.Array, explore=True, **_):
        mean, std = actor.apply(state.actor_params, obs, config.act_len)
        if explore:
            a = tanh_gaussian(mean, std, jax.random.normal(key, mean.shape))[0]
        else:
            a = jnp.tanh(mean)
        seq = center + half * a
        return seq[:, 0], {SEQUENCE_KEY: seq}

    def model_step(state: SRLState, batch: Transition, action: jax.Array):
        target = jnp.concatenate([batch.next_obs - batch.obs, batch.reward[:, None]], -1)
        trainable = (state.model.params, state.model.max_logvar, state.model.min_logvar)

        def loss_fn(tr):
            m = state.model.replace(params=tr[0], max_logvar=tr[1], min_logvar=tr[2])
            return ensemble.loss(m, batch.obs[None], action[None], target[None])

        (loss, nll), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt = model_tx.update(grads, state.model_opt)
        tr = optax.apply_updates(trainable, updates)
        model = state.model.replace(params=tr[0], max_logvar=tr[1], min_logvar=tr[2])
        mean, _ = ensemble.predict(state.model, batch.obs, action)
        mse = jnp.mean(jnp.square(mean[0, :, :-1] - target[:, :-1]))
        return model, opt, {"model_nll": nll[0], "model_mse": mse}

    def update(state: SRLState, batch: Transition, key: jax.Array):
        """``batch`` leaves are flat ``[N, ...]`` primitive transitions from replay."""
        chex.assert_rank(batch.reward, 1)
        n = batch.reward.shape[0]
        next_key, actor_key = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha)
        action = (batch.action - center) / half

        # Critic: SAC's soft target on the real single-step transition.
        mean, std = actor.apply(state.actor_params, batch.next_obs, 1)
        next_eps = jax.random.normal(next_key, mean.shape)
        next_action, next_log_prob = tanh_gaussian(mean[:, 0], std[:, 0], next_eps[:, 0])
        next_q = critic.apply(state.target_critic_params, batch.next_obs, next_action)
        target = ac.critic_target(
            batch.reward, batch.terminated, next_q, next_log_prob, alpha, hparams.gamma
        )
        critic_params, critic_opt, c_loss, q_mean = ac.critic_step(
            critic.apply, critic_tx, state, batch.obs, action, jax.lax.stop_gradient(target)
        )
        model, model_opt, model_metrics = model_step(state, batch, action)

        # Actor: temporal recall through the (updated) model, scored by the critics.
        recall = model_mean_step(ensemble, model)
        eps = jax.random.normal(actor_key, (n, J, act_dim))

        def q_fn(s, a):
            return jnp.min(critic.apply(critic_params, s, a), axis=0)

        def actor_loss(p):
            mean, std = actor.apply(p, batch.obs, J)
            a, log_prob = tanh_gaussian(mean, std, eps)  # [N, J, act], [N, J]
            q, _ = temporal_recall(lambda s, u: recall(s, u)[0], q_fn, batch.obs, a)
            return jnp.mean(alpha * log_prob - q), (log_prob, q)

        (a_loss, (log_prob, q_seq)), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            state.actor_params
        )
        updates, actor_opt = actor_tx.update(grads, state.actor_opt)
        actor_params = optax.apply_updates(state.actor_params, updates)
        log_alpha, alpha_opt, t_loss = ac.temperature_step(
            alpha_tx, state.log_alpha, state.alpha_opt, log_prob, target_entropy
        )
        new_state = state.replace(
            actor_params=actor_params,
            actor_opt=actor_opt,
            critic_params=critic_params,
            critic_opt=critic_opt,
            target_critic_params=optax.incremental_update(
                critic_params, state.target_critic_params, hparams.tau
            ),
            log_alpha=log_alpha,
            alpha_opt=alpha_opt,
            model=model,
            model_opt=model_opt,
            step=state.step + 1,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "alpha_loss": t_loss,
            "alpha": alpha,
            "q_mean": q_mean,
            "entropy": -jnp.mean(log_prob),
            "recall_q_last": jnp.mean(q_seq[:, -1]),
            **model_metrics,
        }
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """SRL acting every ``config.interval`` env steps (open-loop sequences)."""
    agent = make_sequence_agent(config, env, hparams)
    if config.interval == 1:
        return agent
    return with_action_sequences(agent, config.interval, env.action_spec)


def planner(
    config: Config,
    env: Env,
    hparams: HParams,
    *,
    horizon: int,
    population: int = 64,
    elites: int = 8,
    iterations: int = 3,
) -> Agent:
    """Online planning with SRL's learned model (the paper's planning comparison).

    An evaluation-time policy over a trained ``SRLState``: CEM over ``horizon``-step action
    sequences scored by the model's mean rewards plus the discounted critic value of the
    last predicted state, ``sum_j gamma^j r_hat_j + gamma^H min_i Q_i(s_hat_H, pi(s_hat_H))``;
    the first iteration's population includes the actor's own sequence. ``act`` returns
    the best mean sequence under ``info["action_sequence"]``, so an evaluation at decision
    interval ``k <= horizon`` plays its first ``k`` actions.

    Raises:
      ValueError: for settings that are not positive or ``elites > population``.
    """
    for name, v in (("horizon", horizon), ("population", population), ("iterations", iterations)):
        if v < 1:
            raise ValueError(f"planner: {name} must be positive, got {v}")
    if not 1 <= elites <= population:
        raise ValueError(f"planner: elites must be in [1, population={population}], got {elites}")
    act_dim, center, half = ac.box_action_scale(env, "srl")
    actor = SequenceActor(act_dim, config.hidden, config.gru_size, config.activation)
    critic = ac.twin(QNetwork(config.hidden, config.activation, config.critic_layer_norm))
    ensemble = make_model(config, env)
    base = make_sequence_agent(config, env, hparams)
    discounts = hparams.gamma ** jnp.arange(horizon, dtype=jnp.float32)

    def plan_one(state: SRLState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """``obs [o] -> [horizon, act]`` in the actor's [-1, 1] units."""
        step = model_mean_step(ensemble, state.model)
        prior, _ = actor.apply(state.actor_params, obs[None], horizon)
        prior = jnp.tanh(prior[0])

        def score(seqs):  # [P, H, act] -> [P]
            s = jnp.broadcast_to(obs, (seqs.shape[0], obs.shape[0]))
            total = jnp.zeros(seqs.shape[0])
            for j in range(horizon):
                s, r = step(s, seqs[:, j])
                total = total + discounts[j] * r
            mean, _ = actor.apply(state.actor_params, s, 1)
            v = jnp.min(critic.apply(state.critic_params, s, jnp.tanh(mean[:, 0])), axis=0)
            return total + hparams.gamma**horizon * v

        def cem(carry, k):
            mu, sigma, first = carry
            noise = jax.random.normal(k, (population, horizon, act_dim))
            seqs = jnp.clip(mu + sigma * noise, -1.0, 1.0)
            seqs = jnp.where(first, seqs.at[0].set(prior), seqs)
            top = seqs[jnp.argsort(-score(seqs))[:elites]]
            return (top.mean(0), top.std(0) + 1e-3, False), None

        init = (prior, jnp.full((horizon, act_dim), 0.5), True)
        (mu, _, _), _ = jax.lax.scan(cem, init, jax.random.split(key, iterations))
        return mu

    def act(state: SRLState, obs: jax.Array, key: jax.Array, explore=True, **_):
        keys = jax.random.split(key, obs.shape[0])
        seq = center + half * jax.vmap(plan_one, in_axes=(None, 0, 0))(state, obs, keys)
        return seq[:, 0], {SEQUENCE_KEY: seq}

    return Agent(init=base.init, act=act, update=base.update)


def check(config: Config, env: Env) -> None:
    """SAC's checks plus the sequence settings, before any compilation."""
    ac.check(config, env)
    if config.act_len < config.seq_len:
        raise ValueError(f"act_len ({config.act_len}) must be >= seq_len ({config.seq_len})")
    if config.train_interval < 0:
        raise ValueError(f"train_interval must be >= 0, got {config.train_interval}")
    if config.interval > config.act_len:
        raise ValueError(
            f"train_interval ({config.interval}) must be <= act_len ({config.act_len})"
        )
    if len(env.observation_spec.shape) != 1:
        raise ValueError(f"needs flat observations, got shape {env.observation_spec.shape}")


SUMMARY = "SRL: GRU action sequences, temporal recall through a learned model (Patel 2024)"
POSITIVE = (*ac.POSITIVE, "seq_len", "act_len", "gru_size")
SPEC = ac.spec(
    "srl",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    presets=PRESETS,
    positive=POSITIVE,
    check=check,
    eval_hooks=(fas.HOOK,),
)
