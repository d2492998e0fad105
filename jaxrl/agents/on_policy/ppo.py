"""PPO (Schulman et al., 2017) with GAE, for discrete and box action specs.

Clipped surrogate objective, minibatch epochs, optional value clipping,
linear learning-rate annealing and running observation normalisation kept in
the agent state. Truncated episodes bootstrap from ``V(next_obs)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, POSITIVE, POSITIVE_OR_INF, UNIT, hparam
from jaxrl.core.optim import last_grad_norm
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.nets import Categorical, DiagGaussian, NatureCNN, ValueHead
from jaxrl.nets.init import draw_kernels
from jaxrl.nets.mlp import head_specs
from jaxrl.normalize import RunningStats, normalize, update_stats
from jaxrl.returns import gae

#: Config overrides per env name (or family), applied before the user's.
#: ``ale/<game>``: the usual Atari PPO settings (Huang et al. 2022's CleanRL ``ppo_atari``:
#: Nature CNN torso shared by linear heads, 8 envs x 128 steps, 4 minibatches x 4 epochs,
#: clipped value loss, rewards clipped to their sign, 10M steps), with 4 evaluations of 4
#: episodes of up to 27,000 agent steps (108k frames, Machado et al.'s cap); its clip_eps
#: of 0.1 is a hyperparameter: ``--hp clip_eps=0.1``.
#: CartpoleBalance: 64 envs x 32 steps reaches ~990 of 1000 by 750k steps (2 seeds, CPU).
PRESETS: dict[str, dict[str, Any]] = {
    "playground/CartpoleBalance": {
        "total_steps": 1_500_000,
        "num_envs": 64,
        "rollout_len": 32,
        "num_minibatches": 4,
        "num_epochs": 4,
        "num_evals": 10,
        "num_eval_envs": 8,
    },
    "ale": {
        "total_steps": 10_000_000,
        "encoder": "cnn",
        "hidden": (),
        "num_envs": 8,
        "rollout_len": 128,
        "num_minibatches": 4,
        "num_epochs": 4,
        "clip_value": True,
        "clip_rewards": True,
        "num_evals": 4,
        "num_eval_envs": 4,
        "eval_max_steps": 27_000,  # 108k frames at frame skip 4: Atari's usual episode cap
    },
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings: anything that changes shapes or control flow."""

    total_steps: int = 500_000
    num_envs: int = 16
    rollout_len: int = 64
    num_epochs: int = 8
    num_minibatches: int = 8
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    anneal_lr: bool = True
    clip_value: bool = False
    normalize_obs: bool = False
    normalize_advantages: bool = True
    ortho_init: bool = True  # orthogonal weights (CleanRL/PureJaxRL); False: flax's lecun_normal
    encoder: str = "mlp"  # "cnn": a NatureCNN torso shared by actor and critic (images)
    clip_rewards: bool = False  # train on sign(reward) (Atari); returns stay game scores
    num_evals: int = 20
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = hparam(2.5e-4, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    gae_lambda: float = hparam(0.95, UNIT)
    clip_eps: float = hparam(0.2, POSITIVE)
    vf_clip_eps: float = hparam(0.2, POSITIVE)
    ent_coef: float = hparam(0.01, NONNEGATIVE)
    vf_coef: float = hparam(0.5, NONNEGATIVE)
    max_grad_norm: float = hparam(0.5, POSITIVE_OR_INF)  # inf: no clipping
    # rewards are multiplied by reward_scale before GAE (Brax's reward_scaling)
    reward_scale: float = hparam(1.0, POSITIVE)
    adam_eps: float = hparam(1e-5, POSITIVE)


#: The per-gradient-step metrics ``update`` reports (means over its steps).
STEP_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "grad_norm")


class PPOState(struct.PyTreeNode):
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any
    obs_stats: RunningStats
    step: jax.Array  # number of gradient steps taken


