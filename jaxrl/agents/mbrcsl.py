"""MBRCSL: model-based return-conditioned supervised learning (Zhou et al., 2023).

RCSL cannot stitch pieces of different trajectories; MBRCSL lets a learned model do it:

1. fit a probabilistic dynamics ensemble (``jaxrl.models.Ensemble``: Gaussian MLPs on
   ``[next_obs - obs, reward]``, NLL with learned variance bounds, holdout elites);
2. fit a multi-modal behaviour policy to the dataset's actions;
3. roll the behaviour policy through the model from the dataset's initial states
   (``jaxrl.models.rollout``, all rollouts in one vmapped call, horizon = the env's);
4. keep the rollouts whose (model-predicted) return exceeds the best return in the
   dataset, the first ``num_keep`` of them in sampling order (``filter_rollouts``);
5. train an RCSL policy on the kept rollouts (and the offline data, see below) and
   evaluate it in the real env conditioned on the highest kept return.

Steps 1-4 run in ``prepare`` (inside the jitted ``init``); the scan over periods then
trains the RCSL policy, so ``total_steps`` and ``env_steps`` count RCSL gradient steps.
The metrics carry ``rollouts_passed`` (how many of ``num_rollouts`` passed the filter),
``rollout_return_max``, ``dataset_return_max`` and ``model_holdout_mse``.

Behaviour policy: a Gaussian mixture (``jaxrl.nets.mixture``, 5 components) instead of
the paper's diffusion policy. It represents the multi-modal choice the paper needs (at
the Point Maze start the data goes either down or left; a unimodal Gaussian would average
them into a wall), with an exact likelihood and one network pass per action, where a
10-step diffusion sampler costs 10 passes for each of the ``num_rollouts x horizon``
actions.

Departures from the paper, each found necessary on this CPU budget (paper in brackets):

- model predictions are clipped to the dataset's range of states and rewards, and the
  reward of a rollout step is predicted from the sampled next state by a separate MLP
  (``model_reward="next_state"``, as Dreamer-style models do) [the ensemble's own reward
  head, still available as ``"sample"`` / ``"elite_mean"``]: the (state, action) reward
  head extrapolated optimistically off the data, and the filter then selected exactly
  the rollouts that exploited it;
- the RCSL policy trains on the kept rollouts and the offline trajectories, half of each
  batch from each (``with_dataset``) [kept rollouts only]: with ~50-100 kept rollouts a
  policy trained on them alone reached the goal by the stitched route but drifted off it
  in the real env; the offline data anchors the behaviour at the goal while conditioning
  on the rollouts' higher returns still selects the stitched route. Its learning rate
  decays to zero (cosine) over ``total_steps``;
- RCSL policy MLP 2 x 256 [2 x 1024]; ensemble members 3 x 128 [4 x 200]; a fixed batch
  of ``num_rollouts`` rollouts, of which the first ``num_keep`` that pass are kept
  [sample until 100 pass]; when none passes, the ``num_keep`` best are kept instead
  (``rollouts_passed`` then reads 0) so shapes stay static.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents import rcsl
from jaxrl.core import Agent, Transition, hparams_from
from jaxrl.envs import Env
from jaxrl.models import Ensemble, rollout, to_dataset
from jaxrl.nets import MLP
from jaxrl.nets.mixture import GaussianMixture, mixture_log_prob, mixture_sample
from jaxrl.offline import Dataset, common

DEFAULT_ENV = "pointmaze"
SUPPORTS_DISCRETE = False
SUPPORTS_CONTINUOUS = True
PRESETS: dict[str, dict[str, Any]] = {}


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """Static settings: ``common.OfflineConfig`` (``total_steps`` counts RCSL gradient
    steps, ``hidden`` is the RCSL policy's) plus the model, behaviour policy and filter."""

    # dynamics ensemble
    model_members: int = 7
    model_elites: int = 5
    model_hidden: tuple[int, ...] = (128, 128, 128)
    model_steps: int = 1_500
    model_batch_size: int = 256
    holdout_fraction: float = 0.1
    model_reward: str = "next_state"  # "next_state", "elite_mean" or "sample"; see below
    # behaviour policy (Gaussian mixture)
    behavior_components: int = 5
    behavior_hidden: tuple[int, ...] = (256, 256)
    behavior_steps: int = 5_000
    behavior_noise: float = 1.0  # scale of the within-component noise when sampling
    # rollouts and filter
    num_rollouts: int = 4096
    rollout_horizon: int = 0  # 0: the env's episode length
    num_keep: int = 200
    # Also train the RCSL policy on the offline trajectories, half of each batch from each.
    with_dataset: bool = True


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = 1e-3  # RCSL policy
    model_lr: float = 1e-3
    behavior_lr: float = 1e-3


def default_hparams(config: Config, **overrides: Any) -> HParams:
    return hparams_from(HParams, overrides)


def make_agent(config: Config, env: Env, hparams: HParams) -> Agent:
    """The output RCSL policy: input ``[obs, rtg / return_scale]``."""
    obs_dim = env.observation_spec.shape[0]
    return rcsl.policy_agent(
        env, obs_dim + 1, config.hidden, config.activation, hparams.lr, config.total_steps
    )


schedule = common.schedule


def validate(config: Config) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    positive = (
        "model_members",
        "model_elites",
        "model_steps",
        "model_batch_size",
        "behavior_components",
        "behavior_steps",
        "num_rollouts",
        "num_keep",
    )
    common.validate("mbrcsl", config, positive)
    if config.model_elites > config.model_members:
        raise ValueError(
            f"mbrcsl: model_elites={config.model_elites} must be <= "
            f"model_members={config.model_members}"
        )
    if config.num_keep > config.num_rollouts:
        raise ValueError(
            f"mbrcsl: num_keep={config.num_keep} must be <= num_rollouts={config.num_rollouts}"
        )
    if not 0.0 < config.holdout_fraction < 1.0:
        raise ValueError(
            f"mbrcsl: holdout_fraction must be in (0, 1), got {config.holdout_fraction}"
        )
    if config.model_reward not in ("next_state", "elite_mean", "sample"):
        raise ValueError(
            "mbrcsl: model_reward must be one of next_state, elite_mean, sample; "
            f"got {config.model_reward!r}"
        )
    if config.rollout_horizon < 0:
        raise ValueError(f"mbrcsl: rollout_horizon must be >= 0, got {config.rollout_horizon}")
    for name in ("model_hidden", "behavior_hidden"):
        widths = getattr(config, name)
        if not widths or min(widths) <= 0:
            raise ValueError(f"mbrcsl: {name} must be positive widths, got {widths}")


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape((-1, *x.shape[2:]))


def _split_trajectories(ds: Dataset, key: jax.Array, fraction: float):
    """``(train_valid [T*N], holdout_valid [T*N])``: whole trajectories held out.

    With a single trajectory there is nothing to hold out: both masks are its steps.
    """
    n = ds.num_trajectories
    if n == 1:
        return _flat(ds.valid), _flat(ds.valid)
    num_holdout = min(n - 1, max(1, round(fraction * n)))
    held = jnp.zeros(n, jnp.bool_).at[jax.random.permutation(key, n)[:num_holdout]].set(True)
    return _flat(ds.valid & ~held[None, :]), _flat(ds.valid & held[None, :])


def train_behavior(
    net: GaussianMixture,
    obs: jax.Array,
    action: jax.Array,
    valid: jax.Array,
    key: jax.Array,
    *,
    steps: int,
    batch_size: int,
    lr: jax.Array | float,
) -> tuple[Any, jax.Array]:
    """Maximum likelihood for the mixture policy on rows ``obs [N, o], action [N, a]``.

    Returns ``(params, nll [steps])``.
    """
    init_key, key = jax.random.split(key)
    params = net.init(init_key, obs[:1])
    tx = optax.adam(lr)
    cdf = jnp.cumsum(valid.astype(jnp.int32))

    def step(carry, k):
        params, opt = carry
        idx = jnp.searchsorted(cdf, jax.random.randint(k, (batch_size,), 0, cdf[-1]), "right")

        def loss_fn(p):
            return -jnp.mean(mixture_log_prob(*net.apply(p, obs[idx]), action[idx]))

        nll, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt)
        return (optax.apply_updates(params, updates), opt), nll

    (params, _), nll = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
    return params, nll


