"""Drama (Wang et al., 2024): a Mamba-2 world model and an actor-critic trained in
imagination, with dynamic frequency-based sampling (DFS) of the replay buffer.

Drama is ``jaxrl.transforms.with_world_model`` over ``imagination_actor_critic``. One
update is one jitted function of the agent state and two replayed batches (a
``SequenceBatch``): a world-model step on ``[wm_batch, wm_seq_len]`` sequences, then imagination
from ``[img_batch, context_len]`` contexts (the Mamba runs the context in parallel form,
then ``horizon`` recurrent steps with the actor choosing actions) and one actor and one
critic step on the imagined rollouts (DreamerV3-style: lambda-returns, two-hot symlog
critic with a slow-critic regulariser, advantages divided by ``max(1, S)`` with ``S``
an EMA of the 95th-5th percentile range of returns, REINFORCE actor with entropy bonus).

``Config.sequence_model="transformer"`` swaps the Mamba for a causal Transformer of
about the same size (``jaxrl.nets.transformer``: parallel form for training, a
sliding-window KV cache for imagination and acting), for the Mamba-vs-attention
comparison inside the same agent.

Acting in the real env, as the official code (github.com/realwenlongwang/Drama,
``train.py``): the belief per env is the episode's last ``context_window`` (16) obs and
actions, rerun through the world model from a zero state at every step; the actor sees
``[z_t, h_{t-1}]`` with ``z_t`` a sample of the prior ``h_{t-1}`` predicts (an episode's
first action is uniformly random). The loop is ``jaxrl.loops.sequences`` with the
``DFSSampler`` (batch-ratio scaled, draws without replacement).

``paper_config()`` / ``paper_hparams()`` are the official ``config_files/train.yaml``:
one world-model and one actor-critic update per env step on 16 x 128 sequences and
1024 imagined rollouts. ``Config()``'s defaults are a cheaper CPU setting (an update
every 16 env steps on 16 x 32 sequences and 128 rollouts, a smaller model).

Evaluation is the loop's (``jaxrl.loops.evaluate``, greedy unless the env samples); the
``sampled`` evaluation hook adds the final agents' sampled-action returns to
``summary.json``, as the official training curves are of sampled actions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.core import Agent, adam
from jaxrl.core.domains import NONNEGATIVE, POSITIVE, UNIT, hparam
from jaxrl.data.sequences import (
    DFSSampler,
)
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.models.world_model import (
    MLPBlock,
    WorldModel,
    WorldModelConfig,
    count_params,
    twohot_bins,
    twohot_loss,
    twohot_mean,
    unimix_log_probs,
)
from jaxrl.nets.dense import Dense
from jaxrl.nets.init import orthogonal
from jaxrl.returns import lambda_returns
from jaxrl.transforms import sampled
from jaxrl.transforms.world_model import Imagined, with_world_model


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings. Defaults are CPU-sized (see ``paper_config`` for Drama's)."""

    total_steps: int = 20_000
    num_envs: int = 1
    train_every: int = 16  # env steps per env between updates
    updates_per_iter: int = 1
    warmup_steps: int = 1_000
    # world model
    encoder: str = "mlp"  # "cnn" for image observations at paper scale
    stoch: int = 16
    classes: int = 16
    d_model: int = 128
    num_layers: int = 2
    d_state: int = 16
    head_dim: int = 32
    expand: int = 2
    chunk_size: int = 32
    channels: tuple[int, ...] = (32, 64)
    kernel: int = 4  # CNN kernel (official: 5)
    first_stride_one: bool = False  # official: the first convolution has stride 1
    hidden: int = 256
    mlp_layers: int = 1
    num_bins: int = 255
    wm_batch: int = 16
    wm_seq_len: int = 32
    # sequence model: "mamba" (Drama) or "transformer" (causal attention of about equal
    # size: ff_mult=1; rotary positions; a KV cache of attention_window steps for acting
    # and imagination, 0 = max(wm_seq_len, context_len + horizon))
    sequence_model: str = "mamba"
    num_attention_heads: int = 4
    ff_mult: int = 1
    attention_window: int = 0
    attention_rope: bool = True
    # behaviour
    img_batch: int = 128
    context_len: int = 8
    horizon: int = 16
    ac_hidden: int = 256  # actor width (and the critic's unless critic_hidden)
    critic_hidden: int = 0  # 0: ac_hidden
    ac_layers: int = 2
    # acting: the belief is the episode's last context_window steps (official: 16)
    context_window: int = 16
    # sampling
    dfs: bool = True
    dfs_temperature: float = 10.0
    num_evals: int = 10
    num_eval_envs: int = 8
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length

    @property
    def world_model(self) -> WorldModelConfig:
        return WorldModelConfig(
            stoch=self.stoch,
            classes=self.classes,
            d_model=self.d_model,
            num_layers=self.num_layers,
            d_state=self.d_state,
            head_dim=self.head_dim,
            expand=self.expand,
            chunk_size=self.chunk_size,
            channels=self.channels,
            kernel=self.kernel,
            first_stride_one=self.first_stride_one,
            hidden=self.hidden,
            mlp_layers=self.mlp_layers,
            num_bins=self.num_bins,
            encoder=self.encoder,
            sequence_model=self.sequence_model,
            num_attention_heads=self.num_attention_heads,
            ff_mult=self.ff_mult,
            attention_window=self.attention_window
            or max(self.wm_seq_len, self.context_len + self.horizon),
            attention_rope=self.attention_rope,
        )