def clipped_surrogate(ratio: jax.Array, advantages: jax.Array, clip_eps: jax.Array) -> jax.Array:
    """Per sample ``-min(r A, clip(r, 1-eps, 1+eps) A)``: ``[N]`` ratios, advantages -> ``[N]``."""
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return -jnp.minimum(ratio * advantages, clipped * advantages)


def clipped_surrogate_loss(
    ratio: jax.Array, advantages: jax.Array, clip_eps: jax.Array
) -> jax.Array:
    """``-mean(min(r A, clip(r, 1-eps, 1+eps) A))`` over ``[N]`` ratios and advantages."""
    return jnp.mean(clipped_surrogate(ratio, advantages, clip_eps))


def value_error(
    values: jax.Array, old_values: jax.Array, targets: jax.Array, clip_eps: jax.Array | None
) -> jax.Array:
    """Per sample ``0.5 (V - target)^2``; with ``clip_eps`` the pessimistic max with the
    value clipped to ``old_values +- clip_eps`` (PPO2 style). Shapes ``[N]``."""
    loss = jnp.square(values - targets)
    if clip_eps is not None:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        loss = jnp.maximum(loss, jnp.square(clipped - targets))
    return 0.5 * loss


def value_loss_fn(
    values: jax.Array, old_values: jax.Array, targets: jax.Array, clip_eps: jax.Array | None
) -> jax.Array:
    """``mean(value_error(...))``: the value loss over ``[N]`` samples."""
    return jnp.mean(value_error(values, old_values, targets, clip_eps))


def policy_entropy(dist: Any) -> jax.Array:
    """``dist.entropy()``; a ``distrax.Categorical``'s from its logits, which distrax has
    already normalised (its own ``entropy`` normalises them a second time)."""
    if isinstance(dist, distrax.Categorical):
        log_probs = dist.logits
        return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
    return dist.entropy()


def ppo_objective(
    log_prob: jax.Array,
    old_log_prob: jax.Array,
    entropy: jax.Array,
    values: jax.Array,
    old_values: jax.Array,
    advantages: jax.Array,
    targets: jax.Array,
    hparams: HParams,
    *,
    normalize_advantages: bool,
    clip_value: bool,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's loss ``policy + vf_coef value - ent_coef entropy`` and its diagnostics.

    Every array has the same shape (``[N]``, or ``[T, B]`` for sequences): the new and
    the behaviour log-probs of the actions taken, the policy's entropy, the new and the
    old values, the advantages (normalised over the whole array if asked) and the value
    targets. Returns ``(total, {policy_loss, value_loss, entropy, approx_kl, clip_frac})``.
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    vf_clip = hparams.vf_clip_eps if clip_value else None
    per_sample = jnp.stack(
        [
            clipped_surrogate(ratio, advantages, hparams.clip_eps),
            value_error(values, old_values, targets, vf_clip),
            entropy,
            (ratio - 1) - log_ratio,  # approx_kl's estimator (Schulman's k3)
            (jnp.abs(ratio - 1) > hparams.clip_eps).astype(jnp.float32),
        ],
        axis=-1,
    )
    # One reduction over the stacked terms (one kernel instead of five).
    policy_loss, value_loss, entropy, approx_kl, clip_frac = jnp.mean(
        per_sample.reshape(-1, per_sample.shape[-1]), axis=0
    )
    total = policy_loss + hparams.vf_coef * value_loss - hparams.ent_coef * entropy
    return total, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": approx_kl,
        "clip_frac": clip_frac,
    }


def optimizer(config: Any, hparams: HParams, schedule: loops.Schedule) -> Any:
    """PPO's Adam (flat), its rate linearly annealed to zero over every gradient step of
    the run when ``config.anneal_lr``; ``config`` has PPO's optimiser fields."""
    total_grad_steps = schedule.num_iters * config.num_epochs * config.num_minibatches

    def annealed(count: jax.Array) -> jax.Array:
        return hparams.lr * (1.0 - count / total_grad_steps)

    return adam(
        annealed if config.anneal_lr else hparams.lr,
        eps=hparams.adam_eps,
        max_grad_norm=hparams.max_grad_norm,
        flat=True,
    )


