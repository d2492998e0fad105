"""PBT as a transform: exploit/explore on a constructed population, checked settings, and
a PBT run checkpointed and resumed half way equal to the uninterrupted run bitwise."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import checkpoint, runner, sweep
from jaxrl.agents.on_policy import ppo
from jaxrl.cli import main
from jaxrl.loops.run import LoopCarry, RunState
from jaxrl.transforms import pbt

P = 8
CONFIG = pbt.PBTConfig(population=P, perturb=("lr", "ent_coef"), fraction=0.25)
RANGES = {"lr": (1e-5, 1e-2), "ent_coef": (1e-4, 0.1)}


def _population():
    """Member i holds parameters filled with i, a 'replay buffer' of i and lr = 1e-4 (i+1)."""
    carry = LoopCarry(
        agent_state={"params": jnp.arange(P, dtype=jnp.float32)[:, None] * jnp.ones((P, 3))},
        data={"buffer": jnp.arange(P, dtype=jnp.int32)[:, None] * jnp.ones((P, 5), jnp.int32)},
        iteration=jnp.full((P,), 7, jnp.int32),
    )
    members = RunState(carry, jnp.arange(P * 4).reshape(P, 2, 2), jnp.full((P,), 3, jnp.int32))
    hp = ppo.SPEC.default_hparams()
    hp = jax.tree.map(lambda x: jnp.broadcast_to(x, (P,)), hp)
    hp = hp.replace(lr=1e-4 * (jnp.arange(P) + 1.0), ent_coef=1e-3 * (jnp.arange(P) + 1.0))
    return members, hp


def test_worst_members_take_best_members_state_and_perturbed_hparams():
    members, hp = _population()
    returns = jnp.array([5.0, 1.0, 7.0, 0.0, 3.0, 9.0, 2.0, 8.0])  # worst: 3, 1; best: 5, 7
    step = jax.jit(lambda k, m, h, r: pbt.exploit_explore(k, m, h, r, CONFIG, RANGES))
    new, new_hp, src = step(jax.random.PRNGKey(0), members, hp, returns)
    src = np.asarray(src)
    kept = [0, 2, 4, 5, 6, 7]
    np.testing.assert_array_equal(src[kept], kept)
    assert set(src[[3, 1]]) <= {5, 7}
    params = np.asarray(new.carry.agent_state["params"])
    buffer = np.asarray(new.carry.data["buffer"])
    for i in range(P):
        np.testing.assert_array_equal(params[i], np.full(3, src[i], np.float32))
        np.testing.assert_array_equal(buffer[i], np.full(5, src[i]))
        for name in ("lr", "ent_coef"):
            old = np.asarray(getattr(hp, name))
            got = float(getattr(new_hp, name)[i])
            if i in kept:
                assert got == old[i]
            else:  # the source's value times 0.8 or 1.25
                ratio = got / old[src[i]]
                assert min(abs(ratio - 0.8), abs(ratio - 1.25)) < 1e-6, (name, ratio)
    np.testing.assert_array_equal(new_hp.gamma, hp.gamma)  # not perturbed
    np.testing.assert_array_equal(new.period_keys, members.period_keys)  # own randomness
    np.testing.assert_array_equal(new.next_period, members.next_period)


def test_nan_return_counts_as_worst_and_explore_stays_in_range():
    returns = jnp.array([1.0, jnp.nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    src = pbt.exploit_sources(jax.random.PRNGKey(1), returns, 0.25)
    assert int(src[1]) in (6, 7) and int(src[0]) in (6, 7)
    _, hp = _population()
    hp = hp.replace(lr=jnp.full((P,), 1e-2))  # at the top of its range
    cfg = pbt.PBTConfig(population=P, perturb=("lr",), factors=(1.25,), resample_prob=0.5)
    out = pbt.explore(jax.random.PRNGKey(2), hp, cfg, {"lr": (1e-5, 1e-2)})
    lr = np.asarray(out.lr)
    assert (lr <= 1e-2).all() and (lr >= 1e-5).all() and (lr < 1e-2).any()  # some resampled
    init = pbt.initial_hparams(jax.random.PRNGKey(3), ppo.SPEC.default_hparams(), cfg, RANGES)
    assert init.lr.shape == (P,) and ((init.lr >= 1e-5) & (init.lr <= 1e-2)).all()
    assert len(set(np.asarray(init.lr).tolist())) == P and init.gamma.shape == (P,)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"population": 1}, "at least 2"),
        ({"perturb": ("nope",)}, "unknown hyperparameter"),
        ({"perturb": ()}, "at least one"),
        ({"ready": 0}, "ready"),
        ({"fraction": 0.75}, "fraction"),
        ({"ranges": {"lr": (1.0, 0.5)}, "perturb": ("lr",)}, "low < high"),
        ({"ranges": {"gamma": (0.9, 0.99)}, "perturb": ("lr",)}, "not perturbed"),
    ],
)
def test_bad_pbt_settings_raise(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        pbt.resolve_ranges(pbt.PBTConfig(**kwargs), ppo.SPEC.default_hparams())


def test_pbt_cli_bad_input_exits_2(capsys):
    assert main(["pbt", "ppo", "--perturb", "nope"]) == 2
    assert main(["pbt", "ppo", "--range", "lr=1"]) == 2
    assert main(["pbt", "ppo", "--perturb", "lr,ent_coef", "--set", "ent_coef=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("jaxrl: error:") for line in err)
    assert "unknown hyperparameter" in err[0] and "explicit range" in err[2]


TINY = {"num_envs": 4, "rollout_len": 16, "num_epochs": 1, "num_minibatches": 2}
TINY |= {"hidden": (16,), "num_evals": 4, "num_eval_envs": 2}
KW = dict(population=4, perturb=("lr", "ent_coef"), ready=1, seeds=2, steps=256, config=TINY)
KW |= dict(progress=False, log=None, checkpoint_every=2)


def test_pbt_chunk_checkpointed_and_restored_continues_bitwise(tmp_path):
    """Trainer level, one seed: run 2 of 4 periods, save, restore into a fresh process-like
    state, run the rest; equals running the same chunks without stopping."""
    cfg = ppo.Config(total_steps=256, **TINY)
    hp = ppo.SPEC.default_hparams()
    train = pbt.with_pbt(
        ppo.SPEC.make_train(cfg, E.make("cartpole")),
        hp,
        pbt.PBTConfig(population=4, perturb=("lr", "ent_coef"), ready=1),
    )
    init = jax.jit(train.init)
    two = jax.jit(lambda s, h: train.run_periods(s, h, 2))
    state = init(jax.random.PRNGKey(0), hp)
    state, first = two(state, hp)
    straight, second = two(state, hp)
    meta = {"test": "pbt"}
    checkpoint.save(tmp_path / "ckpt", 2, jax.tree.map(np.asarray, state), meta)
    like = jax.eval_shape(init, jax.random.PRNGKey(0), hp)
    restored = checkpoint.restore(tmp_path / "ckpt", 2, like, meta)
    resumed, second_again = two(restored, hp)
    jax.tree.map(np.testing.assert_array_equal, straight, resumed)
    jax.tree.map(np.testing.assert_array_equal, second, second_again)
    assert int(resumed.next_period) == 4
    parents = np.concatenate([first["member_parent"], second["member_parent"]])
    assert (parents != np.arange(4)).any()  # members were replaced along the way
    lr = np.concatenate([first["member_lr"], second["member_lr"]])
    assert (np.diff(lr, axis=0) != 0).any()


@pytest.mark.slow  # ~90 s CPU: three runner runs of a PBT population plus a one-shot compile
def test_pbt_resumed_half_way_equals_uninterrupted_run_bitwise(compile_cache, tmp_path):
    full = runner.run_pbt("ppo", out=tmp_path / "full", **KW)
    cut = runner.run_pbt("ppo", out=tmp_path / "cut", stop_after_chunks=1, **KW)
    assert cut.stopped_early and not (tmp_path / "cut" / "summary.json").exists()
    resumed = runner.run_pbt("ppo", resume=tmp_path / "cut", **KW)
    assert resumed.summary["resumed_from_period"] == 2
    for k, v in full.metrics.items():
        np.testing.assert_array_equal(v, resumed.metrics[k], err_msg=k)
    # PBT happened: some member took another's state, hyperparameters moved.
    parents = full.metrics["member_parent"]  # [S, E, P]
    assert parents.shape == (2, 4, 4) and (parents != np.arange(4)).any()
    assert (np.diff(full.metrics["member_lr"], axis=1) != 0).any()
    np.testing.assert_array_equal(
        full.metrics["eval_return"], full.metrics["member_eval_return"].max(-1)
    )
    s = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert s["pbt"]["population"] == 4 and len(s["final_best_member_hparams"]) == 2
    for name in ("pbt.png", "curve.png", "metrics.jsonl"):
        assert (tmp_path / "cut" / name).stat().st_size > 0
    # The seeds-vmapped one-shot train(key, hparams) of the same transform gives the same run.
    cfg = ppo.Config(total_steps=256, **TINY)
    hp = ppo.SPEC.default_hparams()
    train = pbt.with_pbt(
        ppo.SPEC.make_train(cfg, E.make("cartpole")),
        hp,
        pbt.PBTConfig(population=4, perturb=("lr", "ent_coef"), ready=1),
    )
    _, m = sweep.over_seeds(train, 2)(sweep.seed_keys(0, 2), hp)
    np.testing.assert_array_equal(m["member_lr"], full.metrics["member_lr"])
    np.testing.assert_array_equal(m["eval_return"], full.metrics["eval_return"])