class _RewardNet(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(1)(MLP(self.hidden, "silu")(x))[..., 0]


def train_reward(
    net: _RewardNet,
    next_obs: jax.Array,
    reward: jax.Array,
    valid: jax.Array,
    key: jax.Array,
    *,
    steps: int,
    batch_size: int,
    lr: jax.Array | float,
) -> tuple[Any, jax.Array]:
    """MSE regression ``reward ~ net(next_obs)`` on rows ``[N, ...]``; ``(params, mse)``."""
    init_key, key = jax.random.split(key)
    params = net.init(init_key, next_obs[:1])
    tx = optax.adam(lr)
    cdf = jnp.cumsum(valid.astype(jnp.int32))

    def step(carry, k):
        params, opt = carry
        idx = jnp.searchsorted(cdf, jax.random.randint(k, (batch_size,), 0, cdf[-1]), "right")

        def loss_fn(p):
            return jnp.mean(jnp.square(net.apply(p, next_obs[idx]) - reward[idx]))

        mse, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt)
        return (optax.apply_updates(params, updates), opt), mse

    (params, _), mse = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
    return params, mse


def filter_rollouts(
    returns: jax.Array, threshold: jax.Array, num_keep: int
) -> tuple[jax.Array, jax.Array]:
    """MBRCSL's filter: the first ``num_keep`` rollouts (in sampling order) whose return
    exceeds ``threshold``, as the paper samples until that many pass.

    ``returns [B]`` -> ``(index [num_keep] int32, keep [num_keep] bool)``: ``keep`` is
    False for slots no passing rollout filled. When none passes at all, the ``num_keep``
    highest returns are kept instead (all ``keep`` True), so training data is never empty.
    """
    b = returns.shape[0]
    passed = returns > threshold
    order = jnp.argsort(jnp.where(passed, 0, b) + jnp.arange(b))[:num_keep]
    best = jax.lax.top_k(returns, num_keep)[1]
    any_passed = jnp.any(passed)
    index = jnp.where(any_passed, order, best).astype(jnp.int32)
    keep = jnp.where(any_passed, passed[order], True)
    return index, keep