def paper_config(**overrides: Any) -> Config:
    """Drama's official settings (``config_files/train.yaml`` of
    github.com/realwenlongwang/Drama), field by field: 100k env steps in one env, random
    actions for the first 1032; one world-model and one actor-critic update per env step
    (``TrainDynamicsEverySteps = TrainAgentEverySteps = 1``) on 16 x 128 sequences
    (``BatchSize``, ``BatchLength``) and 1024 imagined rollouts of 16 steps from 8-step
    contexts; a 2-layer Mamba-2 (``HiddenStateDim`` 512, ``d_state`` 16), 32 x 32
    latents; the CNN of ``Depth`` 16 x ``Mults`` (1, 2, 3, 4, 4), kernel 5, first stride 1;
    256-wide reward/termination heads of one layer; actor 256 and critic 512 wide, 3
    layers; DFS temperature 10; acting from the last 16 steps (``RealityContextLength``).
    About 7M world-model parameters on 64x64x3 frames. ``paper_hparams()`` gives the
    official learning rates and returns settings."""
    base = dict(
        total_steps=100_000,
        num_envs=1,
        warmup_steps=1032,
        train_every=1,
        updates_per_iter=1,
        encoder="cnn",
        stoch=32,
        classes=32,
        d_model=512,
        num_layers=2,
        d_state=16,
        head_dim=64,
        chunk_size=64,
        channels=(16, 32, 48, 64, 64),
        kernel=5,
        first_stride_one=True,
        hidden=256,
        mlp_layers=1,
        num_bins=255,
        wm_batch=16,
        wm_seq_len=128,
        img_batch=1024,
        context_len=8,
        horizon=16,
        ac_hidden=256,
        critic_hidden=512,
        ac_layers=3,
        context_window=16,
        dfs=True,
        dfs_temperature=10.0,
    )
    return Config(**(base | overrides))


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    # CPU budget (~1.2k updates in 20k env steps): learning rates well above the
    # paper's (world model 4e-5 with LaProp; actor-critic 3e-5 over ~100k updates).
    wm_lr: float = hparam(3e-4, POSITIVE)
    actor_lr: float = hparam(1e-3, POSITIVE)
    critic_lr: float = hparam(1e-3, POSITIVE)
    gamma: float = hparam(0.985, UNIT)
    lam: float = hparam(0.95, UNIT)
    ent_coef: float = hparam(3e-4, NONNEGATIVE)
    slow_critic_decay: float = hparam(0.98, UNIT)
    slow_critic_reg: float = hparam(1.0, NONNEGATIVE)
    return_scale_decay: float = hparam(0.99, UNIT)
    free_bits: float = hparam(1.0, NONNEGATIVE)
    dyn_scale: float = hparam(1.0, NONNEGATIVE)
    rep_scale: float = hparam(0.1, NONNEGATIVE)
    actor_unimix: float = hparam(0.01, UNIT)


