"""``jaxrl sweep``: bad grids exit 2 with one line; a grid x seeds runs as one compile,
resumes from a checkpoint, and writes ranked sweep files plus a folder per setting."""

import json

import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import report, runner, sweep
from jaxrl.agents.on_policy import ppo
from jaxrl.cli import main


@pytest.mark.parametrize(
    "grid,fragment",
    [
        (["no_such_key=1,2"], "unknown key 'no_such_key'"),
        (["hidden=8,16"], "Config field"),
        (["lr="], "empty list"),
        (["lr=fast,slow"], "not a number"),
        (["lr=1e-3,inf"], "lr=inf is outside its domain: lr > 0"),
        (["gamma=0.9,1.5"], "gamma=1.5 is outside its domain: 0 <= gamma <= 1"),
        (["lr=1e-3", "lr=1e-4"], "given twice"),
        (["lr"], "KEY=V1,V2"),
        ([], "at least one --grid"),
    ],
)
def test_bad_grid_exits_2_with_one_line(grid, fragment, capsys):
    argv = ["sweep", "ppo"] + [x for g in grid for x in ("--grid", g)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("jaxrl: error:") and fragment in err


def test_check_grid_rejects_python_api_misuse():
    with pytest.raises(ValueError, match="finite numbers"):
        sweep.check_grid({"lr": ["a"]}, ppo.Config, ppo.HParams)
    with pytest.raises(ValueError, match="finite numbers"):
        sweep.check_grid({"lr": [True]}, ppo.Config, ppo.HParams)
    assert sweep.check_grid({"lr": (1, 2.5)}, ppo.Config, ppo.HParams) == {"lr": [1.0, 2.5]}


def test_rank_settings_iqm_and_ci_match_report():
    rng = np.random.default_rng(0)
    finals = rng.normal(size=(3, 8)) + np.array([[0.0], [5.0], [2.0]])
    settings = [{"lr": 1.0}, {"lr": 2.0}, {"lr": 3.0}]
    rows = sweep.rank_settings(settings, finals, reps=500)
    assert [r["index"] for r in rows] == [1, 2, 0] and [r["rank"] for r in rows] == [1, 2, 3]
    for r in rows:
        x = np.sort(finals[r["index"]])
        assert r["iqm"] == pytest.approx(x[2:6].mean(), abs=1e-12)  # 8 scores: middle 4
        assert r["ci_low"] <= r["iqm"] <= r["ci_high"]
        ref = report.stratified_bootstrap_ci([finals[r["index"]]], report.iqm, reps=500)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(ref[1:])


TINY = {"num_envs": 4, "rollout_len": 16, "num_epochs": 1, "num_minibatches": 2}
TINY |= {"hidden": (16,), "num_evals": 2, "num_eval_envs": 2}
ARGS = ["sweep", "ppo", "--seeds", "2", "--steps", "256", "--no-progress"]
ARGS += [x for k, v in TINY.items() if k != "hidden" for x in ("--set", f"{k}={v}")]
ARGS += ["--set", "hidden=16", "--grid", "lr=1e-4,1e-3", "--grid", "ent_coef=0,0.01"]


def test_sweep_is_one_compile_and_writes_ranked_files(tmp_path):
    out = tmp_path / "sweep"
    assert main([*ARGS, "--out", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    rows = summary["settings"]
    assert summary["compiles"] == 2  # init and the run, for 4 settings x 2 seeds
    assert len(rows) == 4 and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["iqm"] for r in rows] == sorted((r["iqm"] for r in rows), reverse=True)
    assert (out / "sweep.md").read_text().count("\n| ") == 5  # header + 4 settings
    assert (out / "sweep.png").stat().st_size > 0
    for r in rows:
        s = json.loads((out / r["dir"] / "summary.json").read_text())
        assert s["final_returns"] == r["final_returns"] and s["seeds"] == 2
        assert s["hparams"]["ent_coef"] == pytest.approx(r["hparams"]["ent_coef"])
        assert (out / r["dir"] / "metrics.jsonl").exists()


@pytest.mark.slow  # ~60 s CPU: a stopped and a resumed sweep plus a separate train compile
def test_sweep_resumes_and_writes_ranked_files(compile_cache, tmp_path):
    out = tmp_path / "sweep"
    cut = [*ARGS, "--out", str(out), "--checkpoint-every", "1", "--stop-after-chunks", "1"]
    assert main(cut) == 0
    assert not (out / "sweep.json").exists()
    assert main([*ARGS, "--resume", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    rows = summary["settings"]
    assert summary["num_settings"] == 4 and len(rows) == 4
    assert summary["resumed_from_period"] == 1
    assert summary["compiles"] >= 1  # the resumed chunk: one program for 4 settings x 2 seeds
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["iqm"] for r in rows] == sorted((r["iqm"] for r in rows), reverse=True)
    assert {tuple(r["hparams"].items()) for r in rows} == {
        (("lr", a), ("ent_coef", b)) for a in (1e-4, 1e-3) for b in (0.0, 0.01)
    }
    for name in ("sweep.md", "sweep.png"):
        assert (out / name).stat().st_size > 0
    for r in rows:
        sub = out / r["dir"]
        for name in ("summary.json", "metrics.jsonl", "metrics.csv", "curve.png"):
            assert (sub / name).exists(), (sub, name)
        s = json.loads((sub / "summary.json").read_text())
        assert s["hparams"]["lr"] == pytest.approx(r["hparams"]["lr"])
        assert s["final_returns"] == r["final_returns"]

    # Setting 3 (lr=1e-3, ent_coef=0.01) equals a separate seeds-vmapped train run of it.
    cfg = ppo.Config(total_steps=256, **TINY)
    train = ppo.SPEC.make_train(cfg, E.make("cartpole"))
    hp = ppo.SPEC.default_hparams(lr=1e-3, ent_coef=0.01)
    _, m = sweep.over_seeds(train, 2)(sweep.seed_keys(0, 2), hp)
    row = next(r for r in rows if r["index"] == 3)
    np.testing.assert_allclose(row["final_returns"], m["eval_return"][:, -1], rtol=1e-5)


def test_run_sweep_python_api_rejects_config_axis():
    with pytest.raises(ValueError, match="separate compile"):
        runner.run_sweep("ppo", grid={"num_envs": [4, 8]}, steps=256)
