"""Pins each pytest process to one JAX CPU device, and its persistent compilation cache to
a fresh temporary directory.

The CLI exposes every CPU core as a device (``jaxrl.sweep.use_cpu_cores``) when it is
the first JAX work in a process; in-process CLI tests would otherwise change the device
count for every later test in that worker, depending on test order. Multi-device runs
are tested in subprocesses (``test_sweep.py``).

The longest tests start first (``LONGEST_FIRST``), so the two xdist workers finish
together instead of one waiting on the other's last long test.

The compilation cache (``jaxrl.compile_cache``, on by default) goes to a directory of this
process (``JAXRL_COMPILE_CACHE``, inherited by the CLI subprocesses tests start), never to
the user's ``~/.cache``, so no result depends on an earlier session.
"""

import atexit
import os
import shutil
import tempfile

import jax
import pytest

from jaxrl import compile_cache as cc

jax.config.update("jax_num_cpu_devices", 1)
_CACHE = tempfile.mkdtemp(prefix="jaxrl-test-xla-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ[cc.ENV_VAR] = _CACHE
cc.configure()


#: Tests of about 30 s or more on the 2-core CI machine (``--durations``), longest first.
#: xdist hands out the first quarter of the collected tests round robin, so these spread
#: over both workers at the start. A renamed test only loses its place in the order.
LONGEST_FIRST = (
    "tests/test_distributed.py::test_two_processes_equal_one_and_resume_exactly",
    "tests/test_notebooks.py::test_notebook_runs[02_sweeps]",
    "tests/test_notebooks.py::test_notebook_runs[06_planning]",
    "tests/test_notebooks.py::test_notebook_runs[03_mjx]",
    "tests/test_drama_atari.py::test_cli_trains_drama_on_a_real_pong_rom",
    "tests/test_ale.py::test_ppo_trains_on_a_real_rom_in_one_program",
    "tests/test_mbrcsl.py::test_mbrcsl_rollouts_stitch_beyond_the_dataset",
    "tests/test_sweep.py::test_cli_spreads_seeds_over_cpu_cores_and_resumes_exactly",
    "tests/test_drama.py::test_imagination_shapes_and_update_determinism",
    "tests/test_drama.py::test_acting_belief_is_the_last_steps_rerun_from_a_zero_state",
    "tests/test_ppo_rnn.py::test_train_is_deterministic_and_vmaps_over_seeds",
    "tests/envs/test_adapters.py::test_brax_inverted_pendulum",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``LONGEST_FIRST`` at the front, in its order; every other test keeps its place."""
    rank = {nodeid: i for i, nodeid in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))


@pytest.fixture(autouse=True)
def _compile_cache_kept_on():
    """An in-process run with the cache off (``--no-compile-cache``) turns it off for the
    whole worker; turn it back on so no later test depends on test order."""
    yield
    if cc.active_dir() is None:
        cc.configure()


@pytest.fixture(scope="module")
def compile_cache():
    """Every compile written to the session's cache, however short, so a resumed run or a
    repeated CLI call loads the first one's programs."""
    before = jax.config.jax_persistent_cache_min_compile_time_secs
    cc.configure(min_compile_seconds=0.0)
    yield cc.active_dir()
    cc.configure(min_compile_seconds=before)
