"""AlphaZero (Silver et al., 2018) with a known simulator: every ``act`` runs an
``mctx`` search whose ``recurrent_fn`` steps the env itself from the batch's
``EnvState`` (stochastic dynamics get a fresh key per expansion), with the network's
policy as prior and its value at the leaves. The search policy and root value, stored
with each transition, are the network's policy and value targets (Gumbel MuZero policy
improvement by default, ``search="puct"`` for PUCT visit counts).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import mctx

from jaxrl import loops
from jaxrl.agents.planning import common as pc
from jaxrl.core import Agent, Transition, adam
from jaxrl.envs import Env
from jaxrl.loops import AlgoSpec

Config = pc.Config
HParams = pc.HParams


def make_agent(
    config: Config, env: Env, hparams: HParams, schedule: loops.Schedule | None = None
) -> Agent:
    """AlphaZero's (init, act, update); ``act`` needs ``env_state`` (the simulator's)."""
    num_actions = env.action_spec.num_actions
    net = pc.PlanNet(num_actions, tuple(config.hidden))
    tx = adam(hparams.lr)
    # The loop's wrappers add their own info keys; the planner steps `env`, which has these.
    info_keys = tuple(jax.eval_shape(env.reset, jax.random.PRNGKey(0)).info)

    def init(key: jax.Array) -> pc.PlanState:
        params = net.init(key, jnp.zeros(env.observation_spec.shape))
        return pc.PlanState(params, tx.init(params), jnp.zeros((), jnp.int32))

    def recurrent_fn(params, key, action, states):
        states = states.replace(key=jax.random.split(key, action.shape[0]))
        nxt = jax.vmap(env.step)(states, action)
        out = net.apply(params, nxt.obs)
        discount = hparams.gamma * (1.0 - nxt.terminated.astype(jnp.float32))
        step = mctx.RecurrentFnOutput(
            reward=nxt.reward, discount=discount, prior_logits=out["policy"], value=out["value"]
        )
        return step, nxt

    def act(state, obs, key, explore=True, *, env_state=None, carry=None):
        if env_state is None:
            raise ValueError("alphazero plans with the simulator: act needs env_state")
        sim = env_state.replace(info={k: env_state.info[k] for k in info_keys})
        out = net.apply(state.params, obs)
        root = mctx.RootFnOutput(prior_logits=out["policy"], value=out["value"], embedding=sim)
        return pc.run_search(config, state.params, key, root, recurrent_fn, explore)

    def update(state: pc.PlanState, batch: Transition, key: jax.Array):
        chex.assert_rank(batch.obs, 2)

        def loss_fn(params):
            return pc.search_losses(net.apply(params, batch.obs), batch.extras, hparams.value_coef)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return pc.apply_grads(state, tx, grads), {**metrics, "loss": loss}

    return Agent(init, act, update)


SPEC = AlgoSpec(
    name="alphazero",
    summary="AlphaZero: mctx search (Gumbel or PUCT) through the true simulator's state",
    config=Config,
    hparams=HParams,
    make_agent=make_agent,
    data=pc.data,
    action_kinds=("discrete",),
    default_env="assist/build-3x3",
    positive=pc.POSITIVE,
    check=pc.check,
)