def paper_hparams(**overrides: Any) -> HParams:
    """The official ``train.yaml``'s numbers: LaProp learning rates 4e-5 (world model and
    actor-critic; here they drive Adam), gamma 0.985, lambda 0.95, entropy 3e-4, no
    unimix on the actor (``Unimix_ratio: 0``); the rest are ``HParams``' defaults, which
    are the official code's (free bits 1, KL scales 1 and 0.1, slow critic 0.98, return
    EMA 0.99)."""
    base = dict(
        wm_lr=4e-5,
        actor_lr=4e-5,
        critic_lr=4e-5,
        gamma=0.985,
        lam=0.95,
        ent_coef=3e-4,
        actor_unimix=0.0,
    )
    return SPEC.default_hparams(**(base | overrides))


class ActorCriticState(struct.PyTreeNode):
    """The imagination actor-critic's state (inside ``WorldModelState.inner``)."""

    params: Any  # {"actor", "critic", "slow_critic"}
    opt_state: Any  # {"actor", "critic"}
    return_scale: jax.Array  # EMA of the P95 - P5 range of imagined returns
    step: jax.Array


#: The output layers' init, as the official ``layer_init(..., std=0.001)``: orthogonal
#: weights of gain 0.001 and zero bias, so the first policy is near uniform but not flat
#: (jaxrl's Gram-Schmidt orthogonal: flax's QR one can hang vmapped on XLA:CPU).
HEAD_INIT = orthogonal(0.001)


class Actor(nn.Module):
    """``feat [..., F] -> logits [..., num_actions]``."""

    num_actions: int
    hidden: int
    layers: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        x = MLPBlock(self.hidden, self.layers)(feat)
        return Dense(self.num_actions, kernel_init=HEAD_INIT)(x)


class Critic(nn.Module):
    """``feat [..., F] -> two-hot logits [..., num_bins]``."""

    num_bins: int
    hidden: int
    layers: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        x = MLPBlock(self.hidden, self.layers)(feat)
        return Dense(self.num_bins, kernel_init=HEAD_INIT)(x)


def discount_weights(terminated: jax.Array) -> jax.Array:
    """``w_t = prod_{k<t} (1 - terminated_k)`` over ``[H, B]``: steps after an imagined end
    count zero."""
    alive = 1.0 - terminated.astype(jnp.float32)
    return jnp.concatenate([jnp.ones_like(alive[:1]), jnp.cumprod(alive, 0)[:-1]], 0)


def percentile_range(x: jax.Array) -> jax.Array:
    """``P95(x) - P5(x)`` over all elements."""
    return jnp.percentile(x, 95) - jnp.percentile(x, 5)