def _join(kept: Dataset, keep: jax.Array, ds: Dataset) -> tuple[Dataset, jax.Array]:
    """Kept rollouts and the offline trajectories side by side (``[T, K + N]``)."""
    t = max(kept.horizon, ds.horizon)

    def pad(x):
        return jnp.pad(x, [(0, t - x.shape[0])] + [(0, 0)] * (x.ndim - 1))

    def cat(a, b):
        if a.ndim == 1:  # length [N]
            return jnp.concatenate([a, b])
        return jnp.concatenate([pad(a), pad(b).astype(a.dtype)], axis=1)

    joined = jax.tree.map(cat, kept, ds)
    return joined, jnp.concatenate([keep, ds.length > 0])


def synthesize(
    config: Config, env: Env, ds: Dataset, key: jax.Array, hparams: HParams
) -> common.ConditionedData:
    """Steps 1-4 of MBRCSL: model, behaviour policy, rollouts, filter. Pure, jittable."""
    obs_dim = env.observation_spec.shape[0]
    act_dim = env.action_spec.shape[0]
    center, half = common.action_bounds(env)
    keys = jax.random.split(key, 8)
    split_key, model_key, init_key, beh_key, start_key, roll_key, reward_key, hold_key = keys

    obs, next_obs = _flat(ds.obs), _flat(ds.next_obs)
    action = (_flat(ds.action) - center) / half  # [-1, 1] units
    target = jnp.concatenate([next_obs - obs, _flat(ds.reward)[:, None]], -1)
    train_rows, holdout_rows = _split_trajectories(ds, split_key, config.holdout_fraction)
    w = train_rows.astype(jnp.float32)[:, None]
    inputs = jnp.concatenate([obs, action], -1)
    in_mean = jnp.sum(inputs * w, 0) / jnp.sum(w)
    in_std = jnp.sqrt(jnp.sum(jnp.square(inputs - in_mean) * w, 0) / jnp.sum(w))

    # 1. dynamics ensemble; held-out rows drawn once from the held-out trajectories.
    ensemble = Ensemble(
        obs_dim,
        act_dim,
        config.model_members,
        config.model_elites,
        config.model_hidden,
        reward_mode="sample" if config.model_reward == "sample" else "elite_mean",
    )
    hold_cdf = jnp.cumsum(holdout_rows.astype(jnp.int32))
    hold_idx = jnp.searchsorted(
        hold_cdf, jax.random.randint(hold_key, (2048,), 0, hold_cdf[-1]), "right"
    )
    model = ensemble.init(init_key, in_mean, in_std)
    model, model_info = ensemble.train(
        model,
        (obs, action, target),
        (obs[hold_idx], action[hold_idx], target[hold_idx]),
        model_key,
        steps=config.model_steps,
        batch_size=config.model_batch_size,
        lr=hparams.model_lr,
        valid=train_rows,
    )

    # 2. behaviour policy on normalised observations.
    net = GaussianMixture(act_dim, config.behavior_components, config.behavior_hidden)
    o_mean, o_std = in_mean[:obs_dim], jnp.maximum(in_std[:obs_dim], 1e-6)
    beh_params, beh_nll = train_behavior(
        net,
        (obs - o_mean) / o_std,
        action,
        _flat(ds.valid),
        beh_key,
        steps=config.behavior_steps,
        batch_size=config.batch_size,
        lr=hparams.behavior_lr,
    )

    def policy(o, k):
        a = mixture_sample(*net.apply(beh_params, (o - o_mean) / o_std), k, config.behavior_noise)
        return jnp.clip(a, -1.0, 1.0)

    # The model's predictions are clipped to the data's range of states and rewards.
    valid_rows = _flat(ds.valid)[:, None]
    obs_low = jnp.min(jnp.where(valid_rows, obs, jnp.inf), 0)
    obs_high = jnp.max(jnp.where(valid_rows, obs, -jnp.inf), 0)
    rew = _flat(ds.reward)
    rew_low = jnp.min(jnp.where(valid_rows[:, 0], rew, jnp.inf))
    rew_high = jnp.max(jnp.where(valid_rows[:, 0], rew, -jnp.inf))

    reward_net = _RewardNet(config.model_hidden)
    reward_params, reward_mse = train_reward(
        reward_net,
        (next_obs - o_mean) / o_std,
        rew,
        train_rows,
        reward_key,
        steps=config.model_steps,
        batch_size=config.model_batch_size,
        lr=hparams.model_lr,
    )

    def dynamics(o, a, k):
        next_o, r = ensemble.step(model, o, a, k)
        next_o = jnp.clip(next_o, obs_low, obs_high)
        if config.model_reward == "next_state":
            r = reward_net.apply(reward_params, (next_o - o_mean) / o_std)
        return next_o, jnp.clip(r, rew_low, rew_high)

    # 3. rollouts from the dataset's initial states.
    horizon = config.rollout_horizon or env.max_episode_steps or ds.horizon
    pick = jax.random.randint(start_key, (config.num_rollouts,), 0, ds.num_trajectories)
    traj = rollout(dynamics, policy, ds.obs[0][pick], horizon, roll_key)
    traj = traj.replace(action=center + half * traj.action)

    # 4. filter: return above the dataset's best; the first num_keep that pass.
    synthetic = to_dataset(traj)
    data_max = jnp.max(jnp.where(ds.length > 0, ds.returns, -jnp.inf))
    chosen, keep = filter_rollouts(synthetic.returns, data_max, config.num_keep)
    kept = jax.tree.map(lambda x: x[:, chosen] if x.ndim >= 2 else x[chosen], synthetic)
    if config.with_dataset:
        kept, keep = _join(kept, keep, ds)
    return common.conditioned_data(
        kept,
        keep,
        rollouts_passed=jnp.sum(synthetic.returns > data_max),
        rollout_return_max=jnp.max(synthetic.returns),
        dataset_return_max=data_max,
        model_holdout_mse=jnp.mean(model_info["holdout_mse"][model.elites]),
        model_nll=model_info["nll"][-1],
        behavior_nll=beh_nll[-1],
        reward_mse=reward_mse[-1],
    )


