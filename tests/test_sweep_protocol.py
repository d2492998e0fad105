"""``--eval-protocol absolute``: the best evaluation's agent state is kept without changing
training, and re-evaluated with 10x the episodes at the end."""

import json

import jax
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl.agents.on_policy import ppo
from jaxrl.cli import main
from jaxrl.transforms import best

TINY = {"num_envs": 4, "rollout_len": 16, "num_epochs": 1, "num_minibatches": 2}
TINY |= {"hidden": (16,), "num_evals": 3, "num_eval_envs": 2}


@pytest.mark.slow  # ~25 s CPU: two tiny training runs and an evaluation in one compile
def test_best_state_tracks_max_without_changing_training():
    cfg = ppo.Config(total_steps=384, **TINY)
    trainer = ppo.SPEC.make_train(cfg, E.make("cartpole"))
    tracked = best.with_best(trainer)
    hp, key = ppo.SPEC.default_hparams(), jax.random.PRNGKey(4)

    @jax.jit
    def both(key, hp):
        final, m = trainer(key, hp)
        state = tracked.init(key, hp)
        state, m_best = tracked.run_periods(state, hp, cfg.num_evals)
        absolute = best.absolute_return(tracked, state, hp, 10 * cfg.num_eval_envs)
        return final, m, state, m_best, absolute

    final, m, state, m_best, (abs_mean, abs_std) = both(key, hp)
    jax.tree.map(np.testing.assert_array_equal, m, m_best)
    jax.tree.map(np.testing.assert_array_equal, final, state.agent_state)
    returns = np.asarray(m["eval_return"])
    assert float(state.best_return) == returns.max()
    if returns.argmax() == len(returns) - 1:  # the last evaluation was the best
        jax.tree.map(np.testing.assert_array_equal, final, state.best)
    assert 0 < float(abs_mean) <= 500 and np.isfinite(float(abs_std))


def test_absolute_protocol_rejected_for_pbt_and_unknown(capsys):
    assert main(["pbt", "ppo", "--eval-protocol", "absolute"]) == 2
    assert main(["train", "ppo", "--eval-protocol", "relative"]) == 2
    assert capsys.readouterr().err.count("jaxrl: error:") == 2


@pytest.mark.slow  # ~30 s CPU: one train run through the CLI
def test_cli_train_absolute_writes_absolute_return(tmp_path):
    argv = ["train", "ppo", "--seeds", "2", "--steps", "384", "--no-progress"]
    argv += [x for k, v in TINY.items() if k != "hidden" for x in ("--set", f"{k}={v}")]
    argv += ["--set", "hidden=16", "--eval-protocol", "absolute", "--out", str(tmp_path)]
    assert main(argv) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["eval_protocol"] == "absolute" and s["absolute_episodes"] == 20
    assert len(s["absolute_returns"]) == 2
    assert s["absolute_return"] == pytest.approx(np.mean(s["absolute_returns"]))
