"""Probabilistic dynamics ensemble (PETS / MBPO / MOPO style).

Each member is a Gaussian MLP ``(obs, action) -> N(mean, diag(exp(logvar)))`` over
``[next_obs - obs, reward]``. Members are a vmapped leading axis ``[M]`` of every param
leaf, so the ensemble trains and predicts in one batched call. Log-variances are kept
between learned bounds (``max_logvar``, ``min_logvar``) by soft clamps, trained with the
Gaussian NLL plus ``0.01 (sum max_logvar - sum min_logvar)`` and L2 weight decay. After
training, the ``num_elites`` members with the lowest held-out MSE are the elites;
sampling picks one elite per transition.

Shapes: ``obs [B, obs_dim]``, ``action [B, act_dim]``; predictions ``[M, B, obs_dim + 1]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl.core import adam
from jaxrl.data.sampling import weighted_indices
from jaxrl.nets import MLP


class DynamicsModel(struct.PyTreeNode):
    """Trained ensemble state (a pytree).

    Attributes:
      params: member params, every leaf with a leading ``[M]`` axis.
      max_logvar, min_logvar: ``[M, out_dim]`` learned log-variance bounds.
      in_mean, in_std: ``[obs_dim + act_dim]`` input normalisation (from the data).
      elites: ``[num_elites]`` int32 indices of the members used for sampling.
    """

    params: Any
    max_logvar: jax.Array
    min_logvar: jax.Array
    in_mean: jax.Array
    in_std: jax.Array
    elites: jax.Array


class _Member(nn.Module):
    hidden: tuple[int, ...]
    out_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden, "silu")(x)
        out = nn.Dense(2 * self.out_dim)(h)
        return out[..., : self.out_dim], out[..., self.out_dim :]


def soft_clamp_logvar(logvar: jax.Array, max_logvar: jax.Array, min_logvar: jax.Array):
    """``min + softplus(max - softplus(max - x) - min)``: a smooth clamp into [min, max]."""
    logvar = max_logvar - jax.nn.softplus(max_logvar - logvar)
    return min_logvar + jax.nn.softplus(logvar - min_logvar)


def gaussian_nll(mean: jax.Array, logvar: jax.Array, target: jax.Array) -> jax.Array:
    """Per-member Gaussian NLL without the constant: ``[M, B, D] -> [M]`` (mean over B, D)."""
    return jnp.mean(jnp.square(mean - target) * jnp.exp(-logvar) + logvar, axis=(-2, -1))


def select_elites(holdout_mse: jax.Array, num_elites: int) -> jax.Array:
    """Indices of the ``num_elites`` members with the lowest held-out MSE, best first."""
    return jnp.argsort(holdout_mse)[:num_elites].astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """Static description of the ensemble; its methods are pure functions of a model.

    Defaults are the MBRCSL / MOPO ones (7 members, 5 elites, 4 x 200 hidden layers).
    """

    obs_dim: int
    act_dim: int
    num_members: int = 7
    num_elites: int = 5
    hidden: tuple[int, ...] = (200, 200, 200, 200)
    weight_decay: float = 2.5e-5
    #: "sample": reward sampled with the next state from one elite (MBPO / MOPO);
    #: "elite_mean": the elites' mean predicted reward (no reward noise).
    reward_mode: str = "sample"

    def __post_init__(self):
        if self.reward_mode not in ("sample", "elite_mean"):
            raise ValueError(
                f"reward_mode must be 'sample' or 'elite_mean', got {self.reward_mode!r}"
            )
        if not 0 < self.num_elites <= self.num_members:
            raise ValueError(
                f"num_elites must be in [1, num_members={self.num_members}], got {self.num_elites}"
            )

    @property
    def out_dim(self) -> int:
        return self.obs_dim + 1

    @property
    def _net(self) -> _Member:
        return _Member(self.hidden, self.out_dim)

    def init(self, key: jax.Array, in_mean: jax.Array, in_std: jax.Array) -> DynamicsModel:
        """Fresh members; ``in_mean, in_std [obs_dim + act_dim]`` normalise the inputs."""
        x = jnp.zeros((1, self.obs_dim + self.act_dim), jnp.float32)
        params = jax.vmap(self._net.init, in_axes=(0, None))(
            jax.random.split(key, self.num_members), x
        )
        shape = (self.num_members, self.out_dim)
        return DynamicsModel(
            params=params,
            max_logvar=jnp.full(shape, 0.5, jnp.float32),
            min_logvar=jnp.full(shape, -10.0, jnp.float32),
            in_mean=jnp.asarray(in_mean, jnp.float32),
            in_std=jnp.maximum(jnp.asarray(in_std, jnp.float32), 1e-6),
            elites=jnp.arange(self.num_elites, dtype=jnp.int32),
        )

    def predict(
        self, model: DynamicsModel, obs: jax.Array, action: jax.Array, same_input: bool = True
    ) -> tuple[jax.Array, jax.Array]:
        """Every member's ``(mean, logvar)``, each ``[M, B, obs_dim + 1]``.

        ``same_input``: ``obs [B, ...]`` go to every member; otherwise ``obs [M, B, ...]``
        give each member its own batch.
        """
        x = (jnp.concatenate([obs, action], -1) - model.in_mean) / model.in_std
        apply = jax.vmap(self._net.apply, in_axes=(0, None if same_input else 0))
        mean, logvar = apply(model.params, x)
        logvar = soft_clamp_logvar(logvar, model.max_logvar[:, None], model.min_logvar[:, None])
        return mean, logvar

    def loss(
        self, model: DynamicsModel, obs: jax.Array, action: jax.Array, target: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Training loss on per-member batches ``[M, B, ...]``; returns ``(loss, nll [M])``."""
        mean, logvar = self.predict(model, obs, action, same_input=False)
        nll = gaussian_nll(mean, logvar, target)
        bound = 0.01 * (jnp.sum(model.max_logvar) - jnp.sum(model.min_logvar))
        decay = sum(
            jnp.sum(jnp.square(w))
            for path, w in jax.tree_util.tree_leaves_with_path(model.params)
            if "kernel" in jax.tree_util.keystr(path)
        )
        return jnp.sum(nll) + bound + self.weight_decay * decay, nll

    def holdout_mse(
        self, model: DynamicsModel, obs: jax.Array, action: jax.Array, target: jax.Array
    ) -> jax.Array:
        """``[M]`` mean squared error of each member's mean on held-out ``[B, ...]`` data."""
        mean, _ = self.predict(model, obs, action)
        return jnp.mean(jnp.square(mean - target[None]), axis=(-2, -1))

    def train(
        self,
        model: DynamicsModel,
        inputs: tuple[jax.Array, jax.Array, jax.Array],
        holdout: tuple[jax.Array, jax.Array, jax.Array],
        key: jax.Array,
        *,
        steps: int,
        batch_size: int,
        lr: jax.Array | float = 1e-3,
        valid: jax.Array | None = None,
    ) -> tuple[DynamicsModel, dict[str, jax.Array]]:
        """Adam on the NLL for ``steps`` steps, then elite selection on ``holdout``.

        ``inputs = (obs [N, obs_dim], action [N, act_dim], target [N, obs_dim + 1])`` with
        ``target = [next_obs - obs, reward]``; ``valid [N]`` (bool, optional) marks the
        rows to learn from. Every member draws its own minibatch (with replacement) each
        step. Returns the model with its elites set and metrics: ``nll [steps]`` (mean
        over members), ``holdout_mse [M]``.
        """
        obs, action, target = inputs
        n = obs.shape[0]
        tx = adam(lr)
        trainable = (model.params, model.max_logvar, model.min_logvar)
        opt = tx.init(trainable)
        rows = jnp.ones(n, jnp.int32) if valid is None else valid

        def step(carry, k):
            trainable, opt = carry
            idx = weighted_indices(k, rows, (self.num_members, batch_size))

            def loss_fn(tr):
                m = model.replace(params=tr[0], max_logvar=tr[1], min_logvar=tr[2])
                return self.loss(m, obs[idx], action[idx], target[idx])

            (_, nll), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
            updates, opt = tx.update(grads, opt)
            return (optax.apply_updates(trainable, updates), opt), jnp.mean(nll)

        (trainable, _), nll = jax.lax.scan(step, (trainable, opt), jax.random.split(key, steps))
        model = model.replace(params=trainable[0], max_logvar=trainable[1], min_logvar=trainable[2])
        mse = self.holdout_mse(model, *holdout)
        model = model.replace(elites=select_elites(mse, self.num_elites))
        return model, {"nll": nll, "holdout_mse": mse}

    def step(
        self, model: DynamicsModel, obs: jax.Array, action: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Samples ``(next_obs [B, obs_dim], reward [B])`` from a random elite per row."""
        member_key, noise_key = jax.random.split(key)
        elites = model.replace(
            params=jax.tree.map(lambda p: p[model.elites], model.params),
            max_logvar=model.max_logvar[model.elites],
            min_logvar=model.min_logvar[model.elites],
        )
        mean, logvar = self.predict(elites, obs, action)  # [num_elites, B, D]
        elite_mean = mean
        b = obs.shape[0]
        pick = jax.random.randint(member_key, (b,), 0, self.num_elites)
        mean = mean[pick, jnp.arange(b)]
        std = jnp.exp(0.5 * logvar[pick, jnp.arange(b)])
        out = mean + std * jax.random.normal(noise_key, mean.shape)
        if self.reward_mode == "elite_mean":
            return obs + out[:, : self.obs_dim], jnp.mean(elite_mean[:, :, -1], axis=0)
        return obs + out[:, : self.obs_dim], out[:, self.obs_dim]
