"""Pins each pytest process to one JAX CPU device, and its persistent compilation cache to
a fresh temporary directory.

The CLI exposes every CPU core as a device (``jaxrl.sweep.use_cpu_cores``) when it is
the first JAX work in a process; in-process CLI tests would otherwise change the device
count for every later test in that worker, depending on test order. Multi-device runs
are tested in subprocesses (``test_sweep.py``).

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
