"""The persistent compilation cache: where it lives, and that a second process loads it."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxrl import compile_cache as cc


@pytest.mark.parametrize(
    ("environ", "jax_dir", "enabled", "want"),
    [
        ({}, None, True, "/home/u/.cache/jaxrl/xla"),
        ({"XDG_CACHE_HOME": "/x"}, None, True, "/x/jaxrl/xla"),
        ({"XDG_CACHE_HOME": ""}, None, True, "/home/u/.cache/jaxrl/xla"),
        ({}, "/jax/dir", True, "/jax/dir"),  # a directory the user set for JAX is kept
        ({"XDG_CACHE_HOME": "/x"}, "/jax/dir", True, "/jax/dir"),
        ({cc.ENV_VAR: "/mine"}, "/jax/dir", True, "/mine"),
        ({cc.ENV_VAR: "on", "XDG_CACHE_HOME": "/x"}, None, True, "/x/jaxrl/xla"),
        ({cc.ENV_VAR: "1"}, "/jax/dir", True, "/jax/dir"),
        ({cc.ENV_VAR: ""}, "/jax/dir", True, None),
        ({cc.ENV_VAR: "0"}, None, True, None),
        ({cc.ENV_VAR: " OFF "}, None, True, None),
        ({cc.ENV_VAR: "/mine"}, "/jax/dir", False, None),  # --no-compile-cache
        ({}, None, False, None),
    ],
)
def test_resolve_dir_rules(environ, jax_dir, enabled, want):
    assert cc.resolve_dir(environ, jax_dir, enabled=enabled, home="/home/u") == want


def test_configure_keeps_a_user_jax_dir_and_turns_off(tmp_path, monkeypatch):
    before = jax.config.jax_compilation_cache_dir
    user = str(tmp_path / "user")
    with monkeypatch.context() as m:
        m.delenv(cc.ENV_VAR)
        try:
            jax.config.update("jax_compilation_cache_dir", user)
            assert cc.configure() == user == cc.active_dir()
            assert cc.configure(enabled=False) is None and cc.active_dir() is None
            assert cc.configure() == user == cc.active_dir()
        finally:
            jax.config.update("jax_compilation_cache_dir", before)
    assert cc.configure() == before  # the session's directory again (conftest)


def _program():
    """A new function object each call (no in-memory reuse), the same program each time."""

    def f(x):
        return jnp.cos(x) * 3.0 + 1.25

    return jax.jit(f).lower(jax.ShapeDtypeStruct((7,), jnp.float32))


def test_disabled_compiles_cold_and_stats_count_hits(compile_cache):
    with cc.CompileStats() as first:
        _program().compile()
    with cc.CompileStats() as second:
        _program().compile()
    with cc.disabled(), cc.CompileStats() as cold:
        _program().compile()
    assert first.summary()["dir"] == compile_cache and first.count == first.written == 1
    assert second.summary() | {"dir": None} == {
        "dir": None, "programs": 1, "hits": 1, "misses": 0, "written": 0, "rejected": 0
    }  # fmt: skip
    assert cold.count == 1 and cold.hits == 0 and cold.dir is None
    assert cc.active_dir() == compile_cache  # back on after the block


def test_second_cli_process_loads_its_programs_from_the_cache(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in (cc.ENV_VAR, "JAX_COMPILATION_CACHE_DIR")
    }
    env |= {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    tiny = ["num_envs=4", "rollout_len=16", "num_epochs=1", "num_minibatches=2", "hidden=16"]
    tiny += ["num_evals=2", "num_eval_envs=2"]
    summaries = []
    for run in ("a", "b"):
        args = [sys.executable, "-m", "jaxrl.cli", "train", "ppo", "--seeds", "1", "--steps", "128"]
        args += [f"--set={s}" for s in tiny] + ["--no-progress", "--out", str(tmp_path / run)]
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=120)
        summaries.append(json.loads((tmp_path / run / "summary.json").read_text()))
    first, second = (s["compile_cache"] for s in summaries)
    where = str(tmp_path / "cache" / "jaxrl" / "xla")
    assert first["dir"] == second["dir"] == where
    assert first["hits"] == 0 and first["written"] == first["programs"] == 2
    assert second["hits"] == second["programs"] == 2 and second["written"] == 0
    assert second["rejected"] == 0


def test_compile_side_by_side_keeps_order_and_programs():
    from jaxrl.runner.engine import compile_side_by_side

    fns = [jax.jit(lambda x, k=k: jnp.sin(x) * k + jnp.arange(3.0) * k) for k in (1.0, 2.0, 3.0)]
    x = jnp.linspace(0.0, 1.0, 3)
    lowerings = [lambda f=f: f.lower(x) for f in fns]
    together = compile_side_by_side(lowerings)
    alone = [f.lower(x).compile() for f in fns]
    assert len(together) == 3
    for a, b in zip(together, alone, strict=True):
        assert jnp.array_equal(a(x), b(x))
    assert not jnp.array_equal(together[0](x), together[1](x))  # order kept
    (one,) = compile_side_by_side(lowerings[:1])
    assert jnp.array_equal(one(x), alone[0](x))
