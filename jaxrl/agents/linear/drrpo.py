"""DR-RPO: distributionally robust regularised policy optimisation in d-rectangular linear
MDPs ("Policy Regularized Distributionally Robust Markov Decision Processes with Linear
Function Approximation").

The agent plays a finite-horizon linear MDP (``jaxrl.envs.linear``) with known features
``phi(s, a) [d]`` and finitely many states ``S``, online, one transition per update
(``Stream`` data). It keeps, per step ``h`` of the episode (one shared set with
``Config.share_steps``), the ridge statistics

    Lambda_h = ridge I + sum phi phi^T          [d, d]
    M_h      = sum phi e_{s'}^T                 [d, S]   (next-state counts by feature)
    b_h      = sum phi r                        [d]

from which every least-squares regression of LSVI follows exactly: the regression of
``f(s')`` on ``phi`` is ``Lambda_h^{-1} M_h f``. At the start and after every episode it
re-plans backwards, ``V_H = 0``, for ``h = H-1 .. 0``:

    theta_h      = Lambda_h^{-1} b_h                                 (reward)
    nu_h(alpha)  = Lambda_h^{-1} M_h [V_{h+1}]_alpha,  [V]_alpha = min(V, alpha)
    nu^rho_h,i   = max_{alpha in {V_{h+1}(s')}} nu_h(alpha)_i - rho (alpha - min_s' V_{h+1}(s'))
    Q_h(s, a)    = clip(phi^T (theta_h + nu^rho_h) + beta ||phi(s,a)||_{Lambda_h^{-1}}, 0, H - h)
    pi_h(a|s)    = pi_ref,h(a|s) exp(Q_h(s, a) / lambda) / Z_h(s)
    V_h(s)       = lambda log sum_a pi_ref,h(a|s) exp(Q_h(s, a) / lambda)

``nu^rho`` is the dual of the worst case over the d-rectangular total-variation set
``{mu_i' : TV(mu_i', mu_i) <= rho}`` of each factor, ``min E_{mu_i'}[V] = max_alpha
E_{mu_i}[V]_alpha - rho (alpha - min V)`` (the maximum of this concave piecewise linear
function is at a kink, so ``alpha`` ranges over the next values ``V_{h+1}(s')``);
``rho = 0`` uses the plain regression ``Lambda^{-1} M V_{h+1}`` (non-robust LSVI).
``pi_h`` and ``V_h`` are the maximiser and value of ``E_pi Q_h - lambda KL(pi || pi_ref)``;
``kl_coef = lambda = 0`` is the unregularised greedy policy ``V_h = max_a Q_h`` (ablation).
``pi_ref`` is uniform (``reference="uniform"``) or the previous episode's policy
(``reference="previous"``: the mirror-descent step ``pi_k ∝ pi_{k-1} exp(Q_k / lambda)``).

Acting samples ``a ~ pi_h(. | s)`` of the optimistic plan (``beta > 0``); evaluation
(``explore=False``) takes ``argmax_a`` of a second plan made with ``beta = 0`` (the learned
robust policy without its exploration bonus), or with ``eval_policy="softmax"`` samples
that plan's regularised policy ``pi_h`` itself (the policy the theory is about; with
``kl_coef = 0`` it is uniform over the maximisers). Observations are ``one_hot(s) ++
one_hot(h)``. All hyperparameters (``rho``, ``beta``, ``kl_coef``, ``ridge``) are traced
floats, so seeds and radii are one ``vmap``.

Ablations: ``rho = 0`` (non-robust, regularised), ``kl_coef = 0`` (robust, no policy
regularisation), ``beta = 0`` (no optimism). The presets pool the statistics over ``h``
on the (time-homogeneous) ``linear/<name>`` envs; ``--set share_steps=false`` is the
paper's per-step regression. An unvisited ``(s, a)`` regresses ``V_{h+1}`` to 0, so its
optimism is the bonus alone, ``beta / sqrt(ridge)``: ``beta`` of order ``H`` explores
fully but slowly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import loops
from jaxrl.core import Agent, Transition
from jaxrl.core.domains import NONNEGATIVE, POSITIVE, UNIT, hparam
from jaxrl.envs import Env, LinearFeatures, capability
from jaxrl.loops import AlgoSpec

REFERENCES = ("uniform", "previous")
#: The ``linear/<name>`` envs are time-homogeneous: pool the statistics of every step
#: (per-step statistics, the paper's setting, learn about ``H`` times slower: on
#: ``linear/windy`` at 12k steps they had not left the start region).
PRESETS: dict[str, dict[str, Any]] = {
    f"linear/{name}": {"share_steps": True} for name in ("tabular", "drect", "windy", "graded")
}
EVAL_POLICIES = ("greedy", "softmax")
#: A log-probability standing for an action the greedy policy never takes.
NEVER = -1e9


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings. ``num_envs`` independent learners (``Stream``); ``share_steps``
    pools the statistics of every step ``h`` (time-homogeneous dynamics); ``reference``:
    one of ``REFERENCES``; ``eval_policy``: one of ``EVAL_POLICIES`` (module docstring)."""

    total_steps: int = 20_000
    num_envs: int = 1
    share_steps: bool = False
    reference: str = "uniform"
    eval_policy: str = "greedy"
    num_evals: int = 10
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32; vmappable). ``rho``: TV radius in ``[0, 1]``;
    ``beta``: bonus scale; ``kl_coef``: KL weight ``lambda`` toward ``pi_ref``; ``ridge``."""

    rho: float = hparam(0.1, UNIT)
    beta: float = hparam(6.0, NONNEGATIVE)
    kl_coef: float = hparam(0.02, NONNEGATIVE)
    ridge: float = hparam(1.0, POSITIVE)


class Plan(struct.PyTreeNode):
    """A backward pass: ``q [H, S, A]``, ``v [H + 1, S]``, ``log_pi [H, S, A]``."""

    q: jax.Array
    v: jax.Array
    log_pi: jax.Array


class DRRPOState(struct.PyTreeNode):
    """Ridge statistics ``gram [Hs, d, d]``, ``next_counts [Hs, d, S]``, ``reward_sum
    [Hs, d]`` (``Hs = 1`` when shared, else ``H``), the optimistic plan that acts
    (``act``) and the number of episodes finished. The bonus-free plan that is evaluated
    is made from the statistics when needed (``greedy_plan``)."""

    gram: jax.Array
    next_counts: jax.Array
    reward_sum: jax.Array
    act: Plan
    episodes: jax.Array


def robust_nu(coef: jax.Array, v_next: jax.Array, rho: jax.Array) -> jax.Array:
    """The d-rectangular TV robust regression ``nu^rho [d]`` (module docstring).

    Args:
      coef: ``[d, S]``, ``Lambda^{-1} M`` (row ``i``: the estimated factor ``mu_i``).
      v_next: ``[S]``, ``V_{h+1}``.
      rho: TV radius (``0``: the plain regression ``coef @ v_next``).
    """
    chex.assert_rank(coef, 2)
    chex.assert_shape(v_next, (coef.shape[1],))
    clipped = jnp.minimum(v_next[None, :], v_next[:, None])  # [alpha, S]
    dual = clipped @ coef.T - rho * (v_next - jnp.min(v_next))[:, None]  # [alpha, d]
    return jnp.where(rho > 0, jnp.max(dual, axis=0), coef @ v_next)


def regularised_policy(
    q: jax.Array, log_ref: jax.Array, kl_coef: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(log_pi [S, A], v [S])`` of ``max_pi E_pi q - kl_coef KL(pi || pi_ref)``;
    ``kl_coef = 0``: uniform over the maximisers of ``q`` and ``v = max_a q``."""
    lam = jnp.maximum(kl_coef, 1e-6)
    logits = log_ref + q / lam
    lse = jax.nn.logsumexp(logits, axis=-1)
    best = q >= jnp.max(q, axis=-1, keepdims=True) - 1e-6
    log_greedy = jnp.where(best, -jnp.log(jnp.sum(best, -1, keepdims=True)), NEVER)
    soft = kl_coef > 0
    log_pi = jnp.where(soft, jnp.maximum(logits - lse[:, None], NEVER), log_greedy)
    return log_pi, jnp.where(soft, lam * lse, jnp.max(q, axis=-1))