def heads(config: Any, env: Env) -> tuple[nn.Module, ValueHead]:
    """``(actor, critic)`` for ``env``'s action spec: a Categorical or DiagGaussian policy
    head and a value head, each an MLP of ``config.hidden``."""
    spec = env.action_spec
    if spec.discrete:
        actor = Categorical(spec.num_actions, config.hidden, config.activation, config.ortho_init)
    else:
        actor = DiagGaussian(spec.shape[0], config.hidden, config.activation, config.ortho_init)
    return actor, ValueHead(config.hidden, config.activation, ortho=config.ortho_init)


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """PPO's (init, act, update) for ``env``'s specs; ``hparams`` may be traced."""
    obs_shape = env.observation_spec.shape
    spec = env.action_spec
    actor, critic = heads(config, env)
    encoder = NatureCNN() if config.encoder == "cnn" else None
    tx = optimizer(config, hparams, schedule)

    def obs_in(state: PPOState, obs: jax.Array) -> jax.Array:
        return normalize(state.obs_stats, obs) if config.normalize_obs else obs

    def features(params: Any, x: jax.Array) -> jax.Array:
        """The heads' input: ``x`` itself, or the shared CNN torso's features."""
        return x if encoder is None else encoder.apply(params["encoder"], x)

    def init(key: jax.Array) -> PPOState:
        """Both networks' kernels from one PRNG call (``draw_kernels``): one threefry site
        in the compiled program instead of a split, two fold-ins and two draws."""
        dummy = jnp.zeros((1, *obs_shape), jnp.float32)
        params = {}
        if encoder is not None:
            key, encoder_key = jax.random.split(key)
            params["encoder"] = encoder.init(encoder_key, dummy)
            dummy = features(params, dummy)
        in_dim = dummy.shape[-1]
        out = spec.num_actions if spec.discrete else spec.shape[0]
        actor_specs = head_specs(in_dim, config.hidden, out, config.ortho_init, 0.01)
        critic_specs = head_specs(in_dim, config.hidden, 1, config.ortho_init, 1.0)
        kernels = draw_kernels(key, actor_specs + critic_specs)
        n = len(actor_specs)
        params.update(
            actor=actor.clone(kernels=tuple(kernels[:n])).init(key, dummy),
            critic=critic.clone(kernels=tuple(kernels[n:])).init(key, dummy),
        )
        return PPOState(
            params=params,
            opt_state=tx.init(params),
            obs_stats=RunningStats.create(obs_shape),
            step=jnp.zeros((), jnp.int32),
        )

    def act(
        state: PPOState, obs: jax.Array, key: jax.Array, explore=True, *, env_state=None, carry=None
    ):
        x = features(state.params, obs_in(state, obs))
        dist = actor.apply(state.params["actor"], x)
        action = dist.sample(seed=key) if explore else dist.mode()
        return action, {"log_prob": dist.log_prob(action)}

    def loss_fn(params, mb, old_values, advantages, targets):
        """The loss and its parts; every per-sample term ``[N]`` is averaged by one
        reduction over a stacked ``[N, 5]`` array (one kernel instead of five)."""
        x = features(params, mb.obs)
        dist = actor.apply(params["actor"], x)
        return ppo_objective(
            dist.log_prob(mb.action),
            mb.extras["log_prob"],
            policy_entropy(dist),
            critic.apply(params["critic"], x),
            old_values,
            advantages,
            targets,
            hparams,
            normalize_advantages=config.normalize_advantages,
            clip_value=config.clip_value,
        )

    def grad_step(state: PPOState, minibatch):
        """One Adam step; its metrics as one ``[len(STEP_METRICS)]`` vector (one stacked
        output per scan instead of one per metric)."""
        mb, old_values, adv, targets = minibatch
        grads, info = jax.grad(loss_fn, has_aux=True)(state.params, mb, old_values, adv, targets)
        updates, opt_state = tx.update(grads, state.opt_state)
        info["grad_norm"] = last_grad_norm(opt_state)
        params = optax.apply_updates(state.params, updates)
        info = jnp.stack([info[name] for name in STEP_METRICS])
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), info

    def update(state: PPOState, batch: Transition, key: jax.Array):
        """``batch`` leaves are ``[T, B, ...]`` with ``extras["log_prob"]`` from ``act``."""
        chex.assert_rank(batch.reward, 2)
        obs = obs_in(state, batch.obs)
        next_obs = obs_in(state, batch.next_obs)
        # One critic pass over obs and next_obs together: [2, T, B].
        both = features(state.params, jnp.stack([obs, next_obs]))
        values, next_values = critic.apply(state.params["critic"], both)
        reward = jnp.sign(batch.reward) if config.clip_rewards else batch.reward
        advantages, targets = gae(
            reward * hparams.reward_scale,
            values,
            next_values,
            batch.terminated,
            batch.truncated,
            hparams.gamma,
            hparams.gae_lambda,
        )
        flat = jax.tree.map(
            lambda x: x.reshape((-1, *x.shape[2:])),
            (batch.replace(obs=obs, next_obs=next_obs, context=None), values, advantages, targets),
        )
        n = flat[1].shape[0]
        mb_size = n // config.num_minibatches

        def epoch(state, perm):
            data = flat if perm is None else jax.tree.map(lambda x: x[perm], flat)
            minibatches = jax.tree.map(
                lambda x: x.reshape((config.num_minibatches, mb_size, *x.shape[1:])), data
            )
            return jax.lax.scan(grad_step, state, minibatches)

        if config.num_minibatches == 1:
            # One minibatch is the whole batch: its loss does not depend on the order (up to
            # float summation order), so there is nothing to shuffle and no PRNG call.
            state, info = jax.lax.scan(
                lambda s, _: epoch(s, None), state, None, length=config.num_epochs
            )
        else:
            # Every epoch's shuffle from one PRNG call: argsort of random 32-bit keys,
            # [E, n]. (Ties, rare for n << 2^16, keep index order; each row is still a
            # permutation.)
            perms = jnp.argsort(jax.random.bits(key, (config.num_epochs, n)), axis=-1)
            state, info = jax.lax.scan(epoch, state, perms)
        if config.normalize_obs:
            state = state.replace(obs_stats=update_stats(state.obs_stats, batch.obs, batch_ndim=2))
        means = jnp.mean(info, axis=(0, 1))  # [E, M, len(STEP_METRICS)] -> per metric
        metrics = {name: means[i] for i, name in enumerate(STEP_METRICS)}
        metrics["value_mean"] = jnp.mean(values)
        return state, metrics

    return Agent(init=init, act=act, update=update)


def data(config: Config, env: Env) -> loops.Rollout:
    return loops.Rollout(num_envs=config.num_envs, rollout_len=config.rollout_len)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    if config.encoder not in ("mlp", "cnn"):
        raise ValueError(f"encoder must be 'mlp' or 'cnn', got {config.encoder!r}")
    if config.encoder == "cnn" and len(env.observation_spec.shape) != 3:
        raise ValueError(
            f"encoder='cnn' needs [H, W, C] observations, got {env.observation_spec.shape}"
        )
    if (config.num_envs * config.rollout_len) % config.num_minibatches:
        raise ValueError(
            f"num_envs * rollout_len = {config.num_envs * config.rollout_len} "
            "must be divisible "
            f"by num_minibatches = {config.num_minibatches}"
        )


SUMMARY = "PPO with GAE, clipped surrogate, minibatch epochs (Schulman et al. 2017)"
KINDS = ("discrete", "continuous")
POSITIVE = ("num_envs", "rollout_len", "num_epochs", "num_minibatches")
SPEC = AlgoSpec(
    "ppo", SUMMARY, Config, HParams, make_agent, data, KINDS, "cartpole", PRESETS, POSITIVE, check
)
