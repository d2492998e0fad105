"""DQN (Mnih et al., 2015) on the replay loop, discrete actions, with the usual options:
double Q-learning (van Hasselt et al., 2016), a dueling head (Wang et al., 2016) and
n-step returns.

Behaviour is epsilon-greedy, epsilon moving linearly from ``eps_start`` to ``eps_end``
over the first ``exploration_fraction`` of the loop's env steps (the env step comes from
the loop's ``LoopContext`` at each update). The target network moves towards the online
one every ``target_period`` updates by ``tau``: ``tau = 1`` is DQN's hard copy, a small
``tau`` with ``target_period = 1`` Polyak averaging. With ``n_step = n`` the replay loop
hands runs of ``n`` consecutive steps (``Replay.sequence_len``) and the target is
``sum_k gamma^k r_k + gamma^m Q'(s_m, a*)``, cut at the first episode end
(``jaxrl.returns.n_step_return``); a truncation bootstraps, a termination does not.
``a*`` is ``argmax Q'`` or, with ``double``, ``argmax Q`` of the online network.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import loops
from jaxrl.agents.value import common as vc
from jaxrl.core import Agent, Transition, adam
from jaxrl.core.domains import POSITIVE, POSITIVE_OR_INF, RATE, UNIT, hparam
from jaxrl.core.optim import last_grad_norm
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec
from jaxrl.nets import DiscreteQ
from jaxrl.returns import n_step_return

#: Config overrides per env name, applied before the user's.
PRESETS: dict[str, dict[str, Any]] = {}


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings (shapes, control flow). The defaults are tuned for ``cartpole``:
    rejax's CartPole DQN settings (10 envs, 5 updates of 100 samples per step of them, a
    dueling 64x64 swish network, double Q) plus LayerNorm, a buffer holding the whole
    200k-step run and half the learning rate (``HParams.lr``). Rejax's settings as they
    are let the greedy policy of some seeds collapse late in a 200k-step run."""

    total_steps: int = 200_000
    num_envs: int = 10
    batch_size: int = 100
    buffer_size: int = 200_000
    warmup_steps: int = 5_000
    updates_per_iter: int = 5  # gradient updates per step of the num_envs envs
    target_period: int = 1  # updates between target moves (by tau)
    n_step: int = 1
    double: bool = True
    dueling: bool = True
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "silu"
    layer_norm: bool = True
    loss: str = "mse"  # "mse": 0.5 (Q - y)^2; "huber": Huber with delta 1 (Nature DQN)
    anneal_lr: bool = False  # True: linearly to 0 over the run's updates
    num_evals: int = 20
    num_eval_envs: int = 16
    eval_max_steps: int = loops.EVAL_MAX_STEPS  # evaluation episodes cut at this length


@struct.dataclass
class HParams:
    """Numeric hyperparameters (float32 arrays; vmappable for sweeps)."""

    lr: float = hparam(5e-4, POSITIVE)
    gamma: float = hparam(0.99, UNIT)
    tau: float = hparam(0.005, RATE)  # target step per move; 1: hard copy
    eps_start: float = hparam(1.0, UNIT)
    eps_end: float = hparam(0.05, UNIT)
    exploration_fraction: float = hparam(0.5, RATE)  # of the run's env steps
    max_grad_norm: float = hparam(10.0, POSITIVE_OR_INF)  # inf: no clipping


class DQNState(struct.PyTreeNode):
    params: Any
    target_params: Any
    opt_state: Any
    step: jax.Array  # int32, updates done
    env_step: jax.Array  # int32, the loop's env step at the last update (drives epsilon)


def q_target(
    ret: jax.Array,
    discount: jax.Array,
    next_q_target: jax.Array,
    next_q_online: jax.Array | None,
) -> jax.Array:
    """The (double) Q-learning target ``ret + discount * Q'(s', a*)``, ``[N]``.

    ``ret, discount [N]`` from ``n_step_return``; ``next_q_target`` and ``next_q_online``
    ``[N, A]`` at the bootstrap observation. ``a*`` is the online network's argmax (double
    Q-learning) or, with ``next_q_online=None``, the target network's.
    """
    picker = next_q_target if next_q_online is None else next_q_online
    return ret + discount * vc.chosen(next_q_target, jnp.argmax(picker, axis=-1))


def bootstrap_obs(next_obs: jax.Array, last: jax.Array) -> jax.Array:
    """``next_obs [n, N, ...]`` at step ``last [N]`` of each run: ``[N, ...]``."""
    idx = last.reshape((1, -1) + (1,) * (next_obs.ndim - 2))
    return jnp.take_along_axis(next_obs, idx, axis=0)[0]


