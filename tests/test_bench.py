"""Bench: runs end to end on a tiny budget and writes a well-formed bench.json (no timings)."""

import copy
import json
import math

import gymnax
import pytest

from jaxrl.bench import CASES, harness
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


def test_bench_tiny_end_to_end(tmp_path, capsys):
    assert main(["bench", "--tiny", "--out", str(tmp_path)]) == 0
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert set(bench["cases"]) == set(CASES)
    assert bench["meta"]["mode"] == "tiny" and "versions" in bench["meta"]
    for name, record in bench["cases"].items():
        assert record["settings"], name
        assert record["contenders"]["jaxrl"]["status"] == "ok"
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
    assert "env steps/s" in capsys.readouterr().out


def test_bench_unknown_case_is_a_usage_error(capsys):
    assert main(["bench", "--cases", "nosuch"]) == 2
    assert "unknown bench case" in capsys.readouterr().err


def test_missing_contender_is_reported():
    module, record = harness.try_import("no_such_contender_module")
    assert module is None
    assert record["status"] == "missing" and "no_such_contender_module" in record["error"]


def test_paired_ratio_is_the_median_of_pairs():
    assert harness.paired_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 1.0]) == pytest.approx(3.0)


def test_legacy_gymnax_wrapper_survives_deepcopy():
    env, params = gymnax.make("CartPole-v1")
    wrapped = copy.deepcopy(harness.GuardedLegacyStep(env))
    assert wrapped.num_actions == env.num_actions