def backward_plan(
    stats: tuple[jax.Array, jax.Array, jax.Array],
    phi: jax.Array,
    hparams: HParams,
    bonus: jax.Array,
    log_ref: jax.Array,
    share_steps: bool = False,
) -> Plan:
    """Robust regularised LSVI backwards from ``V_H = 0`` (module docstring).

    Args:
      stats: ``(gram [Hs, d, d], next_counts [Hs, d, S], reward_sum [Hs, d])``.
      phi: ``[S, A, d]`` features.
      hparams: ``rho``, ``beta``, ``kl_coef`` are read.
      bonus: scales ``beta`` (1: optimistic plan, 0: bonus-free).
      log_ref: ``[H, S, A]`` log-probabilities of ``pi_ref``.
      share_steps: one set of statistics for every step (``Hs = 1``).
    """
    gram, next_counts, reward_sum = stats
    horizon, num_s, _ = log_ref.shape
    dim = phi.shape[-1]
    chex.assert_shape(next_counts, (gram.shape[0], dim, num_s))

    def backward(v_next, xs):
        h, log_ref_h = xs
        k = 0 if share_steps else h
        chol = jnp.linalg.cholesky(gram[k])
        lam_inv = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(dim))
        coef = lam_inv @ jnp.concatenate([reward_sum[k][:, None], next_counts[k]], axis=1)
        nu = robust_nu(coef[:, 1:], v_next, hparams.rho)
        width = jnp.sqrt(jnp.maximum(jnp.einsum("sad,de,sae->sa", phi, lam_inv, phi), 0.0))
        q = phi @ (coef[:, 0] + nu) + bonus * hparams.beta * width
        q = jnp.clip(q, 0.0, (horizon - h).astype(jnp.float32))
        log_pi, v = regularised_policy(q, log_ref_h, hparams.kl_coef)
        return v, (q, v, log_pi)

    hs = jnp.arange(horizon)
    _, (q, v, log_pi) = jax.lax.scan(backward, jnp.zeros(num_s), (hs, log_ref), reverse=True)
    return Plan(q, jnp.concatenate([v, jnp.zeros((1, num_s))], axis=0), log_pi)


