"""Seeds and hyperparameter sweeps: vmap equals separate runs, bitwise determinism, sharding."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl import sweep
from jaxrl.agents.on_policy import ppo

ENV = E.make("cartpole")
CFG = ppo.Config(total_steps=4096, num_envs=4, rollout_len=32, num_evals=2, num_eval_envs=4)


@pytest.fixture(scope="module")
def train():
    return ppo.SPEC.make_train(CFG, ENV)


def test_vmap_over_seeds_equals_separate_runs(train):
    hp = ppo.SPEC.default_hparams()
    keys = sweep.seed_keys(0, 4)
    _, batched = sweep.over_seeds(train, 4)(keys, hp)
    single = jax.jit(train)
    for i in range(4):
        _, m = single(keys[i], hp)
        for name in ("eval_return", "policy_loss", "value_loss", "env_steps"):
            np.testing.assert_allclose(
                batched[name][i], m[name], rtol=1e-5, atol=1e-5, err_msg=name
            )


def test_same_key_gives_bitwise_equal_metrics(train):
    hp = ppo.SPEC.default_hparams()
    run = sweep.over_seeds(train, 2)
    _, a = run(sweep.seed_keys(3, 2), hp)
    _, b = run(sweep.seed_keys(3, 2), hp)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    _, c = run(sweep.seed_keys(4, 2), hp)
    assert not np.array_equal(a["policy_loss"], c["policy_loss"])


def test_hparam_grid_is_one_compilation_and_matches_single_runs(train):
    hp = ppo.SPEC.default_hparams()
    batch, settings = sweep.grid(hp, lr=[1e-4, 1e-3], ent_coef=[0.0, 0.05])
    assert len(settings) == 4 and batch.lr.shape == (4,)
    run = sweep.over_hparams(train, 4)
    key = jax.random.PRNGKey(5)
    _, m = run(key, batch)
    assert m["eval_return"].shape == (4, CFG.num_evals)
    idx = settings.index({"lr": 1e-3, "ent_coef": 0.05})
    # Same program, same machine: the grid's entry equals the grid program run with that
    # setting in every slot, bitwise (batch entries do not interact).
    same = jax.tree.map(lambda x: jnp.broadcast_to(x[idx], x.shape), batch)
    _, m_same = run(key, same)
    for name in m:
        np.testing.assert_array_equal(m[name][idx], m_same[name][0], err_msg=name)
    # A single (unbatched) run is another program: its matmuls sum in another order, and
    # RL amplifies float32 rounding differently on each CPU. What holds on any CPU: over
    # the first evaluation period the single run is nearer its own grid entry than half
    # the distance to any other setting (relative, no absolute tolerance tuned to one CPU).
    # Policy loss and approx KL stay near 0 whatever the setting (normalised advantages,
    # small steps), so they cannot tell settings apart; value loss and entropy can.
    single = jax.jit(train)
    _, ref = single(key, hp.replace(lr=jnp.float32(1e-3), ent_coef=jnp.float32(0.05)))
    np.testing.assert_array_equal(m["env_steps"][idx], ref["env_steps"])
    for name in ("value_loss", "entropy"):
        dist = np.abs(np.asarray(m[name])[:, 0] - np.asarray(ref[name])[0])
        others = np.delete(dist, idx)
        assert dist[idx] < 0.5 * others.min(), (name, dist, idx)
    # Changing only a traced hyperparameter does not recompile.
    before = single._cache_size()
    single(key, hp.replace(lr=jnp.float32(3e-4)))
    assert single._cache_size() == before


def test_grid_rejects_unknown_name():
    with pytest.raises(ValueError, match="nosuch"):
        sweep.grid(ppo.SPEC.default_hparams(), nosuch=[1.0])


SHARDED = textwrap.dedent(
    """
    import jax, numpy as np
    import jaxrl.envs as E
    from jaxrl import sweep
    from jaxrl.agents.on_policy import ppo
    assert len(jax.devices()) == 4, jax.devices()
    cfg = ppo.Config(total_steps=2048, num_envs=4, rollout_len=32, num_evals=2, num_eval_envs=4)
    train = ppo.SPEC.make_train(cfg, E.make("cartpole"))
    hp = ppo.SPEC.default_hparams()
    keys = sweep.seed_keys(0, 8)
    _, m = sweep.over_seeds(train, 8)(keys, hp)
    assert len(m["eval_return"].sharding.device_set) == 4, m["eval_return"].sharding
    _, ref = jax.jit(train)(keys[5], hp)
    np.testing.assert_allclose(m["policy_loss"][5], ref["policy_loss"], rtol=1e-5, atol=1e-6)
    # The same sweep unsharded (one device) gives the same numbers.
    _, one = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, hp)
    assert len(one["eval_return"].sharding.device_set) == 1
    np.testing.assert_array_equal(m["env_steps"], one["env_steps"])
    for k in ("eval_return", "policy_loss", "value_loss", "entropy"):
        np.testing.assert_allclose(m[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)
    print("OK")
    """
)


def test_sharded_over_four_host_devices_equals_unsharded():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout


def _cli(args: list[str]) -> None:
    """``python -m jaxrl ARGS`` in a fresh process that leaves the CPU device count to jaxrl."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    out = subprocess.run(
        [sys.executable, "-m", "jaxrl", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]


def _final_state(run_dir) -> dict[str, np.ndarray]:
    path = sorted(run_dir.glob("checkpoints/*/state.npz"))[-1]
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_cli_spreads_seeds_over_cpu_cores_and_resumes_exactly(tmp_path):
    """The CLI runs seeds on one device per CPU core. Sharded, a run cut and resumed
    equals the uninterrupted one bitwise, and both equal a one-device run of this
    process to float error (one seed per device sums its matmuls in another order)."""
    from jaxrl.cli import main

    args = ["train", "ppo", "--seeds", "2", "--steps", "2048", "--no-progress"]
    args += ["--set", "num_evals=2", "--set", "num_envs=4", "--set", "num_epochs=2"]
    args += ["--checkpoint-every", "1"]
    one, full, cut = tmp_path / "one", tmp_path / "full", tmp_path / "cut"
    assert len(jax.devices()) == 1  # tests/conftest.py pins this process to one device
    assert main([*args, "--out", str(one)]) == 0
    _cli([*args, "--out", str(full)])
    _cli([*args, "--out", str(cut), "--stop-after-chunks", "1"])
    _cli([*args, "--resume", str(cut)])
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["num_devices"] == min(sweep.cpu_cores(), 2)  # the most devices dividing 2
    assert summary["resumed_from_period"] == 1
    assert (full / "metrics.jsonl").read_text() == (cut / "metrics.jsonl").read_text()
    resumed, uninterrupted, one_device = (_final_state(d) for d in (cut, full, one))
    for k in resumed:
        np.testing.assert_array_equal(resumed[k], uninterrupted[k], err_msg=k)
    assert resumed.keys() == one_device.keys()
    for k in resumed:
        np.testing.assert_allclose(resumed[k], one_device[k], rtol=1e-4, atol=1e-6, err_msg=k)
    for a, b in zip(_metrics(one), _metrics(cut), strict=True):
        assert a["env_steps"] == b["env_steps"] and a["seed"] == b["seed"]
        np.testing.assert_allclose(a["eval_return"], b["eval_return"], rtol=1e-4)


def test_use_cpu_cores_leaves_an_initialised_backend_alone():
    jax.devices()  # backend initialised
    assert sweep.use_cpu_cores(3) is None
    with pytest.raises(ValueError, match="positive"):
        sweep.use_cpu_cores(0)
    assert sweep.cpu_cores() >= 1
