"""Aggregate metrics against hand computations; `jaxrl plot` on two run folders."""

import json

import numpy as np
import pytest

from jaxrl import report
from jaxrl.cli import main


def test_iqm_drops_a_quarter_from_each_end():
    x = np.array([9.0, 1.0, 7.0, 3.0, 100.0, 5.0, -50.0, 4.0])  # sorted: -50 1 3 4 5 7 9 100
    assert report.iqm(x) == pytest.approx(np.mean([3.0, 4.0, 5.0, 7.0]))
    y = np.arange(10.0)  # floor(10 / 4) = 2 cut from each end
    assert report.iqm(y) == pytest.approx(np.mean(np.arange(2.0, 8.0)))
    batch = np.stack([x, x[::-1]])
    np.testing.assert_allclose(report.iqm(batch), [4.75, 4.75])


def test_optimality_gap_counts_shortfall_below_threshold():
    x = np.array([0.2, 0.9, 1.0, 1.5])
    assert report.optimality_gap(x) == pytest.approx(((1 - 0.2) + (1 - 0.9)) / 4)
    assert report.optimality_gap(x, threshold=0.5) == pytest.approx((0.5 - 0.2) / 4)


def test_performance_profile_is_fraction_above_tau():
    x = np.array([0.1, 0.5, 0.5, 0.9])
    np.testing.assert_allclose(
        report.performance_profile(x, np.array([0.0, 0.5, 1.0])), [1.0, 0.25, 0.0]
    )


def test_stratified_bootstrap_ci_contains_point_estimate():
    rng = np.random.default_rng(1)
    tasks = [rng.normal(0.5, 0.2, 10), rng.normal(0.8, 0.1, 5)]
    for name, fn in report.aggregate_fns().items():
        point, low, high = report.stratified_bootstrap_ci(tasks, fn, reps=500)
        assert low <= point <= high, name
        assert point == pytest.approx(float(fn(np.concatenate(tasks))))
    # Resamples are stratified: each task keeps its own number of scores.
    resampled = report._resample([np.zeros(3), np.ones(2)], 7, rng)
    assert resampled.shape == (7, 5) and (resampled[:, :3] == 0).all()
    assert (resampled[:, 3:] == 1).all()


def test_bootstrap_band_brackets_the_mean():
    returns = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    mid, low, high = report.bootstrap_band(returns)
    np.testing.assert_allclose(mid, [2.0, 20.0])
    assert (low <= mid).all() and (mid <= high).all() and (low >= returns.min(0)).all()


def _fake_run(path, algo, env, finals, num_evals=5):
    path.mkdir(parents=True)
    rows = []
    for seed, final in enumerate(finals):
        for e in range(num_evals):
            ret = final * (e + 1) / num_evals
            rows.append({"seed": seed, "env_steps": (e + 1) * 1000, "eval_return": ret})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps({"algo": algo, "env": env}))


def test_plot_two_run_folders_writes_pngs_and_table(tmp_path, capsys):
    _fake_run(tmp_path / "a", "ppo", "cartpole", [500.0, 450.0, 300.0, 480.0])
    _fake_run(tmp_path / "b", "sac", "cartpole", [200.0, 250.0, 100.0])
    out = tmp_path / "plots"
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    for name in ("curves.png", "aggregates.png", "profiles.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    table = (out / "results.md").read_text()
    assert "| ppo |" in table and "| sac |" in table and "IQM" in table
    # Normalised by cartpole's reference range [0, 500]: ppo IQM of its 4 seeds.
    expected = report.iqm(np.array([500.0, 450.0, 300.0, 480.0]) / 500)
    assert f"{expected:.3f} [" in table
    assert "wrote" in capsys.readouterr().out


def test_plot_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a jaxrl run folder" in capsys.readouterr().err