def make_agent(config: Config, env: Env, hparams: HParams, schedule: loops.Schedule) -> Agent:
    """DQN's (init, act, update) for ``env``'s discrete actions; ``hparams`` may be traced."""
    spec = env.action_spec
    if not spec.discrete:
        raise ValueError("dqn needs a discrete action space")
    obs_shape = env.observation_spec.shape
    net = DiscreteQ(
        spec.num_actions, config.hidden, config.activation, config.layer_norm, config.dueling
    )
    warmup_iters = -(-config.warmup_steps // config.num_envs)
    first = max(warmup_iters, config.n_step) if config.n_step > 1 else warmup_iters
    total_updates = max(1, schedule.num_iters - max(first - 1, 0)) * config.updates_per_iter

    def annealed(count: jax.Array) -> jax.Array:
        return hparams.lr * jnp.maximum(1.0 - count / total_updates, 0.0)

    tx = adam(annealed if config.anneal_lr else hparams.lr, max_grad_norm=hparams.max_grad_norm)

    def init(key: jax.Array) -> DQNState:
        params = net.init(key, jnp.zeros((1, *obs_shape), jnp.float32))
        zero = jnp.zeros((), jnp.int32)
        return DQNState(params, params, tx.init(params), zero, zero)

    def eps_at(env_step: jax.Array) -> jax.Array:
        return vc.epsilon(hparams, env_step, schedule.total_steps)

    act = vc.epsilon_greedy_act(net.apply, lambda state: eps_at(state.env_step))

    def update(state: DQNState, batch: Transition, key: jax.Array):
        """``batch`` leaves are ``[N, ...]`` (``n_step = 1``) or runs ``[n, N, ...]``."""
        del key
        context = batch.context
        if config.n_step == 1:
            chex.assert_rank(batch.reward, 1)
            batch = jax.tree.map(lambda x: x[None], batch.replace(context=None))
        chex.assert_rank(batch.reward, 2)
        ret, discount, last = n_step_return(
            batch.reward, batch.terminated, batch.truncated, hparams.gamma
        )
        next_obs = bootstrap_obs(batch.next_obs, last)
        next_q_target = net.apply(state.target_params, next_obs)
        next_q_online = net.apply(state.params, next_obs) if config.double else None
        target = jax.lax.stop_gradient(q_target(ret, discount, next_q_target, next_q_online))
        obs, action = batch.obs[0], batch.action[0]

        def loss_fn(params):
            q = vc.chosen(net.apply(params, obs), action)
            return vc.td_loss(q, target, config.loss), q

        (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state)
        params = optax.apply_updates(state.params, updates)
        step = state.step + 1
        moved = optax.incremental_update(params, state.target_params, hparams.tau)
        target_params = jax.lax.cond(
            step % config.target_period == 0, lambda: moved, lambda: state.target_params
        )
        env_step = state.env_step if context is None else context.env_step
        new_state = DQNState(params, target_params, opt_state, step, env_step)
        metrics = {
            "td_loss": loss,
            "q_mean": jnp.mean(q),
            "epsilon": eps_at(env_step),
            "grad_norm": last_grad_norm(opt_state),
        }
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


def data(config: Config, env: Env) -> loops.Replay:
    """Uniform replay; runs of ``n_step`` consecutive steps when ``n_step > 1``."""
    return loops.Replay.from_config(config, sequence_len=config.n_step)


def check(config: Config, env: Env) -> None:
    """Raises ValueError for settings that cannot work, before any compilation."""
    loops.check_warmup(config)
    if config.loss not in vc.LOSSES:
        raise ValueError(f"loss must be one of {vc.LOSSES}, got {config.loss!r}")
    if config.buffer_size < config.n_step * config.num_envs:
        raise ValueError(
            f"buffer_size={config.buffer_size} must hold n_step * num_envs = "
            f"{config.n_step * config.num_envs} transitions"
        )


SUMMARY = "DQN with double, dueling and n-step options (Mnih et al. 2015)"
POSITIVE = (*loops.REPLAY_POSITIVE, "updates_per_iter", "target_period", "n_step")
SPEC = AlgoSpec(
    "dqn",
    SUMMARY,
    Config,
    HParams,
    make_agent,
    data,
    ("discrete",),
    "cartpole",
    PRESETS,
    POSITIVE,
    check,
)