def plan_of(
    config: Config, phi: jax.Array, hparams: HParams, state: DRRPOState, bonus: jax.Array
) -> Plan:
    """The plan from ``state``'s statistics: optimistic (``bonus = 1``, the acting plan) or
    bonus-free (``bonus = 0``, the evaluated policy, ``greedy_plan``). The reference policy
    is uniform, or with ``reference="previous"`` the acting policy of the last episode."""
    horizon, num_s, num_a = state.act.log_pi.shape
    if config.reference == "previous":
        log_ref = state.act.log_pi
    else:
        log_ref = jnp.full((horizon, num_s, num_a), -jnp.log(num_a))
    stats = (state.gram, state.next_counts, state.reward_sum)
    return backward_plan(stats, phi, hparams, bonus, log_ref, config.share_steps)


def greedy_plan(config: Config, env: Env, hparams: HParams, state: DRRPOState) -> Plan:
    """The bonus-free robust plan of one learner's ``state`` (what evaluation acts on)."""
    features = capability(env, LinearFeatures).features
    return plan_of(config, features, hparams, state, jnp.float32(0.0))


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """DR-RPO's (init, act, update); ``update`` takes one unbatched transition."""
    mdp = capability(env, LinearFeatures)
    phi = mdp.features  # [S, A, d]
    num_s, num_a, dim = phi.shape
    horizon = mdp.horizon
    num_stats = 1 if config.share_steps else horizon

    def replan(state: DRRPOState) -> DRRPOState:
        return state.replace(act=plan_of(config, phi, hparams, state, jnp.float32(1.0)))

    def init(key: jax.Array) -> DRRPOState:
        del key
        empty = Plan(
            jnp.zeros((horizon, num_s, num_a)),
            jnp.zeros((horizon + 1, num_s)),
            jnp.full((horizon, num_s, num_a), -jnp.log(num_a)),
        )
        state = DRRPOState(
            gram=jnp.broadcast_to(hparams.ridge * jnp.eye(dim), (num_stats, dim, dim)),
            next_counts=jnp.zeros((num_stats, dim, num_s)),
            reward_sum=jnp.zeros((num_stats, dim)),
            act=empty,
            episodes=jnp.zeros((), jnp.int32),
        )
        return replan(state)

    def decode(obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``obs [..., S + H] -> (s, h)`` int32."""
        return jnp.argmax(obs[..., :num_s], -1), jnp.argmax(obs[..., num_s:], -1)

    def act(state: DRRPOState, obs: jax.Array, key: jax.Array, explore=True, **_):
        """``obs [B, S + H] -> action [B]`` int32: a sample of the optimistic policy, or
        (``explore=False``) the argmax of the bonus-free one (``eval_policy="softmax"``: a
        sample of it)."""
        s, h = decode(obs)
        if explore:
            action = jax.random.categorical(key, state.act.log_pi[h, s])
        else:
            greedy = plan_of(config, phi, hparams, state, jnp.float32(0.0))
            if config.eval_policy == "softmax":
                action = jax.random.categorical(key, greedy.log_pi[h, s])
            else:
                action = jnp.argmax(greedy.log_pi[h, s], axis=-1)
        return action.astype(jnp.int32), {}

    def update(state: DRRPOState, t: Transition, key: jax.Array):
        """One transition (unbatched leaves ``obs [S + H]``, ``action []``); re-plans
        after the episode's last step."""
        del key
        chex.assert_rank(t.reward, 0)
        chex.assert_shape(t.obs, (num_s + horizon,))
        s, h = decode(t.obs)
        s_next, _ = decode(t.next_obs)
        x = phi[s, t.action]
        k = 0 if config.share_steps else h
        state = state.replace(
            gram=state.gram.at[k].add(jnp.outer(x, x)),
            next_counts=state.next_counts.at[k].add(jnp.outer(x, jax.nn.one_hot(s_next, num_s))),
            reward_sum=state.reward_sum.at[k].add(x * t.reward),
        )
        last = h == horizon - 1
        state = jax.lax.cond(last, replan, lambda st: st, state)
        state = state.replace(episodes=state.episodes + last.astype(jnp.int32))
        metrics = {
            "optimistic_value_start": state.act.v[0, mdp.start],
            "episodes": state.episodes.astype(jnp.float32),
        }
        return state, metrics

    return Agent(init=init, act=act, update=update)


def data(config: Config, env: Env) -> loops.Stream:
    """``config.num_envs`` independent learners, one transition per update."""
    return loops.Stream(num_envs=config.num_envs)


def check(config: Config, env: Env) -> None:
    """A linear MDP env, episodes of its horizon, a known reference, even evaluation."""
    mdp = capability(env, LinearFeatures)
    if env.max_episode_steps != mdp.horizon:
        raise ValueError(
            f"episodes must last the env's horizon H={mdp.horizon}, got {env.max_episode_steps}"
        )
    if config.reference not in REFERENCES:
        raise ValueError(f"unknown reference {config.reference!r}; known: {', '.join(REFERENCES)}")
    if config.eval_policy not in EVAL_POLICIES:
        raise ValueError(
            f"unknown eval_policy {config.eval_policy!r}; known: {', '.join(EVAL_POLICIES)}"
        )
    if config.num_eval_envs % config.num_envs:
        raise ValueError(
            f"num_eval_envs={config.num_eval_envs} must be a multiple of num_envs={config.num_envs}"
        )


SUMMARY = (
    "DR-RPO: d-rectangular TV-robust LSVI with a KL-regularised softmax policy and UCB bonus "
    "(linear MDPs)"
)
SPEC = AlgoSpec(
    name="drrpo",
    summary=SUMMARY,
    config=Config,
    hparams=HParams,
    make_agent=make_agent,
    data=data,
    action_kinds=("discrete",),
    default_env="linear/windy",
    presets=PRESETS,
    positive=("num_envs",),
    check=check,
)
