"""Bench: runs end to end on a tiny budget and writes a well-formed bench.json (no timings)."""

import copy
import json
import math

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import CASES, budget_for, cases, harness, run_bench, solve, value_case
from benchmarks.cases import format_table
from jaxrl import compile_cache
from jaxrl.cli import main


def _number(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _check_contender(record: dict, seeds: bool) -> None:
    if record["status"] == "missing":
        assert isinstance(record["error"], str) and record["error"]
        return
    assert record["status"] == "ok"
    if seeds:
        for figures in record["seeds"].values():
            assert _number(figures["per_seed_relative"])
            assert _number(figures["env_steps_per_second"])
    else:
        assert _number(record["env_steps_per_second"]) and record["env_steps_per_second"] > 0
        assert record["compile_seconds"] is None or _number(record["compile_seconds"])


@pytest.mark.slow  # ~6 CPU-minutes: every bench case at tiny size (the largest default test)
def test_bench_tiny_end_to_end(tmp_path, capsys):
    for rival in ("rejax", "stable_baselines3", "sbx"):  # every rival's record is checked
        pytest.importorskip(rival, reason="needs the bench extra: pip install -e '.[bench]'")
    assert main(["bench", "--tiny", "--out", str(tmp_path)]) == 0
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert set(bench["cases"]) == set(CASES)
    assert bench["meta"]["mode"] == "tiny" and "versions" in bench["meta"]
    for name, record in bench["cases"].items():
        assert record["settings"], name
        # "jaxrl", or "jaxrl/<task>" in cases that run several tasks
        jaxrl = [c for n, c in record["contenders"].items() if n.split("/")[0] == "jaxrl"]
        assert jaxrl and all(c["status"] == "ok" for c in jaxrl), name
        for contender in record["contenders"].values():
            _check_contender(contender, seeds=name == "seed_scaling")
        for key, value in record.items():
            if key.startswith("ratio_"):
                values = value.values() if isinstance(value, dict) else [value]
                assert all(_number(v) for v in values), key
    ppo = bench["cases"]["ppo_cartpole"]
    settings = ppo["settings"]["jax_contenders"]
    assert settings["num_envs"] == 5 and settings["hidden"] == [64, 64]
    assert _number(ppo["contenders"]["jaxrl"]["final_return"])
    for name, contender in ppo["contenders"].items():
        if name != "jaxrl" and contender["status"] == "ok":
            assert _number(ppo[f"ratio_steps_per_second_vs_{name}"])
    _check_ppo_mjx(bench["cases"]["ppo_mjx"], tasks=bench["meta"]["budget"]["mjx_tasks"])
    _check_sac_pendulum(bench["cases"]["sac_pendulum"])
    _check_ppo_cartpole_solve(bench["cases"]["ppo_cartpole_solve"])
    _check_value_cartpole(bench["cases"]["value_cartpole"])
    out = capsys.readouterr().out
    assert "env steps/s" in out and "jax.device_put_replicated" in out


def _check_sac_pendulum(record: dict) -> None:
    settings = record["settings"]
    assert settings["hidden"] and settings["batch_size"] == 256 and settings["utd_ratio"] == 1
    assert set(record["contenders"]) == {"jaxrl", "rejax", "sbx", "sb3", "jaxrl_td3", "rejax_td3"}
    assert record["settings"]["td3"]["policy_delay"] == 2
    for name, contender in record["contenders"].items():
        if contender["status"] == "missing":
            continue
        assert contender["env_steps"] == settings["steps"][name]
        assert _number(contender["final_return"])
        assert len(contender["eval_steps"]) == len(contender["eval_returns"]) > 0
        _check_solve(contender, seeds=2 if name in ("jaxrl", "rejax") else 1)
        if name in ("jaxrl", "jaxrl_td3"):
            continue
        assert _number(record[f"ratio_steps_per_second_vs_{name}"])
        mine = record["contenders"]["jaxrl_td3" if name == "rejax_td3" else "jaxrl"]
        both = contender["seconds_to_threshold"] and mine["seconds_to_threshold"]
        assert (f"ratio_time_to_solve_vs_{name}" in record) == bool(both)


def _check_solve(contender: dict, seeds: int) -> None:
    """Time-to-solve fields (benchmarks.solve) of a tiny-mode contender."""
    per_seed, seconds = contender["steps_to_threshold"], contender["seconds_to_threshold"]
    assert len(per_seed) == seeds
    assert (contender["median_steps_to_threshold"] is None) == (seconds is None)
    assert seconds is None or (_number(seconds) and seconds > 0)


def _check_ppo_cartpole_solve(record: dict) -> None:
    assert record["settings"]["threshold"] == 15.0  # tiny mode's reachable threshold
    names = {"jaxrl", "jaxrl_tuned", "jaxrl_sb3_zoo", "rejax", "sb3"}
    assert set(record["contenders"]) == names
    for name in names - {"sb3"}:
        _check_solve(record["contenders"][name], seeds=2)
        assert "seconds_to_threshold_2_seeds" in record["contenders"][name]
    pairs = {"rejax": "jaxrl", "tuned_rejax": "jaxrl_tuned", "sb3": "jaxrl_sb3_zoo"}
    pairs["tuned_sb3"] = "jaxrl_tuned"
    for label, ours in pairs.items():
        theirs = record["contenders"][label.removeprefix("tuned_")]
        both = theirs["seconds_to_threshold"] and record["contenders"][ours]["seconds_to_threshold"]
        key = f"ratio_time_to_solve_vs_{label}"
        assert (key in record) == bool(both), key
        assert key not in record or _number(record[key])


def _check_value_cartpole(record: dict) -> None:
    """DQN and PQN against rejax's on rejax's settings: speed, compile and time to solve."""
    settings = record["settings"]
    assert settings["dqn"]["num_envs"] == 10 and settings["pqn"]["rollout_len"] == 128
    assert set(record["contenders"]) == {"jaxrl_dqn", "rejax_dqn", "jaxrl_pqn", "rejax_pqn"}
    for algo in ("dqn", "pqn"):
        ours, theirs = (record["contenders"][f"{lib}_{algo}"] for lib in ("jaxrl", "rejax"))
        _check_solve(ours, seeds=settings["seeds"][algo])
        _check_solve(theirs, seeds=settings["seeds"][algo])
        assert len(ours["compile_seconds_each"]) == settings["compile_pairs"]
        for name in ("steps_per_second", "compile_speedup"):
            assert _number(record[f"ratio_{name}_vs_rejax_{algo}"]) > 0
        both = ours["seconds_to_threshold"] and theirs["seconds_to_threshold"]
        assert (f"ratio_time_to_solve_vs_rejax_{algo}" in record) == bool(both)


def _check_ppo_mjx(record: dict, tasks: list[str]) -> None:
    assert set(record["settings"]["tasks"]) == set(tasks)
    assert any("device_put_replicated" in note for note in record["settings"]["notes"])
    for task in tasks:
        settings = record["settings"]["tasks"][task]
        brax, jaxrl = settings["brax"], settings["jaxrl"]
        assert jaxrl["num_envs"] == brax["num_envs"] and jaxrl["num_evals"] == brax["num_evals"] - 1
        assert jaxrl["total_steps"] == settings["env_steps"] >= brax["num_timesteps"]
        assert jaxrl["hidden"] == record["settings"]["network"]["hidden"]
        contenders = {n: record["contenders"][f"{n}/{task}"] for n in ("jaxrl", "brax")}
        assert record["contenders"][f"random_actions/{task}"]["env_steps_per_second"] > 0
        for name, contender in contenders.items():
            if contender["status"] == "missing":
                continue
            assert _number(contender["final_return"])
            assert _number(record[f"{name}_ppo_fraction_of_raw"][task])
        _check_solve(contenders["jaxrl"], seeds=1)
        if contenders["brax"]["status"] == "ok":
            assert len(contenders["brax"]["eval_returns"]) == brax["num_evals"]
            assert _number(record["ratio_steps_per_second_vs_brax"][task])
            assert _number(record["ratio_time_to_solve_vs_brax"][task])  # tiny: threshold -1e9


def test_bench_unknown_case_is_a_usage_error(capsys):
    assert main(["bench", "--cases", "nosuch"]) == 2
    assert "unknown bench case" in capsys.readouterr().err


def test_missing_contender_is_reported():
    module, record = harness.try_import("no_such_contender_module")
    assert module is None
    assert record["status"] == "missing" and "no_such_contender_module" in record["error"]


def test_time_to_solve_figures():
    steps = [100, 200, 300, 400]
    returns = np.array([[0, 5, 9, 9], [0, 0, 0, 0], [9, 9, 9, 9]])
    per_seed = solve.first_steps(steps, returns, 5.0)
    assert per_seed == [200, None, 100]
    assert solve.median_steps(per_seed) == 200.0  # median of (200, inf, 100)
    assert solve.median_steps([None, None, 100]) is None
    figures = solve.jax_figures(per_seed, {1: 2.0, 8: 3.0}, {1: [4.0, 6.0], 8: [8.0]}, 400, 9.0)
    assert figures["seconds_to_threshold"] == pytest.approx(2.0 + 5.0 * 200 / 400)
    assert figures["seconds_to_threshold_8_seeds"] == pytest.approx(3.0 + 8.0 * 200 / 400)
    assert figures["env_steps_per_second"] == pytest.approx(400 / 5.0)
    seq = solve.sequential_figures([3.0, None, 5.0], [10, None, 20], 8)
    assert seq["seconds_to_threshold"] == 5.0 and seq["seconds_to_threshold_8_seeds"] == 40.0
    record = {"contenders": {"a": figures, "b": seq}}
    solve.ratios(record, "a", "b", "b", 8)
    assert record["ratio_time_to_solve_vs_b"] == pytest.approx(5.0 / 4.5)
    assert record["ratio_time_to_solve_8_seeds_vs_b"] == pytest.approx(40.0 / 7.0)


def test_paired_ratio_is_the_median_of_pairs():
    assert harness.paired_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 1.0]) == pytest.approx(3.0)


