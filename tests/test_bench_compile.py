"""``jaxrl bench --suite compile``: its cases, a cold then a warm process on one small case
(the warm one's programs come from the cache, checked through JAX's cache events), and its
table."""

import json

from benchmarks import compile_suite
from jaxrl import agents
from jaxrl.cli import main


def test_the_suite_covers_every_algorithm_and_the_mjx_envs():
    cases = compile_suite.cases()
    assert set(agents.names()) <= set(cases)
    for algo in ("ppo", "sac", "td3"):
        for env in ("brax/inverted_pendulum", "playground/CartpoleSwingup"):
            assert cases[f"{algo}@{env}"].env == env
    assert cases["gpayn"].env == "grasp/box" and cases["ppo"].config["total_steps"] > 0
    argv = compile_suite.train_argv(cases["sac"], compile_suite.Path("/tmp/x"))
    assert argv[3:7] == ["train", "sac", "--env", "pendulum"] and "warmup_steps=1000" in argv


def test_an_unknown_compile_case_is_a_usage_error(capsys):
    assert main(["bench", "--suite", "compile", "--cases", "nosuch"]) == 2
    assert "unknown bench case(s) nosuch; known in the compile suite" in capsys.readouterr().err
    assert main(["bench", "--suite", "compile", "--quick"]) == 2


# two fresh processes that import jax and compile PPO: ~15 s on 2 quiet cores
def test_a_warm_process_loads_every_program_the_cold_one_wrote(tmp_path):
    case = compile_suite.Case("ppo", "cartpole", {"total_steps": 2048, "num_evals": 2}, True)
    bench = compile_suite.run_compile_bench(["ppo"], log=lambda _: None, only={"ppo": case})
    rec = bench["cases"]["ppo"]
    cold, warm = rec["cold"], rec["warm"]
    assert cold["status"] == warm["status"] == "ok", rec
    assert cold["cache_hits"] == 0 and cold["cache_written"] >= 1
    assert warm["cache_hits"] == cold["cache_written"] and warm["cache_written"] == 0
    assert warm["programs"] == cold["programs"] >= 2
    assert warm["hlo_instructions"] == cold["hlo_instructions"] > 1000
    assert rec["ratio_compile_cold_over_warm"] > 0
    assert bench["done_when"]["ppo_ratio_backend_compile_cold_over_warm"] > 0
    table = compile_suite.format_compile_table(json.loads(json.dumps(bench)))
    assert "ppo" in table and f"{warm['cache_hits']} of {warm['programs']}" in table
