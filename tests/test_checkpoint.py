"""Chunked runs equal one-shot runs bitwise; checkpoints resume exactly and fail loudly."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import checkpoint
from jaxrl.agents.actor_critic import sac
from jaxrl.agents.on_policy import ppo
from jaxrl.cli import main


def _assert_trees_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _chunked_equals_one_shot(train, hp, key):
    state, metrics = jax.jit(train)(key, hp)
    run_one = jax.jit(train.run_periods, static_argnums=2)
    chunked = train.init(key, hp)
    parts = []
    for _ in range(train.schedule.num_evals):
        chunked, m = run_one(chunked, hp, 1)
        parts.append(m)
    assert int(chunked.next_period) == train.schedule.num_evals
    _assert_trees_equal(state, chunked.agent_state)
    for k in metrics:
        np.testing.assert_array_equal(metrics[k], np.concatenate([p[k] for p in parts]), err_msg=k)


def test_ppo_chunks_equal_one_shot_train_bitwise():
    cfg = ppo.Config(
        total_steps=1024, num_envs=4, rollout_len=32, num_epochs=2, num_evals=2, num_eval_envs=2
    )
    train = ppo.SPEC.make_train(cfg, E.make("cartpole"))
    _chunked_equals_one_shot(train, ppo.SPEC.default_hparams(), jax.random.PRNGKey(7))


@pytest.mark.slow  # about 20 s of compilation on 2 CPU cores
def test_sac_chunks_equal_one_shot_train_bitwise():
    cfg = sac.Config(
        total_steps=64,
        num_envs=2,
        batch_size=16,
        buffer_size=64,
        warmup_steps=16,
        hidden=(16, 16),
        num_evals=2,
        num_eval_envs=2,
    )
    train = sac.SPEC.make_train(cfg, E.make("pendulum"))
    _chunked_equals_one_shot(train, sac.SPEC.default_hparams(), jax.random.PRNGKey(3))


ARGS = ["train", "ppo", "--seeds", "2", "--steps", "2048", "--no-progress"]
ARGS += ["--set", "num_evals=2", "--set", "num_envs=4", "--set", "num_epochs=2"]


def _final_state(run_dir):
    last = checkpoint.steps(run_dir / "checkpoints")[-1]
    with np.load(run_dir / "checkpoints" / f"step_{last:06d}" / "state.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def resumed_runs(compile_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    full, cut = root / "full", root / "cut"
    assert main([*ARGS, "--checkpoint-every", "1", "--out", str(full)]) == 0
    assert (
        main([*ARGS, "--checkpoint-every", "1", "--out", str(cut), "--stop-after-chunks", "1"]) == 0
    )
    assert checkpoint.steps(cut / "checkpoints") == [1] and not (cut / "summary.json").exists()
    assert main([*ARGS, "--resume", str(cut)]) == 0
    return full, cut


def test_cli_resume_equals_uninterrupted_run(resumed_runs):
    full, cut = resumed_runs
    assert (full / "metrics.jsonl").read_text() == (cut / "metrics.jsonl").read_text()
    a, b = _final_state(full), _final_state(cut)
    assert a.keys() == b.keys() and any("params" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["resumed_from_period"] == 1
    assert (
        summary["final_returns"] == json.loads((full / "summary.json").read_text())["final_returns"]
    )


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("jaxrl: error:"), err
    return err


def test_cli_resume_rejects_corrupt_checkpoint(resumed_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(resumed_runs[1], run)
    npz = run / "checkpoints" / "step_000002" / "state.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    assert main([*ARGS, "--resume", str(run)]) == 2
    assert "corrupt checkpoint" in _one_error_line(capsys)


def test_cli_resume_rejects_other_config(resumed_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(resumed_runs[1], run)
    assert main([*ARGS, "--set", "lr=1e-3", "--resume", str(run)]) == 2
    err = _one_error_line(capsys)
    assert "different run" in err and "hparams.lr" in err
    assert main([*ARGS, "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in _one_error_line(capsys)


TREE = {"a": jnp.arange(6.0).reshape(2, 3), "b": (jnp.int32(3), jnp.ones(4, jnp.bool_))}


def test_save_restore_roundtrip_keeps_newest(tmp_path):
    for step in (1, 2, 3):
        checkpoint.save(tmp_path, step, TREE, {"run": "x"})
    assert checkpoint.steps(tmp_path) == [2, 3]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), TREE)
    _assert_trees_equal(checkpoint.restore(tmp_path, 3, like, {"run": "x"}), TREE)


@pytest.mark.parametrize(
    "damage,fragment",
    [
        (lambda d: (d / "state.npz").write_bytes(b"junk"), "corrupt checkpoint"),
        (lambda d: (d / "meta.json").write_text("{"), "corrupt checkpoint"),
        (lambda d: (d / "state.npz").unlink(), "corrupt checkpoint"),
    ],
)
def test_restore_rejects_damaged_files(tmp_path, damage, fragment):
    folder = checkpoint.save(tmp_path, 1, TREE, {})
    damage(folder)
    with pytest.raises(checkpoint.CheckpointError, match=fragment):
        checkpoint.restore(tmp_path, 1, TREE, {})


def test_restore_rejects_other_shapes_and_structure(tmp_path):
    checkpoint.save(tmp_path, 1, TREE, {})
    wider = {**TREE, "a": jnp.zeros((2, 4))}
    with pytest.raises(checkpoint.CheckpointError, match=r"\['a'\] is float32\[2, 3\] there"):
        checkpoint.restore(tmp_path, 1, wider, {})
    with pytest.raises(checkpoint.CheckpointError, match="different structure"):
        checkpoint.restore(tmp_path, 1, {"a": TREE["a"]}, {})
    with pytest.raises(checkpoint.CheckpointError, match="different run: algo is 'ppo' there"):
        checkpoint.save(tmp_path, 2, TREE, {"algo": "ppo"})
        checkpoint.restore(tmp_path, 2, TREE, {"algo": "sac"})
