"""Many hosts for real: two processes on 127.0.0.1 (JAX's multi-process runtime, gloo
collectives on CPU, 2 devices each) equal one process with the same 4 devices, bitwise."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jaxrl import sweep

TIMEOUT_S = 300  # a hung coordinator or collective fails the test instead of stalling CI
SMALL = ["--steps", "2048", "--no-progress", "--set", "num_evals=2", "--set", "num_envs=4"]
SMALL += ["--set", "num_epochs=2"]


def test_batch_devices_takes_the_same_number_from_each_process():
    devs = [SimpleNamespace(id=i, process_index=i // 2) for i in range(4)]
    assert sweep.batch_devices(4, devs) == devs
    assert sweep.batch_devices(6, devs) == [devs[0], devs[2]]  # 4 does not divide 6
    assert sweep.batch_devices(3, devs[:2]) == devs[:1]  # one process: as before
    with pytest.raises(ValueError, match="multiple of 2"):
        sweep.batch_devices(3, devs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(num_devices: int, **extra: str) -> dict[str, str]:
    drop = ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "JAX_COORDINATOR_ADDRESS", "JAX_PROCESS_ID")
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "JAX_NUM_PROCESSES"}
    return {**env, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(num_devices), **extra}


def _one(args: list[str]) -> None:
    """``python -m jaxrl ARGS`` in one process with 4 CPU devices."""
    out = subprocess.run(
        [sys.executable, "-m", "jaxrl", *args],
        env=_env(4),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def _two(args: list[str], args_1: list[str]) -> None:
    """``python -m jaxrl ARGS --distributed`` as process 0 and ``ARGS_1`` as process 1,
    2 CPU devices each, coordinated on a free loopback port."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxrl", *a, "--distributed"],
            env=_env(
                2,
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                JAX_NUM_PROCESSES="2",
                JAX_PROCESS_ID=str(i),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, a in enumerate((args, args_1))
    ]
    try:
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()  # no-op for a process that has exited
    for i, (p, log) in enumerate(zip(procs, logs, strict=True)):
        assert p.returncode == 0, f"process {i}:\n{log[-3000:]}"


def _final_state(run_dir: Path) -> dict[str, np.ndarray]:
    path = sorted(run_dir.glob("checkpoints/*/state.npz"))[-1]
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _same_run(a: Path, b: Path) -> None:
    """Equal metrics, final returns and final checkpointed state, bitwise."""
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["final_returns"] == sb["final_returns"]
    assert sa["num_devices"] == sb["num_devices"] == 4
    fa, fb = _final_state(a), _final_state(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_two_processes_equal_one_and_resume_exactly(tmp_path):
    """``train --distributed`` on 2 processes x 2 devices equals 1 process x 4 devices
    bitwise (each device runs the same seed in the same program); a two-process run cut
    after one chunk and resumed equals both; only process 0 writes files."""
    args = ["train", "ppo", "--seeds", "4", *SMALL, "--checkpoint-every", "1"]
    one, two, cut = tmp_path / "one", tmp_path / "two", tmp_path / "cut"
    elsewhere = tmp_path / "process1"  # process 1's --out: it must write nothing there
    _one([*args, "--out", str(one)])
    _two([*args, "--out", str(two)], [*args, "--out", str(elsewhere)])
    _same_run(one, two)
    _two(
        [*args, "--out", str(cut), "--stop-after-chunks", "1"],
        [*args, "--out", str(elsewhere), "--stop-after-chunks", "1"],
    )
    assert not (cut / "summary.json").exists()
    _two([*args, "--resume", str(cut)], [*args, "--resume", str(cut), "--out", str(elsewhere)])
    assert json.loads((cut / "summary.json").read_text())["resumed_from_period"] == 1
    assert json.loads((cut / "summary.json").read_text())["num_processes"] == 2
    _same_run(one, cut)
    assert not elsewhere.exists()


@pytest.mark.slow  # about a minute on 2 cores: two more compiles of PPO
def test_sweep_on_two_processes_equals_one(tmp_path):
    """``sweep --distributed``: 2 settings take one device of each process, as 2 of one
    process's 4 devices; each setting's results equal the one-process sweep's bitwise."""
    args = ["sweep", "ppo", "--seeds", "2", *SMALL, "--grid", "lr=0.001,0.0003"]
    one, two, elsewhere = tmp_path / "one", tmp_path / "two", tmp_path / "process1"
    _one([*args, "--out", str(one)])
    _two([*args, "--out", str(two)], [*args, "--out", str(elsewhere)])
    assert not elsewhere.exists()
    ranked = [json.loads((d / "sweep.json").read_text())["settings"] for d in (one, two)]
    assert [r["final_returns"] for r in ranked[0]] == [r["final_returns"] for r in ranked[1]]
    for setting in ("00_lr=0.001", "01_lr=0.0003"):
        a, b = (d / setting / "metrics.jsonl" for d in (one, two))
        assert a.read_text() == b.read_text()