def imagination_actor_critic(config: Config, num_actions: int, hparams: HParams) -> Agent:
    """The behaviour learner: an agent on world-model features ``feat [B, feat_dim]``.

    ``act`` samples the unimix categorical policy (greedy without ``explore``);
    ``update(state, rollout: Imagined, key)`` takes one actor and one critic step on
    imagined rollouts (``jaxrl.transforms.world_model``) and moves the slow critic.
    """
    actor = Actor(num_actions, config.ac_hidden, config.ac_layers)
    critic = Critic(config.num_bins, config.critic_hidden or config.ac_hidden, config.ac_layers)
    bins = twohot_bins(config.num_bins)
    feat_dim = config.world_model.feat_dim
    txs = {
        "actor": adam(hparams.actor_lr, eps=1e-5, max_grad_norm=100.0),
        "critic": adam(hparams.critic_lr, eps=1e-5, max_grad_norm=100.0),
    }

    def init(key: jax.Array) -> ActorCriticState:
        k_actor, k_critic = jax.random.split(key)
        feat = jnp.zeros((1, feat_dim), jnp.float32)
        params = {"actor": actor.init(k_actor, feat), "critic": critic.init(k_critic, feat)}
        params["slow_critic"] = params["critic"]
        opt_state = {k: tx.init(params[k]) for k, tx in txs.items()}
        one, zero = jnp.ones((), jnp.float32), jnp.zeros((), jnp.int32)
        return ActorCriticState(params, opt_state, one, zero)

    def act(state: ActorCriticState, feat: jax.Array, key: jax.Array, explore=True, **_):
        logits = actor.apply(state.params["actor"], feat)
        if explore:
            action = jax.random.categorical(key, unimix_log_probs(logits, hparams.actor_unimix))
        else:
            action = jnp.argmax(logits, -1)
        return action.astype(jnp.int32), {}

    def losses(params, state: ActorCriticState, rollout: Imagined):
        feats = jax.lax.stop_gradient(rollout.feat)
        values = twohot_mean(critic.apply(params["critic"], feats), bins)  # [H + 1, B]
        terms = rollout.terminated
        returns = lambda_returns(
            rollout.reward,
            jax.lax.stop_gradient(values[1:]),
            terms,
            jnp.zeros_like(terms),
            hparams.gamma,
            hparams.lam,
        )
        weights = discount_weights(terms)
        # Critic: two-hot towards the returns and towards the slow critic's values.
        critic_logits = critic.apply(params["critic"], feats[:-1])
        slow = twohot_mean(critic.apply(state.params["slow_critic"], feats[:-1]), bins)
        critic_loss = jnp.mean(
            weights
            * (
                twohot_loss(critic_logits, jax.lax.stop_gradient(returns), bins)
                + hparams.slow_critic_reg * twohot_loss(critic_logits, slow, bins)
            )
        )
        # Actor: REINFORCE with normalised advantages and an entropy bonus.
        scale = hparams.return_scale_decay * state.return_scale + (
            1 - hparams.return_scale_decay
        ) * percentile_range(returns)
        adv = jax.lax.stop_gradient((returns - values[:-1]) / jnp.maximum(1.0, scale))
        logits = actor.apply(params["actor"], feats[:-1])
        log_probs = unimix_log_probs(logits, hparams.actor_unimix)
        chosen = jnp.take_along_axis(log_probs, rollout.action[..., None], -1)[..., 0]
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, -1)
        actor_loss = -jnp.mean(weights * (adv * chosen + hparams.ent_coef * entropy))
        info = {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "entropy": jnp.mean(entropy),
            "imag_return": jnp.mean(returns[0]),
            "imag_reward": jnp.mean(rollout.reward),
            "return_scale": scale,
        }
        return actor_loss + critic_loss, (info, scale)

    def update(state: ActorCriticState, rollout: Imagined, key: jax.Array):
        """``rollout``: ``feat [H + 1, B, F]``, ``action, reward, terminated [H, B]``."""
        chex.assert_shape(rollout.action, (config.horizon, config.img_batch))
        params, opt_state = dict(state.params), dict(state.opt_state)
        ac = {"actor": params["actor"], "critic": params["critic"]}
        grads, (info, scale) = jax.grad(losses, has_aux=True)(ac, state, rollout)
        for name in ("actor", "critic"):
            updates, opt_state[name] = txs[name].update(grads[name], opt_state[name])
            params[name] = optax.apply_updates(params[name], updates)
        tau = hparams.slow_critic_decay
        params["slow_critic"] = jax.tree.map(
            lambda s, c: tau * s + (1 - tau) * c, params["slow_critic"], params["critic"]
        )
        new = ActorCriticState(params, opt_state, scale, state.step + 1)
        return new, info

    return Agent(init=init, act=act, update=update)


def world_model(config: Config, env: Env) -> WorldModel:
    return WorldModel(
        config.world_model, tuple(env.observation_spec.shape), env.action_spec.num_actions
    )


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """Drama for ``env`` (discrete actions): ``with_world_model`` over the imagination
    actor-critic. A recurrent agent whose carry (belief) is ``(Mamba state, h)``; its
    ``update`` takes a ``SequenceBatch``. ``hparams`` may be traced."""
    behaviour = imagination_actor_critic(config, env.action_spec.num_actions, hparams)
    return with_world_model(
        behaviour,
        world_model(config, env),
        horizon=config.horizon,
        lr=hparams.wm_lr,
        eps=1e-8,
        max_grad_norm=1000.0,
        free_bits=hparams.free_bits,
        dyn_scale=hparams.dyn_scale,
        rep_scale=hparams.rep_scale,
        context_window=config.context_window,
    )


def world_model_param_count(config: Config, env: Env) -> int:
    """Parameters of the world model for ``env`` (no compilation: shapes only)."""
    wm = world_model(config, env)
    obs = jnp.zeros((1, 2, *env.observation_spec.shape), jnp.float32)
    shapes = jax.eval_shape(wm.init, jax.random.PRNGKey(0), obs, jnp.zeros((1, 2), jnp.int32))
    return count_params(shapes)