def test_compile_log_counts_compilations():
    with harness.CompileLog() as log:
        jax.jit(lambda x: x * 3 + 1)(jnp.ones(7))
    assert log.count >= 1 and log.seconds > 0


def test_bench_cases_compile_with_the_persistent_cache_off(monkeypatch):
    """Every case times compiles: none may load a program an earlier run cached."""
    seen = []

    def probe(budget, results):
        seen.append(compile_cache.active_dir())
        return {}

    monkeypatch.setitem(CASES, "probe", probe)
    run_bench(budget_for("tiny"), ["probe"], log=lambda _: None)
    assert seen == [None] and compile_cache.active_dir() is not None


def test_replicate_shim_stacks_one_copy_per_device():
    devices = jax.local_devices()
    out = harness._replicate({"a": jnp.arange(3.0)}, devices)
    assert out["a"].shape == (len(devices), 3)
    assert harness.restore_device_put_replicated().startswith("bench:")
    assert callable(jax.device_put_replicated)


def test_legacy_gymnax_wrapper_survives_deepcopy():
    env, params = gymnax.make("CartPole-v1")
    wrapped = copy.deepcopy(harness.GuardedLegacyStep(env))
    assert wrapped.num_actions == env.num_actions


def test_table_ends_with_each_case_wall_seconds():
    bench = {"meta": {"case_seconds": {"a": 12.4, "b": 30.0}}, "cases": {}}
    assert format_table(bench).splitlines()[-1] == (
        "wall seconds per case: a 12, b 30; cases total 42 s"
    )


