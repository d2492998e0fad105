"""GPU bench suite: ``jaxrl bench --suite gpu --tiny`` end to end on the CPU, and its CLI errors.

Timings are not checked (tiny budgets on a CPU); the record shapes, the published
entries and the ratios are.
"""

import json
import math

import pytest

from benchmarks import cases
from benchmarks.gpu_suite import GPU_CASES, PUBLISHED, gpu_budget
from jaxrl.cli import main


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_contender(name: str, record: dict) -> None:
    if record["status"] == "missing":
        assert isinstance(record["error"], str) and record["error"], name
        return
    assert record["status"] == "ok", name
    for key in ("compile_seconds", "env_steps_per_second", "final_return"):
        assert _number(record[key]), (name, key)
    assert record["env_steps_per_second"] > 0 and record["env_steps"] > 0, name


def _ratios(record: dict) -> dict[str, float]:
    """Every ratio of a record, per-count dicts flattened."""
    out = {}
    for key, value in record.items():
        if key.startswith("ratio_"):
            items = value.items() if isinstance(value, dict) else [("", value)]
            out.update({f"{key}/{sub}": v for sub, v in items})
    return out


@pytest.mark.slow  # 60-90 s on 2 cores (every GPU case compiled), like bench's own tiny run
def test_gpu_suite_tiny_end_to_end(tmp_path, capsys):
    assert main(["bench", "--suite", "gpu", "--tiny", "--out", str(tmp_path)]) == 0
    bench = json.loads((tmp_path / "bench.json").read_text())
    meta = bench["meta"]
    assert meta["suite"] == "gpu" and meta["mode"] == "tiny" and "versions" in meta
    assert set(meta["case_seconds"]) == set(GPU_CASES) == set(bench["cases"])
    for name, record in bench["cases"].items():
        assert record["settings"]["source"] and record["settings"]["notes"], name
        contenders = record["contenders"]
        ours = lambda n: n.split("/")[0].startswith("jaxrl")
        jaxrl = [c for n, c in contenders.items() if ours(n)]
        assert jaxrl and all(c["status"] == "ok" for c in jaxrl), name
        for contender_name, contender in contenders.items():
            _check_contender(f"{name}/{contender_name}", contender)
        # A ratio needs a measured rival: rejax is in the bench extra, not in dev, so
        # without it jaxrl's side runs alone and no ratio may be invented.
        rivals = [c for n, c in contenders.items() if not ours(n) and c["status"] == "ok"]
        ratios = _ratios(record)
        assert all(_number(v) and v > 0 for v in ratios.values()), (name, ratios)
        assert bool(ratios) == bool(rivals), (name, ratios, rivals)
        # Published figures: kept apart from the measured contenders, each with a source.
        assert record["published"] == PUBLISHED[name]
        for entry in record["published"].values():
            assert entry["source"]
            sps = entry.get("env_steps_per_second")
            assert sps is None or (_number(sps) and entry["hardware"])

    cartpole = bench["cases"]["purejaxrl_cartpole"]
    assert cartpole["settings"]["both"]["num_envs"] == 4
    assert cartpole["settings"]["both"]["rollout_len"] == 128
    counts = [str(n) for n in gpu_budget("tiny").seed_counts]
    for n in counts:
        assert cartpole["contenders"][f"jaxrl/{n}"]["num_seeds"] == int(n)
    if cartpole["contenders"].get(f"rejax/{counts[0]}", {}).get("status") == "ok":
        assert set(cartpole["ratio_steps_per_second_vs_rejax"]) == set(counts)

    hopper = bench["cases"]["rejax_hopper"]
    for algo in ("ppo", "sac"):
        ours, theirs = hopper["contenders"][f"jaxrl_{algo}"], hopper["contenders"][f"rejax_{algo}"]
        assert ours["env_steps"] == hopper["settings"]["env_steps"][algo]
        if theirs["status"] == "ok":
            assert theirs["env_steps"] == ours["env_steps"]
            assert _number(hopper[f"ratio_steps_per_second_vs_rejax_{algo}"])

    playground = bench["cases"]["brax_playground"]
    settings = playground["settings"]
    assert settings["brax"]["unroll_length"] == 30 and settings["brax"]["discounting"] == 0.995
    assert settings["jaxrl"]["num_envs"] == settings["brax"]["num_envs"]
    if playground["contenders"]["brax"]["status"] == "ok":
        assert _number(playground["ratio_steps_per_second_vs_brax"])

    out = capsys.readouterr().out
    assert "env steps/s" in out and "published figures" in out
    assert cases.format_table(bench)  # the CPU suite's table reads these records


def test_gpu_suite_quick_is_a_usage_error(capsys):
    assert main(["bench", "--suite", "gpu", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxrl: error:") and "--quick" in err and err.count("\n") == 1


def test_gpu_suite_unknown_case_is_a_usage_error(capsys):
    assert main(["bench", "--suite", "gpu", "--cases", "ppo_cartpole"]) == 2
    err = capsys.readouterr().err
    assert "unknown bench case" in err and "purejaxrl_cartpole" in err and err.count("\n") == 1


def test_gpu_budget_sizes():
    assert gpu_budget("gpu").seed_counts == (1, 256, 2048)
    assert gpu_budget("gpu").cartpole_steps == 500_000
    with pytest.raises(ValueError, match="unknown gpu suite size"):
        gpu_budget("huge")