def sampler(config: Config) -> DFSSampler:
    return DFSSampler(
        wm_batch=config.wm_batch,
        wm_seq_len=config.wm_seq_len,
        img_batch=config.img_batch,
        context_len=config.context_len,
        dfs=config.dfs,
        temperature=config.dfs_temperature,
    )


def data(config: Config, env: Env) -> loops.Sequences:
    """Per-env sequence replay drawn by DFS; updates start once a sequence is stored."""
    dfs = sampler(config)
    return loops.Sequences(
        num_envs=config.num_envs,
        train_every=config.train_every,
        warmup_steps=config.warmup_steps,
        updates_per_iter=config.updates_per_iter,
        sampler=dfs,
        first_update=max(config.warmup_steps // config.num_envs, dfs.min_length),
    )


def check(config: Config, env: Env | None = None) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    if config.encoder not in ("cnn", "mlp"):
        raise ValueError(f"encoder must be 'cnn' or 'mlp', got {config.encoder!r}")
    loops.check_warmup(config)
    if config.wm_seq_len < 2:
        raise ValueError(f"wm_seq_len must be >= 2, got {config.wm_seq_len}")
    if config.context_len < 1:
        raise ValueError(f"context_len must be >= 1, got {config.context_len}")
    if (config.expand * config.d_model) % config.head_dim:
        raise ValueError(
            f"expand * d_model = {config.expand * config.d_model} must be a multiple "
            f"of head_dim = {config.head_dim}"
        )
    if config.sequence_model not in ("mamba", "transformer"):
        raise ValueError(
            f"sequence_model must be 'mamba' or 'transformer', got {config.sequence_model!r}"
        )
    if config.sequence_model == "transformer":
        if config.d_model % config.num_attention_heads:
            raise ValueError(
                f"d_model = {config.d_model} must be a multiple of "
                f"num_attention_heads = {config.num_attention_heads}"
            )
        if 0 < config.attention_window < config.context_len + config.horizon:
            raise ValueError(
                f"attention_window = {config.attention_window} must be >= context_len + "
                f"horizon = {config.context_len + config.horizon} (or 0 for automatic)"
            )
    if config.critic_hidden < 0:
        raise ValueError(f"critic_hidden must be >= 0 (0: ac_hidden), got {config.critic_hidden}")
    if config.dfs_temperature <= 0:
        raise ValueError(f"dfs_temperature must be positive, got {config.dfs_temperature}")
    if env is not None and len(env.observation_spec.shape) not in (1, 3):
        raise ValueError(
            "observations must be vectors [D] or images [H, W, C], got shape "
            f"{env.observation_spec.shape}"
        )
    schedule = loops.schedule_for(data(config, env), config.total_steps, config.num_evals)
    steps_per_env = schedule.total_steps // config.num_envs
    if steps_per_env < max(config.wm_seq_len, config.context_len):
        raise ValueError(
            f"total_steps / num_envs = {steps_per_env} is shorter than one sequence "
            f"(wm_seq_len={config.wm_seq_len}, context_len={config.context_len})"
        )


POSITIVE = tuple(
    "num_envs train_every updates_per_iter stoch classes d_model num_layers d_state head_dim "
    "expand chunk_size kernel hidden mlp_layers num_bins wm_batch img_batch horizon "
    "ac_hidden ac_layers context_window num_attention_heads ff_mult".split()
)

#: ``atari/<game>`` (Atari100k frames, 64x64x3): the CNN encoder at a CPU size (one update
#: ~4 s on 2 cores) and a few whole-episode evaluations (an Atari episode is ~1-27k agent
#: steps stepped from Python); ``paper_config()`` gives the paper's sizes.
PRESETS: dict[str, dict[str, Any]] = {
    "atari": {
        "encoder": "cnn",
        "channels": (16, 32),
        "wm_batch": 8,
        "img_batch": 64,
        "num_evals": 2,
        "num_eval_envs": 3,
    }
}

SUMMARY = "Drama: Mamba-2 world model, imagination actor-critic, DFS replay (Wang et al. 2024)"
ENV = "minatar/breakout"
SPEC = AlgoSpec(
    "drama",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    data,
    ("discrete",),
    ENV,
    PRESETS,
    POSITIVE,
    check,
    eval_hooks=(sampled.HOOK,),
)
