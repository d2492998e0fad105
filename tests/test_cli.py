"""CLI: bad input gives one line and exit code 2; a tiny run writes every output file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrl import cli
from jaxrl.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["train", "nosuchalgo"], "unknown algorithm"),
        (["train", "ppo", "--env", "nosuchenv"], "unknown environment"),
        (["train", "ppo", "--set", "nosuch=1"], "unknown key 'nosuch'"),
        (["train", "ppo", "--set", "num_envs=abc"], "expected a value of type int"),
        (["train", "ppo", "--set", "lr=fast"], "expected a value of type float"),
        (["train", "ppo", "--set", "lr"], "KEY=VALUE"),
        (["train", "ppo", "--steps", "-5"], "--steps must be positive"),
        (["train", "ppo", "--seeds", "0"], "--seeds must be positive"),
        (["train", "ppo", "--seeds", "two"], "invalid int value"),
        (["train", "sac", "--env", "cartpole"], "continuous"),
        (["train", "ppo", "--set", "num_minibatches=7"], "divisible"),
        (["train", "ppo", "--steps", "10"], "num_evals"),
        (["train"], "algo"),
        ([], "missing command"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("jaxrl: error:") and fragment in err


def test_console_script_bad_algo_has_no_traceback():
    out = subprocess.run(
        [sys.executable, "-m", "jaxrl", "train", "nosuchalgo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "unknown algorithm" in out.stderr


def test_bench_without_a_checkout_says_what_to_do(monkeypatch, tmp_path, capsys):
    """An installed jaxrl (no benchmarks/ beside the package): one line, exit 2."""
    monkeypatch.setattr(cli, "checkout_root", lambda: tmp_path)
    assert main(["bench", "--quick", "--cases", "ppo_cartpole", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("jaxrl: error:") and "checkout" in err
    assert "pip install -e '.[bench]'" in err
    assert not (tmp_path / "bench.json").exists()


def test_bench_finds_the_checkout_harness_off_the_path(tmp_path):
    """With the checkout off sys.path (the console script's case, run elsewhere),
    ``jaxrl bench`` still imports the benchmarks/ beside the jaxrl it runs."""
    code = (
        "import sys; root = sys.argv[1]; sys.path.insert(0, root)\n"
        "from jaxrl.cli import main\n"
        "sys.path[:] = [p for p in sys.path if p != root]\n"
        "rc = main(['bench', '--cases', 'nosuch'])\n"
        "print(sys.modules['benchmarks'].__file__); sys.exit(rc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "unknown bench case(s) nosuch" in out.stderr
    assert Path(out.stdout.strip()).resolve() == ROOT / "benchmarks" / "__init__.py"


def test_tiny_run_writes_outputs(tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "ppo",
            "--seeds",
            "2",
            "--steps",
            "8192",
            "--no-progress",
            "--set",
            "num_evals=4",
            "--set",
            "lr=1e-3",
            "--out",
            str(out),
            "--tensorboard",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    for field in (
        "algo",
        "env",
        "seeds",
        "steps",
        "final_return_mean",
        "final_return_std",
        "steps_per_second",
        "compile_seconds",
    ):
        assert field in summary, field
    assert summary["algo"] == "ppo" and summary["env"] == "cartpole" and summary["seeds"] == 2
    assert summary["steps"] == 8192 and summary["hparams"]["lr"] == pytest.approx(1e-3)
    # evaluation apart from training: an estimate within the run, and how it was bounded
    assert 0 < summary["eval_seconds"] < summary["run_seconds"]
    assert summary["eval_fraction"] == pytest.approx(
        summary["eval_seconds"] / summary["run_seconds"]
    )
    assert summary["eval_episodes"] == 16 and summary["eval_episode_limit"] == 500
    assert summary["eval_episodes_capped"] is False and summary["hlo_instructions"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4
    assert {r["seed"] for r in rows} == {0, 1}
    assert rows[-1]["env_steps"] == 8192
    finals = sorted(r["eval_return"] for r in rows if r["env_steps"] == 8192)
    assert summary["final_return_mean"] == pytest.approx(sum(finals) / 2, rel=1e-5)
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert any((out / "tb").iterdir())


def test_list_and_help_name_every_registered_algorithm(capsys):
    from jaxrl import agents

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for name in agents.names():
        spec = agents.get(name)
        assert spec.name == name  # the registry key is the spec's name
        row = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert spec.default_env in row and ",".join(spec.action_kinds) in row
        assert name in help_text
    assert "gymnax/<id>" in out and "playground/<id>" in out
    assert "--env-arg KEY=VALUE" in out and "episode_length" in out  # the env options
    assert "--env-arg" in help_text
