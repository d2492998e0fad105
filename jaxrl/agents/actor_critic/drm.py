"""DrM (Xu et al., 2023, "Mastering Visual RL through Dormant Ratio Minimization") over SAC.

Base: SAC (``jaxrl.agents.actor_critic.sac``: twin critics, tanh-Gaussian actor, learned
temperature; its actor/temperature steps are reused), not the paper's DrQ-v2. DrQ-v2
is DDPG with image augmentation, n-step returns and a scheduled Gaussian
exploration noise; on state-based tasks without images SAC is the standard, stronger
base, its entropy bonus plays the role of the scheduled noise, and it shares tested
code with this package. DrM's three mechanisms on top of it:

* dormant-ratio-guided perturbation (``jaxrl.transforms.with_dormant_perturbation``):
  every ``perturb_every`` updates, actor, critics, target critics and value net move
  toward a fresh init by ``a = clip(1 - 2 beta, 0.2, 0.9)``; their Adam states reset;
* dormant-ratio-guided exploitation (``exploitation``): a value net ``V(s)`` fitted by
  expectile regression (0.9) to ``min_i Q_i(s, a)`` on replayed actions, and the target
  ``y = r + gamma (1 - term) [lam V(s') + (1 - lam)(min_i Q'_i(s', a') - alpha log pi')]``
  with ``lam = 0.6 / (1 + exp(50 (beta - 0.2)))``;
* awakened exploration (``awaken_exploration``, off by default since SAC explores by
  its entropy): Gaussian noise of std ``awaken_std(beta)`` added to the squashed
  action while training (DrM's MetaWorld code, ``stddev_type: awake``: ``max(1 / (1 + exp(-10
  (beta - 0.2))), linear(1 -> 0.1 over D steps since awakening))``, D about a third of
  the run, e.g. 500k of 1.5M agent steps on its medium tasks).

``dormant_window`` / ``num_windows`` record the ratio at every update around each
perturbation into the state (``jaxrl.transforms.dormant.window_slot``); ``HOOK`` adds
them to ``summary.json``.

``beta`` is the actor's tau-dormant ratio (tau 0.025) on each update's batch, before
the update (as in DrM's code); it is logged as ``dormant_ratio``. As in the paper (and,
through its in-place ReLU, DrM's code) hidden units are measured after their activation
(``jaxrl.transforms.dormant.dormant_ratio``); a dead ReLU unit is dormant. ``make_agent``
takes any tanh-Gaussian actor module, which MENTOR uses for its MoE actor.

Checked against DrM's code (github.com/XuGW-Kevin/DrM, ``agents/drm.py``, ``utils.py``):
the ratio, ``a = clip(1 - 2 beta, 0.2, a_max)``, the optimiser resets, LayerNorm
parameters left out of the perturbation, the awakened-exploration schedule (awake at the
first update after warm-up with ``beta < 0.2``) and the expectile value and its lambda
agree. Left different on purpose: the target critics move toward the same fresh draw as
the critics (DrM's code draws a separate one, which opens a gap of ``(1 - a)`` times two
independent inits between critic and target); one-step SAC targets keep the entropy
term; schedules count updates, not env steps.
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
from jaxrl.agents.actor_critic import common as ac
from jaxrl.agents.actor_critic import sac
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import NONNEGATIVE, OPEN_UNIT, POSITIVE, UNIT, hparam
from jaxrl.envs import Env
from jaxrl.losses import expectile_loss
from jaxrl.nets import QNetwork, TanhGaussian, ValueHead
from jaxrl.nets.mlp import tanh_gaussian, tanh_gaussian_sample
from jaxrl.nets.moe import aux_losses
from jaxrl.transforms import dormant

#: Pendulum: SAC's 2x128 nets; perturbation every 5k updates (DrM: every 100k env steps
#: in runs of 1-3M; a 20k run would otherwise never perturb).
PRESETS: dict[str, dict[str, Any]] = {"pendulum": {"hidden": (128, 128), "perturb_every": 5_000}}

#: The networks moved toward the prior, and the optimiser states reset, at a perturbation.
PERTURBED = dormant.Parts(
    get=lambda s: (s.actor_params, s.critic_params, s.target_critic_params, s.value_params),
    set=lambda s, p: s.replace(
        actor_params=p[0], critic_params=p[1], target_critic_params=p[2], value_params=p[3]
    ),
)
RESET = dormant.Parts(
    get=lambda s: (s.actor_opt, s.critic_opt, s.value_opt),
    set=lambda s, p: s.replace(actor_opt=p[0], critic_opt=p[1], value_opt=p[2]),
)


@dataclasses.dataclass(frozen=True)
class Config(ac.Config):
    """SAC's static settings plus DrM's switches."""

    perturb: bool = True
    perturb_every: int = 100_000  # updates between perturbations
    exploitation: bool = True
    awaken_exploration: bool = False
    # the dormant ratio at every update dormant_window updates either side of each of the
    # first num_windows perturbations, in the state (0: off); the hook adds it to summary
    dormant_window: int = 0
    num_windows: int = 0


@struct.dataclass
class HParams(sac.HParams):
    """SAC's numeric hyperparameters plus DrM's (defaults from the paper's code)."""

    value_lr: float = hparam(3e-4, POSITIVE)
    dormant_tau: float = hparam(0.025, NONNEGATIVE)
    target_dormant_ratio: float = hparam(0.2, UNIT)
    perturb_rate: float = hparam(2.0, NONNEGATIVE)
    min_perturb: float = hparam(0.2, UNIT)
    max_perturb: float = hparam(0.9, UNIT)
    expectile: float = hparam(0.9, OPEN_UNIT)
    target_lambda: float = hparam(0.6, UNIT)
    lambda_temp: float = hparam(50.0, POSITIVE)
    dormant_temp: float = hparam(10.0, POSITIVE)
    explore_std_scale: float = hparam(1.0, NONNEGATIVE)
    explore_std_final: float = hparam(0.1, NONNEGATIVE)
    # updates for the awakened linear decay 1 -> final
    explore_duration: float = hparam(10_000.0, POSITIVE)


class DrMState(ac.SoftActorCritic):
    value_params: Any
    value_opt: Any
    dormant_ratio: jax.Array  # float32, the actor's, measured on the last batch
    awaken_step: jax.Array  # int32, first update with beta < target; -1 until then


def blended_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q: jax.Array,
    next_log_prob: jax.Array,
    next_v: jax.Array,
    lam: jax.Array,
    alpha: jax.Array,
    gamma: jax.Array,
) -> jax.Array:
    """``r + gamma (1 - term) [lam V(s') + (1 - lam)(min_i Q'_i - alpha log pi')]``.

    Shapes: ``next_q [2, N]``, the rest ``[N]`` (``lam``, ``alpha``, ``gamma`` scalars).
    """
    soft = jnp.min(next_q, axis=0) - alpha * next_log_prob
    cont = gamma * (1.0 - terminated.astype(jnp.float32))
    return reward + cont * (lam * next_v + (1.0 - lam) * soft)


