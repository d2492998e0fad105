"""Drama (Wang et al., 2024): a Mamba-2 world model and an actor-critic trained in
imagination, with dynamic frequency-based sampling (DFS) of the replay buffer.

One update (``update``) is one jitted function of the agent state and two replayed
batches: a world-model step on ``[wm_batch, wm_seq_len]`` sequences, then imagination
from ``[img_batch, context_len]`` contexts (the Mamba runs the context in parallel form,
then ``horizon`` recurrent steps with the actor choosing actions) and one actor and one
critic step on the imagined rollouts (DreamerV3-style: lambda-returns, two-hot symlog
critic with a slow-critic regulariser, advantages divided by ``max(1, S)`` with ``S``
an EMA of the 95th-5th percentile range of returns, REINFORCE actor with entropy bonus).

Acting in the real env keeps a belief per env: the Mamba state and the last output
``h``; the actor sees ``[z_t, h_{t-1}]`` with ``z_t`` the mode of the encoder's latent.
The loop is ``jaxrl.loops.model_based``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl import loops
from jaxrl.core import hparams_from
from jaxrl.envs import Env
from jaxrl.models.world_model import (
    MLPBlock,
    WorldModel,
    WorldModelConfig,
    count_params,
    initial_seq_state,
    sample_latent,
    twohot_bins,
    twohot_loss,
    twohot_mean,
    world_model_loss,
)
from jaxrl.nets.dense import Dense
from jaxrl.returns import lambda_returns

DEFAULT_ENV = "minatar/breakout"
SUPPORTS_DISCRETE = True
SUPPORTS_CONTINUOUS = False
PRESETS: dict[str, dict[str, Any]] = {}


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
    hidden: int = 256
    mlp_layers: int = 1
    num_bins: int = 255
    wm_batch: int = 16
    wm_seq_len: int = 32
    # behaviour
    img_batch: int = 128
    context_len: int = 8
    horizon: int = 16
    ac_hidden: int = 256
    ac_layers: int = 2
    # sampling
    dfs: bool = True
    dfs_temperature: float = 10.0
    num_evals: int = 10
    num_eval_envs: int = 8

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
            hidden=self.hidden,
            mlp_layers=self.mlp_layers,
            num_bins=self.num_bins,
            encoder=self.encoder,
        )


def paper_config(**overrides: Any) -> Config:
    """Drama's published sizes: 2-layer Mamba-2 (d_model 512, d_state 16), 32x32 latents,
    batch 16 x 64 sequences, imagination batch 1024 x horizon 16 from 8-step contexts.

    The CNN widths (16..256, five stride-2 stages) and 256-wide heads are this
    implementation's choice, picked so the world model has about the paper's 7M
    parameters (8.0M on 64x64x3 frames)."""
    base = dict(
        encoder="cnn",
        stoch=32,
        classes=32,
        d_model=512,
        head_dim=64,
        chunk_size=64,
        channels=(16, 32, 64, 128, 256),
        hidden=256,
        mlp_layers=1,
        wm_batch=16,
        wm_seq_len=64,
        img_batch=1024,
        context_len=8,
        horizon=16,
        ac_hidden=512,
        ac_layers=2,
        train_every=1,
    )
    return Config(**(base | overrides))


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    # CPU budget (~1.2k updates in 20k env steps): learning rates well above the
    # paper's (world model 4e-5 with LaProp; actor-critic 3e-5 over ~100k updates).
    wm_lr: float = 3e-4
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.985
    lam: float = 0.95
    ent_coef: float = 3e-4
    slow_critic_decay: float = 0.98
    slow_critic_reg: float = 1.0
    return_scale_decay: float = 0.99
    free_bits: float = 1.0
    dyn_scale: float = 1.0
    rep_scale: float = 0.1
    actor_unimix: float = 0.01


class DramaState(struct.PyTreeNode):
    params: Any  # {"wm", "actor", "critic", "slow_critic"}
    opt_state: Any  # {"wm", "actor", "critic"}
    return_scale: jax.Array  # EMA of the P95 - P5 range of imagined returns
    step: jax.Array


class Actor(nn.Module):
    num_actions: int
    hidden: int
    layers: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        x = MLPBlock(self.hidden, self.layers)(feat)
        return Dense(self.num_actions, kernel_init=nn.initializers.zeros)(x)


class Critic(nn.Module):
    num_bins: int
    hidden: int
    layers: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        x = MLPBlock(self.hidden, self.layers)(feat)
        return Dense(self.num_bins, kernel_init=nn.initializers.zeros)(x)


def actor_log_probs(logits: jax.Array, unimix: jax.Array | float) -> jax.Array:
    """Log of ``(1 - unimix) softmax + unimix / num_actions`` (DreamerV3's 1% unimix)."""
    probs = (1 - unimix) * jax.nn.softmax(logits, -1) + unimix / logits.shape[-1]
    return jnp.log(probs)


def discount_weights(terminated: jax.Array) -> jax.Array:
    """``w_t = prod_{k<t} (1 - terminated_k)`` over ``[H, B]``: steps after an imagined end
    count zero."""
    alive = 1.0 - terminated.astype(jnp.float32)
    return jnp.concatenate([jnp.ones_like(alive[:1]), jnp.cumprod(alive, 0)[:-1]], 0)


def percentile_range(x: jax.Array) -> jax.Array:
    """``P95(x) - P5(x)`` over all elements."""
    return jnp.percentile(x, 95) - jnp.percentile(x, 5)


def _adam(clip: float, eps: float) -> optax.GradientTransformation:
    # The learning rate is applied by hand so it can be a traced hyperparameter.
    return optax.chain(optax.clip_by_global_norm(clip), optax.scale_by_adam(eps=eps))


def make_agent(config: Config, env: Env, hparams: HParams) -> loops.RecurrentAgent:
    """Drama's ``RecurrentAgent`` for ``env`` (discrete actions); ``hparams`` may be traced."""
    obs_shape = tuple(env.observation_spec.shape)
    num_actions = env.action_spec.num_actions
    wm_config = config.world_model
    wm = WorldModel(wm_config, obs_shape, num_actions)
    actor = Actor(num_actions, config.ac_hidden, config.ac_layers)
    critic = Critic(config.num_bins, config.ac_hidden, config.ac_layers)
    bins = twohot_bins(config.num_bins)
    txs = {"wm": _adam(1000.0, 1e-8), "actor": _adam(100.0, 1e-5), "critic": _adam(100.0, 1e-5)}
    lrs = {"wm": hparams.wm_lr, "actor": hparams.actor_lr, "critic": hparams.critic_lr}

    def init(key: jax.Array) -> DramaState:
        k_wm, k_actor, k_critic = jax.random.split(key, 3)
        obs = jnp.zeros((1, 2, *obs_shape), jnp.float32)
        feat = jnp.zeros((1, wm_config.feat_dim), jnp.float32)
        params = {
            "wm": wm.init(k_wm, obs, jnp.zeros((1, 2), jnp.int32)),
            "actor": actor.init(k_actor, feat),
            "critic": critic.init(k_critic, feat),
        }
        params["slow_critic"] = params["critic"]
        opt_state = {k: tx.init(params[k]) for k, tx in txs.items()}
        return DramaState(params, opt_state, jnp.ones((), jnp.float32), jnp.zeros((), jnp.int32))

    def initial_carry(batch: int) -> tuple[Any, jax.Array]:
        return initial_seq_state(wm_config, batch), jnp.zeros((batch, wm_config.d_model))

    def _latent_mode(state: DramaState, obs: jax.Array) -> jax.Array:
        log_probs = wm.apply(state.params["wm"], obs, method=WorldModel.encode)
        z = jax.nn.one_hot(jnp.argmax(log_probs, -1), wm_config.classes)
        return z.reshape((obs.shape[0], -1))

    def act(state: DramaState, carry: Any, obs: jax.Array, key: jax.Array, explore: bool = True):
        """``obs [B, ...]`` -> ``(action [B], info)``; ``carry`` is the belief before ``obs``."""
        z = _latent_mode(state, obs)
        logits = actor.apply(state.params["actor"], jnp.concatenate([z, carry[1]], -1))
        if explore:
            action = jax.random.categorical(key, actor_log_probs(logits, hparams.actor_unimix))
        else:
            action = jnp.argmax(logits, -1)
        return action.astype(jnp.int32), {}

    def observe(state: DramaState, carry: Any, obs: jax.Array, action: jax.Array) -> Any:
        """The belief after ``obs [B, ...]`` and ``action [B]``."""
        z = _latent_mode(state, obs)
        h, seq_state = wm.apply(state.params["wm"], z, action, carry[0], method=WorldModel.seq_step)
        return seq_state, h

    def imagine(params: Any, context: dict[str, jax.Array], key: jax.Array) -> dict[str, Any]:
        """Rollouts of ``horizon`` steps from the end of each context (no gradients).

        Returns time-major ``feat [H + 1, B, F]``, ``action, reward, terminated [H, B]``.
        """
        wm_params = jax.lax.stop_gradient(params["wm"])
        ctx_key, start_key, roll_key = jax.random.split(key, 3)
        post = wm.apply(wm_params, context["obs"], method=WorldModel.encode)
        z = sample_latent(ctx_key, post)
        h, seq_state = wm.apply(wm_params, z, context["action"], method=WorldModel.sequence)
        h = h[:, -1]
        z = sample_latent(start_key, wm.apply(wm_params, h, method=WorldModel.prior))

        def step(carry, k):
            z, h, seq_state = carry
            act_key, z_key = jax.random.split(k)
            feat = jnp.concatenate([z, h], -1)
            logits = actor.apply(params["actor"], feat)
            action = jax.random.categorical(act_key, actor_log_probs(logits, hparams.actor_unimix))
            h, seq_state = wm.apply(wm_params, z, action, seq_state, method=WorldModel.seq_step)
            prior, reward_logits, term_logit = wm.apply(wm_params, h, method=WorldModel.heads)
            z = sample_latent(z_key, prior)
            out = (feat, action, twohot_mean(reward_logits, bins), term_logit > 0)
            return (z, h, seq_state), out

        keys = jax.random.split(roll_key, config.horizon)
        (z, h, _), (feats, actions, rewards, terms) = jax.lax.scan(step, (z, h, seq_state), keys)
        feats = jnp.concatenate([feats, jnp.concatenate([z, h], -1)[None]], 0)
        return {"feat": feats, "action": actions, "reward": rewards, "terminated": terms}

    def _step(name: str, params: Any, opt_state: Any, grads: Any) -> tuple[Any, Any]:
        updates, opt_state = txs[name].update(grads, opt_state)
        params = optax.apply_updates(params, jax.tree.map(lambda u: -lrs[name] * u, updates))
        return params, opt_state

    def behaviour_losses(params, state: DramaState, rollout: dict[str, Any]):
        feats = jax.lax.stop_gradient(rollout["feat"])
        values = twohot_mean(critic.apply(params["critic"], feats), bins)  # [H + 1, B]
        terms = rollout["terminated"]
        returns = lambda_returns(
            rollout["reward"],
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
        log_probs = actor_log_probs(actor.apply(params["actor"], feats[:-1]), hparams.actor_unimix)
        chosen = jnp.take_along_axis(log_probs, rollout["action"][..., None], -1)[..., 0]
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, -1)
        actor_loss = -jnp.mean(weights * (adv * chosen + hparams.ent_coef * entropy))
        info = {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "entropy": jnp.mean(entropy),
            "imag_return": jnp.mean(returns[0]),
            "imag_reward": jnp.mean(rollout["reward"]),
            "return_scale": scale,
        }
        return actor_loss + critic_loss, (info, scale)

    def update(state: DramaState, batch: tuple[dict, dict], key: jax.Array):
        """``batch = (wm_sequences [wm_batch, wm_seq_len], contexts [img_batch, context_len])``,
        dicts of ``obs, action, reward, terminated``."""
        wm_batch, context = batch
        chex.assert_shape(wm_batch["action"], (config.wm_batch, config.wm_seq_len))
        chex.assert_shape(context["action"], (config.img_batch, config.context_len))
        wm_key, img_key = jax.random.split(key)
        params = dict(state.params)
        opt_state = dict(state.opt_state)

        def wm_loss(p):
            return world_model_loss(
                wm,
                p,
                wm_batch,
                wm_key,
                free_bits=hparams.free_bits,
                dyn_scale=hparams.dyn_scale,
                rep_scale=hparams.rep_scale,
            )

        wm_grads, wm_info = jax.grad(wm_loss, has_aux=True)(params["wm"])
        params["wm"], opt_state["wm"] = _step("wm", params["wm"], opt_state["wm"], wm_grads)

        rollout = imagine(params, context, img_key)
        ac = {"actor": params["actor"], "critic": params["critic"]}
        grads, (info, scale) = jax.grad(behaviour_losses, has_aux=True)(ac, state, rollout)
        for name in ("actor", "critic"):
            params[name], opt_state[name] = _step(name, params[name], opt_state[name], grads[name])
        tau = hparams.slow_critic_decay
        params["slow_critic"] = jax.tree.map(
            lambda s, c: tau * s + (1 - tau) * c, params["slow_critic"], params["critic"]
        )
        info = info | wm_info
        info["wm_grad_norm"] = optax.global_norm(wm_grads)
        state = state.replace(
            params=params, opt_state=opt_state, return_scale=scale, step=state.step + 1
        )
        return state, info

    return loops.RecurrentAgent(
        init=init,
        act=act,
        update=update,
        initial_carry=initial_carry,
        observe=observe,
        imagine=imagine,
    )


def default_hparams(config: Config, **overrides: Any) -> HParams:
    return hparams_from(HParams, overrides)


def world_model_param_count(config: Config, env: Env) -> int:
    """Parameters of the world model for ``env`` (no compilation: shapes only)."""
    wm = WorldModel(
        config.world_model, tuple(env.observation_spec.shape), env.action_spec.num_actions
    )
    obs = jnp.zeros((1, 2, *env.observation_spec.shape), jnp.float32)
    shapes = jax.eval_shape(wm.init, jax.random.PRNGKey(0), obs, jnp.zeros((1, 2), jnp.int32))
    return count_params(shapes)


def schedule(config: Config) -> loops.Schedule:
    return loops.make_schedule(
        config.total_steps, config.num_envs * config.train_every, config.num_evals
    )


def validate(config: Config, env: Env | None = None) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    positive = (
        "total_steps num_envs train_every updates_per_iter stoch classes d_model num_layers "
        "d_state head_dim expand chunk_size hidden mlp_layers num_bins wm_batch img_batch "
        "horizon ac_hidden ac_layers num_evals num_eval_envs"
    ).split()
    for name in positive:
        if getattr(config, name) <= 0:
            raise ValueError(f"drama: {name} must be positive, got {getattr(config, name)}")
    if config.encoder not in ("cnn", "mlp"):
        raise ValueError(f"drama: encoder must be 'cnn' or 'mlp', got {config.encoder!r}")
    if config.warmup_steps < 0:
        raise ValueError(f"drama: warmup_steps must be >= 0, got {config.warmup_steps}")
    if config.wm_seq_len < 2:
        raise ValueError(f"drama: wm_seq_len must be >= 2, got {config.wm_seq_len}")
    if config.context_len < 1:
        raise ValueError(f"drama: context_len must be >= 1, got {config.context_len}")
    if (config.expand * config.d_model) % config.head_dim:
        raise ValueError(
            f"drama: expand * d_model = {config.expand * config.d_model} must be a multiple "
            f"of head_dim = {config.head_dim}"
        )
    if config.dfs_temperature <= 0:
        raise ValueError(f"drama: dfs_temperature must be positive, got {config.dfs_temperature}")
    if env is not None and not env.action_spec.discrete:
        raise ValueError("drama: needs a discrete action space (Discrete); got a Box")
    if env is not None and len(env.observation_spec.shape) not in (1, 3):
        raise ValueError(
            "drama: observations must be vectors [D] or images [H, W, C], got shape "
            f"{env.observation_spec.shape}"
        )
    steps_per_env = schedule(config).total_steps // config.num_envs
    if steps_per_env < max(config.wm_seq_len, config.context_len):
        raise ValueError(
            f"drama: total_steps / num_envs = {steps_per_env} is shorter than one sequence "
            f"(wm_seq_len={config.wm_seq_len}, context_len={config.context_len})"
        )


def make_train(config: Config, env: Env, progress: loops.Progress | None = None):
    """``train(key, hparams) -> (DramaState, metrics)``, one jittable function."""
    validate(config, env)
    return loops.model_based(
        lambda hp: make_agent(config, env, hp),
        env,
        total_steps=config.total_steps,
        num_envs=config.num_envs,
        train_every=config.train_every,
        warmup_steps=config.warmup_steps,
        updates_per_iter=config.updates_per_iter,
        wm_batch=config.wm_batch,
        wm_seq_len=config.wm_seq_len,
        img_batch=config.img_batch,
        context_len=config.context_len,
        dfs=config.dfs,
        dfs_temperature=config.dfs_temperature,
        num_evals=config.num_evals,
        num_eval_envs=config.num_eval_envs,
        progress=progress,
    )


def train_host(
    config: Config,
    env: Any,
    key: jax.Array,
    hparams: HParams | None = None,
    log: Any = None,
) -> tuple[DramaState, list[float]]:
    """Drama on a host env (``jaxrl.envs.atari.Atari100k``): Python steps the env, every
    agent computation (acting, belief update, buffer writes, DFS updates) is jitted.

    ``env`` has ``reset() -> obs``, ``step(a) -> (obs, reward, terminated, truncated)``,
    ``observation_spec`` and ``action_spec``; one env (``config.num_envs`` is ignored).
    Observations are divided by 255 when the spec's ``high`` is above 1 (uint8 frames).
    ``log(step, episode_return)`` is called at each episode end. Returns the final
    state and the returns of every finished episode.
    """
    from jaxrl import replay_dfs

    validate(config, env)
    hparams = default_hparams(config) if hparams is None else hparams
    agent = make_agent(config, env, hparams)
    key, init_key = jax.random.split(key)
    state = agent.init(init_key)
    obs_shape = tuple(env.observation_spec.shape)
    example = {
        "obs": jnp.zeros((1, *obs_shape), jnp.float32),
        "action": jnp.zeros((1,), jnp.int32),
        "reward": jnp.zeros((1,), jnp.float32),
        "terminated": jnp.zeros((1,), jnp.bool_),
    }
    buffer = replay_dfs.sequence_replay_init(example, config.total_steps)

    @jax.jit
    def act(state, belief, obs, key):
        action, _ = agent.act(state, belief, obs, key, explore=True)
        return action, agent.observe(state, belief, obs, action)

    @jax.jit
    def observe(state, belief, obs, action):
        return agent.observe(state, belief, obs, action)

    add = jax.jit(replay_dfs.sequence_replay_add)
    updates = jax.jit(
        lambda state, buffer, key: loops.dfs_updates(
            agent,
            state,
            buffer,
            key,
            updates=config.updates_per_iter,
            wm_batch=config.wm_batch,
            wm_seq_len=config.wm_seq_len,
            img_batch=config.img_batch,
            context_len=config.context_len,
            dfs=config.dfs,
            dfs_temperature=config.dfs_temperature,
        )
    )
    # uint8 frames (Box high 255) enter the model in [0, 1].
    scale = 255.0 if float(np.max(env.observation_spec.high)) > 1.0 else 1.0
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    obs = env.reset()
    belief = agent.initial_carry(1)
    returns, episode_return = [], 0.0
    first_update = max(config.warmup_steps, config.wm_seq_len, config.context_len)
    for t in range(config.total_steps):
        key, act_key, update_key = jax.random.split(key, 3)
        obs_in = jnp.asarray(obs, jnp.float32)[None] / scale
        if t < config.warmup_steps:
            action = jnp.asarray([rng.integers(env.action_spec.num_actions)], jnp.int32)
            belief = observe(state, belief, obs_in, action)
        else:
            action, belief = act(state, belief, obs_in, act_key)
        next_obs, reward, terminated, truncated = env.step(int(action[0]))
        row = {
            "obs": obs_in[None],
            "action": action[None],
            "reward": jnp.asarray([[reward]], jnp.float32),
            "terminated": jnp.asarray([[terminated]]),
        }
        buffer = add(buffer, row)
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            if log is not None:
                log(t + 1, episode_return)
            obs, belief, episode_return = env.reset(), agent.initial_carry(1), 0.0
        if t + 1 >= first_update and (t + 1) % config.train_every == 0:
            state, buffer, _ = updates(state, buffer, update_key)
    return state, returns
