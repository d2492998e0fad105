"""MBRCSL: model-based return-conditioned supervised learning (Zhou et al., 2023).

RCSL cannot stitch pieces of different trajectories; MBRCSL lets a learned model do it:

1. fit a probabilistic dynamics ensemble (``jaxrl.models.Ensemble``: Gaussian MLPs on
   ``[next_obs - obs, reward]``, NLL with learned variance bounds, holdout elites);
2. fit a multi-modal behaviour policy to the dataset's actions;
3. roll the behaviour policy through the model from the dataset's initial states
   (``jaxrl.models.rollout``, all rollouts in one vmapped call, horizon = the env's);
4. keep the rollouts whose (model-predicted) return exceeds the best return in the
   dataset, the first ``num_keep`` of them in sampling order (``collect_rollouts``:
   batches of ``num_rollouts`` until ``num_keep`` pass, at most ``max_rollout_batches``);
5. train an RCSL policy on the kept rollouts (and the offline data, see below) and
   evaluate it in the real env conditioned on the highest kept return.

Steps 1-4 run in ``prepare`` (inside the jitted ``init``); the scan over periods then
trains the RCSL policy, so ``total_steps`` and ``env_steps`` count RCSL gradient steps.
The metrics carry ``rollouts_passed`` (how many of ``num_rollouts`` passed the filter),
``rollout_return_max``, ``dataset_return_max`` and ``model_holdout_mse``.

Behaviour policy (``behavior``): ``"mixture"`` (default), a 5-component Gaussian mixture
(``jaxrl.nets.mixture``), or ``"diffusion"``, the paper's 10-step DDPM
(``jaxrl.nets.diffusion``). Either represents the multi-modal choice the paper needs (at
the Point Maze start the data goes either down or left; a unimodal Gaussian would average
them into a wall). The mixture is the default because it has an exact likelihood and needs
one network pass per action, where the diffusion sampler needs ``diffusion_steps`` passes
for each of the ``num_rollouts x horizon`` rollout actions.

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
- RCSL policy MLP 2 x 256, Adam at lr 1e-3 [2 x 1024, lr 5e-5, weight decay 0.1: the
  option ``PAPER_POLICY``; 2 x 1024 at lr 1e-3 collapsed to the BC level here];
  ensemble members 3 x 128 [4 x 200; the full-size experiment uses 4 x 200]; by default one
  batch of ``num_rollouts`` rollouts (``max_rollout_batches=1``), of which the first
  ``num_keep`` that pass are kept [sample until 100 pass]; when none passes, the
  ``num_keep`` best are kept instead (``rollouts_passed`` then reads 0) so shapes stay
  static.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.offline import common, rcsl
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import POSITIVE, hparam
from jaxrl.data.datasets import Dataset
from jaxrl.data.sampling import weighted_indices
from jaxrl.envs import Env
from jaxrl.models import Ensemble, rollout, to_dataset
from jaxrl.nets import MLP
from jaxrl.nets.diffusion import NoiseNet, cosine_schedule, diffusion_loss, diffusion_sample
from jaxrl.nets.mixture import GaussianMixture, mixture_log_prob, mixture_sample


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
    behavior: str = "mixture"  # "mixture" or "diffusion" (the paper's); see behavior_policy
    behavior_components: int = 5  # mixture
    diffusion_steps: int = 10  # diffusion
    behavior_hidden: tuple[int, ...] = (256, 256)
    behavior_steps: int = 5_000
    behavior_noise: float = 1.0  # scale of the within-component noise when sampling
    # rollouts and filter
    num_rollouts: int = 4096
    rollout_horizon: int = 0  # 0: the env's episode length
    num_keep: int = 200
    # More batches of num_rollouts until num_keep pass (the paper samples until 100 pass).
    max_rollout_batches: int = 1
    # Also train the RCSL policy on the offline trajectories, half of each batch from each.
    with_dataset: bool = True
    weight_decay: float = 0.0  # the RCSL policy's (AdamW when > 0)


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = hparam(1e-3, POSITIVE)  # RCSL policy
    model_lr: float = hparam(1e-3, POSITIVE)
    behavior_lr: float = hparam(1e-3, POSITIVE)


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """The output RCSL policy: input ``[obs, rtg / return_scale]``."""
    obs_dim = env.observation_spec.shape[0]
    return rcsl.policy_agent(
        env,
        obs_dim + 1,
        config.hidden,
        config.activation,
        hparams.lr,
        schedule.num_iters,
        config.weight_decay,
    )


#: The paper's RCSL output policy (Zhou et al., 2023; its official repository's settings
#: as ../shared/PAPERS.md records them): trained on the kept rollouts only, a 1024 x 1024
#: MLP, lr 5e-5 with weight decay 0.1 (AdamW). Use as ``SPEC.make_config(**c)`` and
#: ``SPEC.default_hparams(**h)`` with ``c, h = PAPER_POLICY["config"], PAPER_POLICY["hparams"]``.
PAPER_POLICY: dict[str, dict[str, Any]] = {
    "config": {"with_dataset": False, "hidden": (1024, 1024), "weight_decay": 0.1},
    "hparams": {"lr": 5e-5},
}


POSITIVE = (
    *common.POSITIVE,
    "model_members",
    "model_elites",
    "model_steps",
    "model_batch_size",
    "behavior_components",
    "behavior_steps",
    "diffusion_steps",
    "num_rollouts",
    "num_keep",
    "max_rollout_batches",
)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    common.check(config, env)
    if config.model_elites > config.model_members:
        raise ValueError(
            f"model_elites={config.model_elites} must be <= model_members={config.model_members}"
        )
    if config.num_keep > config.num_rollouts:
        raise ValueError(
            f"num_keep={config.num_keep} must be <= num_rollouts={config.num_rollouts}"
        )
    if not 0.0 < config.holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {config.holdout_fraction}")
    if config.model_reward not in ("next_state", "elite_mean", "sample"):
        raise ValueError(
            "mbrcsl: model_reward must be one of next_state, elite_mean, sample; "
            f"got {config.model_reward!r}"
        )
    if config.behavior not in ("mixture", "diffusion"):
        raise ValueError(f"behavior must be 'mixture' or 'diffusion', got {config.behavior!r}")
    if config.rollout_horizon < 0:
        raise ValueError(f"rollout_horizon must be >= 0, got {config.rollout_horizon}")
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {config.weight_decay}")
    for name in ("model_hidden", "behavior_hidden"):
        widths = getattr(config, name)
        if not widths or min(widths) <= 0:
            raise ValueError(f"{name} must be positive widths, got {widths}")


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


def fit_rows(
    loss_fn: Callable[[Any, tuple[jax.Array, ...], jax.Array], jax.Array],
    params: Any,
    rows: tuple[jax.Array, ...],
    valid: jax.Array,
    key: jax.Array,
    *,
    steps: int,
    batch_size: int,
    lr: jax.Array | float,
) -> tuple[Any, jax.Array]:
    """Adam on ``loss_fn(params, batch, key)`` over minibatches of valid rows.

    ``rows``: arrays ``[N, ...]``; ``batch`` holds ``batch_size`` of their rows, drawn
    uniformly among those with ``valid [N]`` True. Returns ``(params, loss [steps])``.
    """
    tx = adam(lr)

    def step(carry, k):
        params, opt = carry
        idx = weighted_indices(k, valid, (batch_size,))
        batch = tuple(x[idx] for x in rows)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, jax.random.fold_in(k, 1))
        updates, opt = tx.update(grads, opt)
        return (optax.apply_updates(params, updates), opt), loss

    (params, _), losses = jax.lax.scan(
        step, (params, tx.init(params)), jax.random.split(key, steps)
    )
    return params, losses


def behavior_policy(
    config: Config, obs: jax.Array, action: jax.Array, valid: jax.Array, key: jax.Array, lr
) -> tuple[Callable[[jax.Array, jax.Array], jax.Array], jax.Array]:
    """Fits the behaviour policy to rows ``obs [N, o]`` (normalised), ``action [N, a]``
    (in ``[-1, 1]``); returns ``(policy(obs [B, o], key) -> action [B, a], loss [steps])``.

    ``config.behavior``: ``"mixture"`` (Gaussian mixture, maximum likelihood) or
    ``"diffusion"`` (DDPM with ``diffusion_steps`` steps, the paper's choice).
    """
    init_key, key = jax.random.split(key)
    act_dim = action.shape[-1]
    fit = dict(steps=config.behavior_steps, batch_size=config.batch_size, lr=lr)
    if config.behavior == "diffusion":
        net = NoiseNet(act_dim, config.behavior_hidden)
        schedule = cosine_schedule(config.diffusion_steps)
        params = net.init(init_key, action[:1], jnp.zeros(1, jnp.int32), obs[:1])

        def diffusion_nll(p, batch, k):
            return diffusion_loss(net, p, schedule, batch[1], batch[0], k)

        params, losses = fit_rows(diffusion_nll, params, (obs, action), valid, key, **fit)

        def policy(o, k):
            eps_fn = lambda x, t, c: net.apply(params, x, t, c)
            return diffusion_sample(eps_fn, schedule, o, k, act_dim)

        return policy, losses

    net = GaussianMixture(act_dim, config.behavior_components, config.behavior_hidden)
    params = net.init(init_key, obs[:1])

    def mixture_nll(p, batch, k):
        return -jnp.mean(mixture_log_prob(*net.apply(p, batch[0]), batch[1]))

    params, losses = fit_rows(mixture_nll, params, (obs, action), valid, key, **fit)

    def policy(o, k):
        a = mixture_sample(*net.apply(params, o), k, config.behavior_noise)
        return jnp.clip(a, -1.0, 1.0)

    return policy, losses


class _RewardNet(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(1)(MLP(self.hidden, "silu")(x))[..., 0]


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


def collect_rollouts(
    sample_batch: Callable[[jax.Array], Dataset],
    threshold: jax.Array,
    num_keep: int,
    max_batches: int = 1,
) -> tuple[Dataset, jax.Array, dict[str, jax.Array]]:
    """MBRCSL's sampling loop: ``sample_batch(i) -> Dataset [T, B]`` for ``i = 0, 1, ...``
    until ``num_keep`` rollouts have a return above ``threshold`` or ``max_batches`` batches
    were drawn (a ``lax.while_loop``; shapes stay static).

    Batch 0 fills the ``num_keep`` slots as ``filter_rollouts`` does (its best rollouts when
    none passes); each later batch appends its passing rollouts, in sampling order, after
    the passing ones kept so far. Returns ``(kept [T, num_keep], keep [num_keep] bool,
    stats)`` with ``stats``: ``rollouts_passed`` (all that passed), ``rollouts_sampled``
    and ``rollout_return_max``.
    """

    def take(ds: Dataset, idx: jax.Array) -> Dataset:
        return jax.tree.map(lambda x: x[:, idx] if x.ndim >= 2 else x[idx], ds)

    first = sample_batch(jnp.int32(0))
    b = first.num_trajectories
    chosen, keep = filter_rollouts(first.returns, threshold, num_keep)
    passed = jnp.sum(first.returns > threshold)
    init = (
        take(first, chosen),
        jnp.minimum(passed, num_keep),
        passed,
        jnp.max(first.returns),
        jnp.int32(1),
    )
    slot = jnp.arange(num_keep)

    def cond(carry):
        _, count, _, _, i = carry
        return (count < num_keep) & (i < max_batches)

    def body(carry):
        kept, count, total, best, i = carry
        batch = sample_batch(i)
        ok = batch.returns > threshold
        order = jnp.argsort(jnp.where(ok, 0, b) + jnp.arange(b))  # passing first
        n = jnp.sum(ok)
        fill = (slot >= count) & (slot < count + n)
        new = take(batch, order[jnp.clip(slot - count, 0, b - 1)])

        def put(old, x):
            mask = fill if old.ndim == 1 else fill.reshape(1, -1, *[1] * (old.ndim - 2))
            return jnp.where(mask, x, old)

        kept = jax.tree.map(put, kept, new)
        best = jnp.maximum(best, jnp.max(batch.returns))
        return kept, jnp.minimum(count + n, num_keep), total + n, best, i + 1

    if max_batches > 1:
        kept, count, total, best, sampled = jax.lax.while_loop(cond, body, init)
        keep = jnp.where(total > 0, slot < count, True)
    else:
        kept, count, total, best, sampled = init
    stats = {
        "rollouts_passed": total,
        "rollouts_sampled": sampled * b,
        "rollout_return_max": best,
    }
    return kept, keep, stats


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
    hold_idx = weighted_indices(hold_key, holdout_rows, (2048,))
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
    o_mean, o_std = in_mean[:obs_dim], jnp.maximum(in_std[:obs_dim], 1e-6)
    beh_policy, beh_loss = behavior_policy(
        config, (obs - o_mean) / o_std, action, _flat(ds.valid), beh_key, hparams.behavior_lr
    )

    def policy(o, k):
        return beh_policy((o - o_mean) / o_std, k)

    # The model's predictions are clipped to the data's range of states and rewards.
    valid_rows = _flat(ds.valid)[:, None]
    obs_low = jnp.min(jnp.where(valid_rows, obs, jnp.inf), 0)
    obs_high = jnp.max(jnp.where(valid_rows, obs, -jnp.inf), 0)
    rew = _flat(ds.reward)
    rew_low = jnp.min(jnp.where(valid_rows[:, 0], rew, jnp.inf))
    rew_high = jnp.max(jnp.where(valid_rows[:, 0], rew, -jnp.inf))

    reward_net = _RewardNet(config.model_hidden)
    reward_init, reward_key = jax.random.split(reward_key)
    next_obs_n = (next_obs - o_mean) / o_std

    def reward_mse_fn(p, batch, k):
        return jnp.mean(jnp.square(reward_net.apply(p, batch[0]) - batch[1]))

    reward_params, reward_mse = fit_rows(
        reward_mse_fn,
        reward_net.init(reward_init, next_obs_n[:1]),
        (next_obs_n, rew),
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

    # 3-4. rollouts from the dataset's initial states, kept when their return beats the
    # dataset's best; batches are drawn until num_keep pass (or max_rollout_batches).
    horizon = config.rollout_horizon or env.max_episode_steps or ds.horizon

    def sample_batch(i):
        # Batch 0 uses the keys themselves, later batches keys folded with their index.
        pick_key, k = jax.lax.cond(
            i == 0,
            lambda: (start_key, roll_key),
            lambda: (jax.random.fold_in(start_key, i), jax.random.fold_in(roll_key, i)),
        )
        pick = jax.random.randint(pick_key, (config.num_rollouts,), 0, ds.num_trajectories)
        traj = rollout(dynamics, policy, ds.obs[0][pick], horizon, k)
        return to_dataset(traj.replace(action=center + half * traj.action))

    data_max = jnp.max(jnp.where(ds.length > 0, ds.returns, -jnp.inf))
    kept, keep, roll_stats = collect_rollouts(
        sample_batch, data_max, config.num_keep, config.max_rollout_batches
    )
    if config.with_dataset:
        kept, keep = _join(kept, keep, ds)
    return common.conditioned_data(
        kept,
        keep,
        **roll_stats,
        dataset_return_max=data_max,
        model_holdout_mse=jnp.mean(model_info["holdout_mse"][model.elites]),
        model_nll=model_info["nll"][-1],
        behavior_loss=beh_loss[-1],
        reward_mse=reward_mse[-1],
    )


def data(config: Config, env: Env) -> loops.Dataset:
    """The whole MBRCSL pipeline in ``prepare`` (model, behaviour policy, rollouts, filter),
    then RCSL batches (half rollouts, half offline data when ``with_dataset``)."""
    source = common.dataset_source(env, config.dataset, config.dataset_seed)

    def prepare(key, hparams):
        return synthesize(config, env, source(), key, hparams)

    sample = None
    if config.with_dataset:
        sample = lambda data, key: sample_mixed(data, key, config.batch_size, config.num_keep)
    return common.conditioned(config, prepare, sample)


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


SUMMARY = "MBRCSL: model rollouts stitched by return-conditioned learning (Zhou et al. 2023)"
SPEC = common.spec(
    "mbrcsl", SUMMARY, Config, HParams, make_agent, data, positive=POSITIVE, check=check
)
