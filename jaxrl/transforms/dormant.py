"""DrM's dormant-ratio machinery (Xu et al., 2023) and MENTOR's task-oriented perturbation.

* ``dormant_ratio``: the tau-dormant ratio of any flax network on a batch (DrM's
  Definition 1, after ReDo): unit i of a layer is dormant when its activation's mean
  absolute value over the batch, divided by the layer's average of those means, is
  ``<= tau``; the ratio is dormant units over all units, per layer and overall. A
  unit's activation is its layer's output after the nonlinearity: modules sow it with
  ``jaxrl.nets.mlp.sow_activated`` (``MLP`` does for every hidden layer, ``MoE`` for its
  experts), and that replaces the Dense output of the same name. A Dense layer with
  nothing sowed (an output head) is measured at its output. (DrM's code hooks each
  ``nn.Linear``'s output, but its ``ReLU(inplace=True)`` overwrites that tensor, so it
  too measures hidden units after the ReLU and heads before their tanh.)
* ``with_dormant_perturbation``: a transform that, every ``perturb_every`` updates,
  moves chosen parameter fields of the agent state toward a prior,
  ``theta <- a theta + (1 - a) phi`` with ``a = clip(1 - rate * beta, min, max)``
  driven by the dormant ratio ``beta``, and resets chosen optimiser states. With
  ``prior="fresh"`` (DrM) ``phi`` is a fresh initialisation; with ``prior="snapshots"``
  (MENTOR) ``phi ~ N(mean, std)`` elementwise over the best-return snapshots kept.
* DrM's schedules: ``awaken_std`` (awakened exploration) and ``exploitation_lambda``
  (dormant-ratio-guided exploitation, with ``jaxrl.losses.expectile_loss``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct, traverse_util

from jaxrl.core import Agent, Transition
from jaxrl.nets.mlp import ACTIVATED

Measure = Callable[[Any, Transition], jax.Array]
_PRIORS = ("fresh", "snapshots")


class Parts(NamedTuple):
    """Which parts of an agent state a transform touches, chosen by functions.

    ``get(state) -> parts`` (any pytree); ``set(state, parts) -> state`` with them replaced.
    """

    get: Callable[[Any], Any]
    set: Callable[[Any, Any], Any]


def _is_dense(module: nn.Module, method: str) -> bool:
    return isinstance(module, nn.Dense) and method == "__call__"


def layer_outputs(module: nn.Module, params: Any, *inputs: Any) -> dict[str, jax.Array]:
    """Each layer's unit activations on a batch, ``{layer path: [..., units]}``.

    Every Dense layer's output, replaced by its activated output where the parent module
    sowed one (``jaxrl.nets.mlp.sow_activated``), plus sowed layers that are not Dense.
    """
    _, state = module.apply(
        params, *inputs, capture_intermediates=_is_dense, mutable=["intermediates"]
    )
    dense, activated = {}, {}
    for path, values in traverse_util.flatten_dict(dict(state.get("intermediates", {}))).items():
        if path[-1] == "__call__":
            dense[path[:-1]] = values
        elif isinstance(path[-1], str) and path[-1].startswith(ACTIVATED):
            activated[(*path[:-1], path[-1][len(ACTIVATED) :])] = values
    out = {}
    for path, values in {**dense, **activated}.items():
        name = "/".join(str(p) for p in path) or "out"
        for i, h in enumerate(values):
            out[name if len(values) == 1 else f"{name}#{i}"] = h
    return out


def layer_dormant(h: jax.Array, tau: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(dormant units, units)`` of one layer's activations ``h [..., units]`` (float32 counts).

    ``s_i = mean |h_i|`` over every leading (batch) axis; unit i is dormant when
    ``s_i <= tau * mean_j s_j`` (so a layer whose units are all 0 is all dormant).
    """
    s = jnp.mean(jnp.abs(h.reshape(-1, h.shape[-1])).astype(jnp.float32), axis=0)
    dormant = jnp.sum((s <= tau * jnp.mean(s)).astype(jnp.float32))
    return dormant, jnp.asarray(h.shape[-1], jnp.float32)


