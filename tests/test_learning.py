"""Learning tests: each algorithm reaches a stated return within a stated budget."""

import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import sweep
from jaxrl.agents.actor_critic import sac
from jaxrl.agents.on_policy import ppo


def final_returns(algo, config, env, num_seeds=4, seed=0, **hparams):
    train = algo.SPEC.make_train(config, env)
    _, metrics = sweep.over_seeds(train, num_seeds)(
        sweep.seed_keys(seed, num_seeds), algo.SPEC.default_hparams(**hparams)
    )
    assert bool(np.all(metrics["finite"]))
    return np.asarray(metrics["eval_return"])


# Slow since the planning notebook joined CI: ../shared/acceptance/foundation trains the same
# default PPO on cartpole (`jaxrl train ppo --seeds 2`, asserts >= 400).
@pytest.mark.slow
def test_ppo_cartpole_reaches_475_within_500k_steps():
    returns = final_returns(ppo, ppo.Config(total_steps=500_000), E.make("cartpole"))
    print("ppo cartpole eval returns (seeds x evals, last 5):", returns[:, -5:])
    assert returns[:, -1].mean() >= 475, returns[:, -1]


@pytest.mark.slow  # ~2 minutes on 2 cores; the default suite keeps SAC's maths
def test_sac_pendulum_reaches_minus_250_within_20k_steps():
    config = sac.Config(total_steps=20_000, **sac.SPEC.presets["pendulum"])
    returns = final_returns(sac, config, E.make("pendulum"))
    print("sac pendulum eval returns (seeds x evals, last 5):", returns[:, -5:])
    assert returns[:, -1].mean() >= -250, returns[:, -1]


@pytest.mark.slow  # ~90 s on 2 cores; `jaxrl bench --quick` (ppo_mjx) times MJX PPO to solve
def test_ppo_mjx_playground_cartpole_balance_reaches_900_within_1_5m_steps():
    """MuJoCo MJX physics (Playground's DM Control CartpoleBalance, optimum 1000)."""
    name = "playground/CartpoleBalance"
    config = ppo.Config(**ppo.SPEC.presets[name])
    assert config.total_steps <= 1_500_000
    returns = final_returns(ppo, config, E.make(name))
    print("ppo CartpoleBalance eval returns (seeds x evals):", returns)
    assert returns[:, -1].mean() >= 900, returns[:, -1]