def make_train(config: Config, env: Env, progress: loops.Progress | None = None):
    """``train(key, hparams) -> (PolicyState, metrics)``: the whole MBRCSL pipeline."""
    validate(config)
    common.action_bounds(env)
    source = common.dataset_source(env, config.dataset, config.dataset_seed)

    def prepare(key, hparams):
        return synthesize(config, env, source(), key, hparams)

    sample = None
    if config.with_dataset:
        sample = lambda data, key: sample_mixed(data, key, config.batch_size, config.num_keep)
    return rcsl.conditioned_train(
        config, env, lambda hp: make_agent(config, env, hp), prepare, progress, sample
    )


def sample_mixed(
    data: common.ConditionedData, key: jax.Array, batch_size: int, num_rollouts: int
) -> Transition:
    """Half the batch from the kept rollouts (the first ``num_rollouts`` trajectories of
    ``data``), half from the offline trajectories after them; leaves ``[batch_size, ...]``."""
    first = jnp.arange(data.keep.shape[0]) < num_rollouts
    k1, k2 = jax.random.split(key)
    a = common.sample_conditioned(data.replace(keep=data.keep & first), k1, batch_size // 2)
    rest = batch_size - batch_size // 2
    b = common.sample_conditioned(data.replace(keep=data.keep & ~first), k2, rest)
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)