def dormant_ratio(
    module: nn.Module, params: Any, *inputs: Any, tau: float | jax.Array = 0.025
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """tau-dormant ratio of ``module`` on a batch: ``(overall, {layer: ratio})``.

    ``inputs`` are ``module``'s call arguments with a leading batch axis (e.g. obs
    ``[N, obs_dim]``). Overall = dormant units / all units over every layer of
    ``layer_outputs`` (output heads included, as in DrM's code). Pure; jit/vmap friendly.

    Raises:
      ValueError: when the module has no Dense or sowed layer (nothing to measure).
    """
    layers = layer_outputs(module, params, *inputs)
    if not layers:
        raise ValueError(f"dormant_ratio: {type(module).__name__} has no Dense layer to measure")
    counts = {k: layer_dormant(h, tau) for k, h in layers.items()}
    dormant = sum(d for d, _ in counts.values())
    total = sum(n for _, n in counts.values())
    return dormant / total, {k: d / n for k, (d, n) in counts.items()}


def _in_layer_norm(path: tuple) -> bool:
    return any(str(getattr(k, "key", "")).startswith("LayerNorm") for k in path)


def perturb(params: Any, prior: Any, coefficient: float | jax.Array) -> Any:
    """Shrink-and-perturb: ``a * params + (1 - a) * prior`` leafwise (``a = coefficient``).

    LayerNorm parameters (leaves under a module named ``LayerNorm*``) are kept: DrM's
    code perturbs only the ``nn.Linear`` weights and biases.
    """

    def mix(path, p, q):
        if _in_layer_norm(path):
            return p
        return (coefficient * p + (1.0 - coefficient) * q).astype(p.dtype)

    return jax.tree_util.tree_map_with_path(mix, params, prior)


def perturbation_coefficient(
    beta: jax.Array,
    rate: float | jax.Array = 2.0,
    min_coef: float | jax.Array = 0.2,
    max_coef: float | jax.Array = 0.9,
) -> jax.Array:
    """DrM's ``a = clip(1 - rate * beta, min_coef, max_coef)``."""
    return jnp.clip(1.0 - rate * beta, min_coef, max_coef)


def awaken_std(
    beta: jax.Array,
    step: jax.Array,
    awaken_step: jax.Array,
    *,
    target: float | jax.Array = 0.2,
    temp: float | jax.Array = 10.0,
    scale: float | jax.Array = 1.0,
    std_init: float | jax.Array = 1.0,
    std_final: float | jax.Array = 0.1,
    duration: float | jax.Array = 100_000.0,
) -> jax.Array:
    """DrM's awakened exploration noise std.

    ``sigma(beta) = scale / (1 + exp(-temp (beta - target)))``; once awake
    (``awaken_step >= 0``: the first step after the random warm-up with ``beta <
    target``) it is ``max(sigma(beta), linear(std_init -> std_final over duration steps
    since awaken_step))``. DrM's code (``stddev_type: awake``) scales the sigmoid by 1 in
    ``agents/drm_mw.py`` (MetaWorld; the default here) and by 0.8 in ``agents/drm.py``
    (DMC), with ``linear(1.0, 0.1, D)``, ``D`` about a third of the run (500k agent steps
    on its 1.5M-step medium tasks).
    """
    sigma = scale / (1.0 + jnp.exp(-temp * (beta - target)))
    frac = jnp.clip((step - awaken_step) / duration, 0.0, 1.0)
    linear = std_init + frac * (std_final - std_init)
    return jnp.where(awaken_step >= 0, jnp.maximum(sigma, linear), sigma)


def exploitation_lambda(
    beta: jax.Array,
    target_lambda: float | jax.Array = 0.6,
    temp: float | jax.Array = 50.0,
    target: float | jax.Array = 0.2,
) -> jax.Array:
    """DrM's weight of the expectile value: ``target_lambda / (1 + exp(temp (beta - target)))``."""
    return target_lambda / (1.0 + jnp.exp(temp * (beta - target)))


class PerturbState(struct.PyTreeNode):
    """State of a perturbed agent.

    Attributes:
      inner: the wrapped agent's state.
      updates: int32, updates done.
      dormant_ratio: float32, the last measured ratio.
      coefficient: float32, the last perturbation's ``a`` (1 before any).
      num_perturbations: int32.
      snapshots: ``prior="snapshots"``: the perturbed fields, leaves ``[K, ...]``; else ``{}``.
      snapshot_scores: ``[K]`` float32 training returns of the snapshots.
      snapshot_valid: ``[K]`` bool, which slots hold a snapshot.
      window: ``[P, 2W]`` float32, the dormant ratio at every update around each of the
        first ``P`` perturbations (``window_slot``); ``[0, 0]`` when not recorded.
    """

    inner: Any
    updates: jax.Array
    dormant_ratio: jax.Array
    coefficient: jax.Array
    num_perturbations: jax.Array
    snapshots: Any
    snapshot_scores: jax.Array
    snapshot_valid: jax.Array
    window: jax.Array


def window_slot(
    n: jax.Array, perturb_every: int, half_width: int, num_windows: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(k, j, inside)``: where update ``n`` (1-based) falls in the fixed-size windows.

    Window ``k`` (0-based) covers perturbation ``k + 1``, made at the end of update
    ``(k + 1) T`` (``T = perturb_every``): slot ``j = n - (k + 1) T + W - 1`` holds updates
    ``n`` with offset ``d = n - (k + 1) T`` in ``[-W + 1, W]`` (``d <= 0``: before the
    perturbation, ``d >= 1``: after; ``W = half_width``, ``2 W <= T``). ``inside`` is false
    for updates outside every window.
    """
    k = (n + half_width - 1) // perturb_every  # 1-based perturbation
    j = n - k * perturb_every + half_width - 1
    inside = (k >= 1) & (k <= num_windows) & (j >= 0) & (j < 2 * half_width)
    return jnp.clip(k - 1, 0, max(num_windows - 1, 0)), jnp.clip(j, 0, 2 * half_width - 1), inside


def actor_measure(module: nn.Module, params: Callable[[Any], Any], tau: float = 0.025) -> Measure:
    """``(state, batch) -> beta``: dormant ratio of ``module`` (``params(state)``) on the obs."""
    return lambda state, batch: dormant_ratio(module, params(state), batch.obs, tau=tau)[0]


def _snapshot_prior(snapshots: Any, valid: jax.Array, key: jax.Array) -> Any:
    """``phi ~ N(mean, std)`` elementwise over the valid snapshots (leaves ``[K, ...]``)."""
    m = jnp.maximum(jnp.sum(valid.astype(jnp.float32)), 1.0)
    leaves, treedef = jax.tree.flatten(snapshots)
    keys = jax.random.split(key, len(leaves))
    out = []
    for x, k in zip(leaves, keys, strict=True):
        w = valid.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        mean = jnp.sum(w * x, axis=0) / m
        std = jnp.sqrt(jnp.sum(w * jnp.square(x - mean), axis=0) / m)
        out.append(mean + std * jax.random.normal(k, mean.shape, mean.dtype))
    return jax.tree.unflatten(treedef, out)


def with_dormant_perturbation(
    agent: Agent,
    *,
    measure: Measure,
    perturbed: Parts,
    reset: Parts | None = None,
    perturb_every: int,
    rate: float | jax.Array = 2.0,
    min_coef: float | jax.Array = 0.2,
    max_coef: float | jax.Array = 0.9,
    prior: str = "fresh",
    num_snapshots: int = 10,
    snapshot_every: int = 1000,
    window: int = 0,
    num_windows: int = 0,
) -> Agent:
    """DrM's periodic shrink-and-perturb as a transform over any agent.

    Args:
      agent: the agent to wrap.
      measure: ``(inner_state, batch) -> beta``, the dormant ratio driving the
        coefficient, measured after every update (e.g. ``actor_measure``).
      perturbed: the state's parameters moved toward the prior.
      reset: the state's parts (optimiser states) reset to a fresh init's.
      perturb_every: perturb after every ``perturb_every``-th update.
      rate, min_coef, max_coef: ``a = clip(1 - rate beta, min_coef, max_coef)``.
      prior: ``"fresh"`` (DrM: a fresh ``agent.init``) or ``"snapshots"`` (MENTOR's
        task-oriented perturbation: a Gaussian fitted elementwise to the
        ``num_snapshots`` best-return snapshots of the ``perturbed`` parts; a fresh init
        until one is kept). Snapshots are considered every ``snapshot_every``
        updates and scored by the loop context's training return
        (``batch.context.train_return``, taken once ``train_return_valid``).
      window, num_windows: record the measured ratio at every update ``W = window``
        updates either side of each of the first ``num_windows`` perturbations into the
        state's fixed-size ``window [num_windows, 2 W]`` (``window_slot``; 0: off). A
        small metric of a compiled run, read from the final state.

    Returns:
      An ``Agent`` whose state is a ``PerturbState`` (a recurrent agent's carry passes
      through unchanged); its metrics add
      ``dormant_ratio`` (unless the inner agent reports it), ``perturb_coef`` and
      ``perturbations``.

    Raises:
      ValueError: for an unknown prior, a non-positive period or overlapping windows.
    """
    if prior not in _PRIORS:
        raise ValueError(f"prior must be one of {', '.join(_PRIORS)}, got {prior!r}")
    for name, v in (
        ("perturb_every", perturb_every),
        ("num_snapshots", num_snapshots),
        ("snapshot_every", snapshot_every),
    ):
        if v <= 0:
            raise ValueError(f"with_dormant_perturbation: {name} must be positive, got {v}")
    if window < 0 or num_windows < 0 or 2 * window > perturb_every:
        raise ValueError(
            "with_dormant_perturbation: need 0 <= 2 * window <= perturb_every and "
            f"num_windows >= 0, got window={window}, num_windows={num_windows}, "
            f"perturb_every={perturb_every}"
        )
    recording = window > 0 and num_windows > 0
    window_shape = (num_windows, 2 * window) if recording else (0, 0)
    use_snapshots = prior == "snapshots"
    fields = perturbed.get

    def init(key: jax.Array) -> PerturbState:
        inner = agent.init(key)
        k = num_snapshots if use_snapshots else 0
        snaps = (
            jax.tree.map(lambda x: jnp.zeros((k, *x.shape), x.dtype), fields(inner))
            if use_snapshots
            else {}
        )
        return PerturbState(
            inner=inner,
            updates=jnp.zeros((), jnp.int32),
            dormant_ratio=jnp.zeros((), jnp.float32),
            coefficient=jnp.ones((), jnp.float32),
            num_perturbations=jnp.zeros((), jnp.int32),
            snapshots=snaps,
            snapshot_scores=jnp.zeros((k,), jnp.float32),
            snapshot_valid=jnp.zeros((k,), jnp.bool_),
            window=jnp.zeros(window_shape, jnp.float32),
        )

    def act(state: PerturbState, obs: jax.Array, key: jax.Array, explore=True, **kwargs):
        return agent.act(state.inner, obs, key, explore, **kwargs)

    def keep_snapshot(state: PerturbState, inner: Any, batch: Transition, n: jax.Array):
        if batch.context is None:
            raise ValueError(
                "prior='snapshots' scores snapshots by the training return: the batch needs "
                "a loop context (batch.context), which jaxrl.loops sets"
            )
        score = jnp.asarray(batch.context.train_return, jnp.float32)
        worst = jnp.where(state.snapshot_valid, state.snapshot_scores, -jnp.inf)
        slot = jnp.argmin(worst)
        take = (n % snapshot_every == 0) & batch.context.train_return_valid & (score > worst[slot])

        # Always write one slot, with its old value when not taking: an in-place update of
        # one snapshot. (A lax.cond would, under a vmap over seeds, become a select that
        # copies the whole ``[K, ...]`` buffer on every update.)
        snaps = jax.tree.map(
            lambda s, x: s.at[slot].set(jnp.where(take, x, s[slot])),
            state.snapshots,
            fields(inner),
        )
        return (
            snaps,
            state.snapshot_scores.at[slot].set(jnp.where(take, score, state.snapshot_scores[slot])),
            state.snapshot_valid.at[slot].set(take | state.snapshot_valid[slot]),
        )

    def toward_prior(inner: Any, snaps: Any, valid: jax.Array, key: jax.Array, coef: jax.Array):
        fresh_key, noise_key = jax.random.split(key)
        fresh = agent.init(fresh_key)
        phi = fields(fresh)
        if use_snapshots:
            from_snaps = _snapshot_prior(snaps, valid, noise_key)
            phi = jax.tree.map(lambda a, b: jnp.where(jnp.any(valid), a, b), from_snaps, phi)
        inner = perturbed.set(inner, perturb(fields(inner), phi, coef))
        return inner if reset is None else reset.set(inner, reset.get(fresh))

    def update(state: PerturbState, batch: Transition, key: jax.Array):
        inner_key, perturb_key = jax.random.split(key)
        inner, metrics = agent.update(state.inner, batch, inner_key)
        beta = jnp.asarray(measure(inner, batch), jnp.float32)
        n = state.updates + 1
        snaps, scores, valid = state.snapshots, state.snapshot_scores, state.snapshot_valid
        if use_snapshots:
            snaps, scores, valid = keep_snapshot(state, inner, batch, n)
        coef = perturbation_coefficient(beta, rate, min_coef, max_coef).astype(jnp.float32)
        recorded = state.window
        if recording:  # one in-place slot write per update (old value outside the windows)
            k, j, inside = window_slot(n, perturb_every, window, num_windows)
            recorded = recorded.at[k, j].set(jnp.where(inside, beta, recorded[k, j]))
        do = n % perturb_every == 0
        inner = jax.lax.cond(
            do, lambda: toward_prior(inner, snaps, valid, perturb_key, coef), lambda: inner
        )
        new_state = PerturbState(
            inner=inner,
            updates=n,
            dormant_ratio=beta,
            coefficient=jnp.where(do, coef, state.coefficient),
            num_perturbations=state.num_perturbations + do.astype(jnp.int32),
            snapshots=snaps,
            snapshot_scores=scores,
            snapshot_valid=valid,
            window=recorded,
        )
        metrics = dict(metrics)
        metrics.setdefault("dormant_ratio", beta)
        metrics["perturb_coef"] = new_state.coefficient
        metrics["perturbations"] = new_state.num_perturbations.astype(jnp.float32)
        if use_snapshots:
            metrics["snapshots"] = jnp.sum(valid.astype(jnp.float32))
        return new_state, metrics

    if agent.recurrent:  # the carry passes through, observed with the inner state

        def observe(state: PerturbState, carry: Any, obs, action, info: dict) -> Any:
            return agent.observe(state.inner, carry, obs, action, info)

        return Agent(init, act, update, agent.initial_carry, observe)
    return Agent(init=init, act=act, update=update)