def base_agent(
    config: Config,
    env: Env,
    hparams: HParams,
    actor: nn.Module | None = None,
    aux_coef: float | jax.Array = 0.0,
) -> Agent:
    """DrM's base agent (no perturbation; see ``make_perturbed`` and ``make_agent``).

    ``actor``: a module ``obs [N, ...] -> (mean, std) [N, act]`` (default SAC's
    ``TanhGaussian``); whatever it sows into ``"losses"`` (a MoE's aux loss) is added
    to the actor loss times ``aux_coef``.
    """
    act_dim, center, half = ac.box_action_scale(env, "drm")
    obs_shape = env.observation_spec.shape
    actor = actor or TanhGaussian(act_dim, config.hidden, config.activation)
    critic = ac.twin(QNetwork(config.hidden, config.activation, config.critic_layer_norm))
    value = ValueHead(config.hidden, config.activation)
    critic_apply = critic.apply
    actor_tx, critic_tx, value_tx, alpha_tx = (
        adam(hparams.actor_lr),
        adam(hparams.critic_lr),
        adam(hparams.value_lr),
        adam(hparams.alpha_lr),
    )
    target_entropy = -hparams.target_entropy_scale * act_dim

    def actor_with_aux(params, obs):
        (mean, std), variables = actor.apply(params, obs, mutable=["losses"])
        return mean, std, aux_coef * aux_losses(variables)

    def init(key: jax.Array) -> DrMState:
        actor_key, critic_key, value_key = jax.random.split(key, 3)
        obs = jnp.zeros((1, *obs_shape), jnp.float32)
        act = jnp.zeros((1, act_dim), jnp.float32)
        actor_params = {"params": actor.init(actor_key, obs)["params"]}  # drop sowed values
        critic_params = critic.init(critic_key, obs, act)
        value_params = value.init(value_key, obs)
        parts = ac.initial_soft_parts(
            actor_params, critic_params, (actor_tx, critic_tx, alpha_tx), hparams.init_alpha
        )
        return DrMState(
            **parts,
            value_params=value_params,
            value_opt=value_tx.init(value_params),
            dormant_ratio=jnp.zeros((), jnp.float32),
            awaken_step=-jnp.ones((), jnp.int32),
        )

    def explore_std(state: DrMState) -> jax.Array:
        return dormant.awaken_std(
            state.dormant_ratio,
            state.step.astype(jnp.float32),
            state.awaken_step.astype(jnp.float32),
            target=hparams.target_dormant_ratio,
            temp=hparams.dormant_temp,
            scale=hparams.explore_std_scale,
            std_final=hparams.explore_std_final,
            duration=hparams.explore_duration,
        )

    def act(state: DrMState, obs: jax.Array, key: jax.Array, explore=True, **_):
        mean, std = actor.apply(state.actor_params, obs)
        if not explore:
            return center + half * jnp.tanh(mean), {}
        sample_key, noise_key = jax.random.split(key)
        a = tanh_gaussian_sample(mean, std, sample_key)[0]
        if config.awaken_exploration:
            noise = explore_std(state) * jax.random.normal(noise_key, a.shape, a.dtype)
            a = jnp.clip(a + noise, -1.0, 1.0)
        return center + half * a, {}

    def update(state: DrMState, batch: Transition, key: jax.Array):
        """``batch`` leaves are flat ``[N, ...]`` samples from replay."""
        chex.assert_rank(batch.reward, 1)
        next_eps, actor_eps = jax.random.normal(key, (2, *batch.action.shape))
        alpha = jnp.exp(state.log_alpha)
        action = (batch.action - center) / half
        beta, layers = dormant.dormant_ratio(
            actor, state.actor_params, batch.obs, tau=hparams.dormant_tau
        )
        awake = (state.awaken_step < 0) & (beta < hparams.target_dormant_ratio)
        awaken_step = jnp.where(awake, state.step, state.awaken_step)
        lam = dormant.exploitation_lambda(
            beta, hparams.target_lambda, hparams.lambda_temp, hparams.target_dormant_ratio
        )
        metrics = {}

        value_params, value_opt = state.value_params, state.value_opt
        next_v = jnp.zeros_like(batch.reward)
        if config.exploitation:
            q_data = jax.lax.stop_gradient(
                jnp.min(critic_apply(state.critic_params, batch.obs, action), axis=0)
            )

            def value_loss(p):
                return expectile_loss(q_data - value.apply(p, batch.obs), hparams.expectile)

            v_loss, v_grads = jax.value_and_grad(value_loss)(value_params)
            v_updates, value_opt = value_tx.update(v_grads, value_opt)
            value_params = optax.apply_updates(value_params, v_updates)
            next_v = value.apply(value_params, batch.next_obs)
            metrics.update({"value_loss": v_loss, "lambda": lam})
        else:
            lam = jnp.zeros((), jnp.float32)

        mean, std = actor.apply(state.actor_params, batch.next_obs)
        next_action, next_log_prob = tanh_gaussian(mean, std, next_eps)
        next_q = critic_apply(state.target_critic_params, batch.next_obs, next_action)
        target = blended_target(
            batch.reward,
            batch.terminated,
            next_q,
            next_log_prob,
            next_v,
            lam,
            alpha,
            hparams.gamma,
        )
        target = jax.lax.stop_gradient(target)

        critic_params, critic_opt, c_loss, q_mean = ac.critic_step(
            critic_apply, critic_tx, state, batch.obs, action, target
        )

        policy, policy_metrics = ac.soft_policy_step(
            actor_with_aux,
            (actor_tx, alpha_tx),
            state,
            batch.obs,
            actor_eps,
            lambda a: jnp.min(critic_apply(critic_params, batch.obs, a), axis=0),
            target_entropy,
        )
        new_state = state.replace(
            critic_params=critic_params,
            critic_opt=critic_opt,
            target_critic_params=optax.incremental_update(
                critic_params, state.target_critic_params, hparams.tau
            ),
            value_params=value_params,
            value_opt=value_opt,
            dormant_ratio=beta,
            awaken_step=awaken_step,
            step=state.step + 1,
            **policy,
        )
        metrics.update(
            critic_loss=c_loss, alpha=alpha, q_mean=q_mean, dormant_ratio=beta, **policy_metrics
        )
        if config.awaken_exploration:
            metrics["explore_std"] = explore_std(new_state)
        if config.log_dormant:
            metrics.update({f"dormant_ratio/{k}": v for k, v in layers.items()})
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