def test_seed_scaling_reuses_the_solve_runs_only_when_they_cover_every_count():
    """``ppo_cartpole_solve`` ran 1 and ``solve_seeds`` seeds on the same settings: quick's
    seed counts are read from it; a count it did not run means seed_scaling runs its own."""
    budget = budget_for("quick")
    n = budget.solve_seeds
    record = {"status": "ok", "compile_seconds": 2.0, f"compile_seconds_{n}_seeds": 3.0}
    record |= {"run_seconds": [1.0, 3.0, 2.0], f"run_seconds_{n}_seeds": [8.0]}
    results = {"ppo_cartpole_solve": {"contenders": {"jaxrl": record, "rejax": record}}}
    per_count, steps = cases._solve_seed_runs(budget, results)
    assert steps == budget.solve_steps
    assert per_count["jaxrl"]["1"] == {
        "warmup_seconds": 2.0,
        "run_seconds": [1.0, 3.0, 2.0],
        "median_seconds": 2.0,
    }
    assert per_count["rejax"][str(n)]["median_seconds"] == 8.0
    assert cases._solve_seed_runs(budget_for("full"), results) is None  # 4 and 64 seeds too
    missing = {"ppo_cartpole_solve": {"contenders": {"jaxrl": record}}}
    assert cases._solve_seed_runs(budget, missing) is None


def test_value_case_reads_both_libraries_curves_as_seeds_by_evaluations():
    one = value_case._curves({"eval_return": np.arange(3.0), "env_steps": np.arange(3)}, "jaxrl", 5)
    assert one[0] == [0, 1, 2] and one[1].shape == (1, 3)
    rejax = (None, (None, np.ones((4, 3, 16))))  # [seeds, evaluations, episodes]
    steps, returns = value_case._curves(rejax, "rejax", 5)
    assert steps == [5, 10, 15] and returns.shape == (4, 3)