def make_perturbed(
    config: Config, base: Agent, hparams: HParams, prior: str = "fresh", **kwargs: Any
) -> Agent:
    """``base`` wrapped in DrM's perturbation (``prior="snapshots"``: MENTOR's)."""
    return dormant.with_dormant_perturbation(
        base,
        measure=lambda state, batch: state.dormant_ratio,
        perturbed=PERTURBED,
        reset=RESET,
        perturb_every=config.perturb_every,
        rate=hparams.perturb_rate,
        min_coef=hparams.min_perturb,
        max_coef=hparams.max_perturb,
        prior=prior,
        window=config.dormant_window,
        num_windows=config.num_windows,
        **kwargs,
    )


def window_fields(given: loops.HookInput) -> dict[str, Any]:
    """The hook's summary fields: ``dormant_window [seeds, P, 2W]`` (slot ``j`` is update
    offset ``j - W + 1`` from its perturbation, ``jaxrl.transforms.dormant.window_slot``)
    and ``awaken_update [seeds]`` (the update awakened exploration started; -1: never)."""
    states = given.agent_states
    if not isinstance(states, dormant.PerturbState) or states.window.size == 0:
        return {}
    host = given.to_host({"window": states.window, "awaken": states.inner.awaken_step})
    return {
        "dormant_window": host["window"].tolist(),
        "dormant_window_half_width": given.config.dormant_window,
        "awaken_update": host["awaken"].tolist(),
    }


def check_window(config: Config) -> None:
    """Raises ValueError unless ``0 <= 2 dormant_window <= perturb_every`` (windows of
    neighbouring perturbations must not overlap) and ``num_windows >= 0``."""
    w, n = config.dormant_window, config.num_windows
    if w < 0 or n < 0 or 2 * w > config.perturb_every:
        raise ValueError(
            f"need 0 <= 2 * dormant_window <= perturb_every and num_windows >= 0, got "
            f"dormant_window={w}, num_windows={n}, perturb_every={config.perturb_every}"
        )


#: Adds the recorded windows to ``summary.json`` (``window_fields``).
HOOK = loops.EvalHook("dormant_window", window_fields, check=check_window)


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """DrM: ``base_agent`` wrapped in the perturbation when ``config.perturb``; the state
    is then a ``PerturbState``."""
    base = base_agent(config, env, hparams)
    return make_perturbed(config, base, hparams) if config.perturb else base


SUMMARY = "DrM over SAC: dormant-ratio-guided perturbation and exploitation (Xu et al. 2023)"
POSITIVE = (*ac.POSITIVE, "perturb_every")
SPEC = ac.spec(
    "drm",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    presets=PRESETS,
    positive=POSITIVE,
    eval_hooks=(HOOK,),
)
