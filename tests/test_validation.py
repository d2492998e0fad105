"""Input validation: declared hyperparameter domains (every registered algorithm), refused
by train, sweep and pbt with one line and exit 2 before any compile; env options from
the command line (``--env-arg``)."""

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxrl import agents, envs, runner, sweep
from jaxrl.cli import main
from jaxrl.compile_cache import CompileStats
from jaxrl.core import domains
from jaxrl.loops import AlgoSpec
from jaxrl.transforms import pbt

ALGOS = agents.names()
#: ``(algorithm, field)`` for every hyperparameter of every registered algorithm.
FIELDS = [(a, f.name) for a in ALGOS for f in dataclasses.fields(agents.get(a).hparams)]


def _domain(algo: str, field: str) -> domains.Domain:
    return domains.domain_of(agents.get(algo).hparams, field)


def _inside(d: domains.Domain) -> st.SearchStrategy[float]:
    """Finite float32 values in ``d``."""
    low = d.low if math.isfinite(d.low) else -1e6
    high = d.high if math.isfinite(d.high) else 1e6
    values = st.floats(
        low, high, exclude_min=d.low_open, exclude_max=d.high_open, allow_nan=False, width=32
    )
    return values.filter(lambda v: d.contains(np.float32(v)))


def _outside(d: domains.Domain) -> st.SearchStrategy[float]:
    """Values whose float32 is not in ``d``: NaN, infinities, and values past each bound."""
    parts = [st.just(math.nan), st.just(-math.inf)]
    if not d.allow_inf:
        parts.append(st.just(math.inf))
    if math.isfinite(d.low):
        parts.append(st.floats(-1e30, d.low, exclude_max=not d.low_open))
    if math.isfinite(d.high):
        parts.append(st.floats(d.high, 1e30, exclude_min=not d.high_open))
    return st.one_of(parts).filter(lambda v: not d.contains(np.float32(v)))


class Compiled(Exception):
    """Raised where a run would build its training program."""


@pytest.fixture
def no_training(monkeypatch):
    """Any run that gets past validation stops where its program would be built."""

    def refuse(*args, **kwargs):
        raise Compiled

    monkeypatch.setattr(AlgoSpec, "make_train", refuse)


def test_every_hparams_field_declares_a_domain_its_default_lies_in():
    for algo in ALGOS:
        cls = agents.get(algo).hparams
        undeclared = [name for name, d in domains.declared(cls).items() if d is None]
        assert not undeclared, f"{algo}: no declared domain for {undeclared}"
        for f in dataclasses.fields(cls):
            assert _domain(algo, f.name).contains(f.default), (algo, f.name, f.default)


def test_domain_text_and_float32_rounding():
    assert domains.UNIT.describe("gamma") == "0 <= gamma <= 1"
    assert domains.POSITIVE.describe("lr") == "lr > 0"
    assert domains.RATE.describe("tau") == "0 < tau <= 1"
    assert domains.POSITIVE_OR_INF.contains(math.inf) and not domains.POSITIVE.contains(math.inf)
    with pytest.raises(ValueError, match=r"lr=1e-50 \(0 as float32\) is outside its domain"):
        agents.get("ppo").default_hparams(lr=1e-50)
    # PBT's default range v/4..4v is cut to the domain; an open bound moves inwards
    assert domains.UNIT.clip_range(0.2475, 3.96) == (np.float32(0.2475), 1.0)
    low, high = domains.OPEN_UNIT.clip_range(0.175, 2.8)
    assert high < 1.0 and domains.OPEN_UNIT.contains(np.float32(high))


@pytest.mark.parametrize("algo", ALGOS)
def test_out_of_domain_defaults_refused_in_resolve(algo):
    """``runner.resolve`` (what train, sweep and pbt call) refuses before building the env."""
    field = next(f.name for f in dataclasses.fields(agents.get(algo).hparams))
    with pytest.raises(ValueError, match=rf"^{algo}: {field}=nan .*outside its domain"):
        runner.resolve(algo, env="nosuchenv", hparams={field: math.nan})


def _fields(algo: str) -> list[str]:
    return [f.name for f in dataclasses.fields(agents.get(algo).hparams)]


def _argv(command: str, algo: str, field: str, value: float, other: float) -> list[str]:
    """``value`` given to ``field`` by ``--set`` (train), ``--grid`` (sweep, beside
    ``other``) or as one end of a ``--range`` (pbt, the other end ``other``)."""
    ends = sorted((value, other)) if value == value else [value, other]
    return {
        "train": ["train", algo, "--set", f"{field}={value!r}"],
        "sweep": ["sweep", algo, "--grid", f"{field}={other!r},{value!r}"],
        "pbt": ["pbt", algo, "--perturb", field, "--range", f"{field}={ends[0]!r}:{ends[1]!r}"],
    }[command] + ["--seeds", "1", "--no-progress"]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.mark.parametrize("algo", ALGOS)
@_settings(15)
@given(data=st.data())
def test_out_of_domain_values_exit_2_before_any_compile(algo, data, no_training, capsys):
    """A random field of every algorithm, a random value outside its domain, from train,
    sweep or pbt: exit 2, one line naming field and domain, no program compiled."""
    field = data.draw(st.sampled_from(_fields(algo)), label="field")
    d = _domain(algo, field)
    bad = data.draw(_outside(d), label="bad")
    command = data.draw(st.sampled_from(["train", "sweep", "pbt"]), label="command")
    good = float(getattr(agents.get(algo).default_hparams(), field))
    capsys.readouterr()
    with CompileStats() as stats:
        code = main(_argv(command, algo, field, bad, good))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert stats.count == 0, f"{stats.count} programs compiled before refusing it"
    assert len(err.splitlines()) == 1 and err.startswith("jaxrl: error:"), err
    assert f"{field}=" in err and f"outside its domain: {d.describe(field)}" in err, err


@pytest.mark.parametrize("algo", ALGOS)
@_settings(5)
@given(data=st.data())
def test_in_domain_values_reach_the_training_program(algo, data, no_training):
    """The same on the command line with a value inside the domain gets past every check
    to where the program is built."""
    field = data.draw(st.sampled_from(_fields(algo)), label="field")
    d = _domain(algo, field)
    value, other = data.draw(_inside(d), label="value"), data.draw(_inside(d), label="other")
    command = data.draw(st.sampled_from(["train", "sweep", "pbt"]), label="command")
    if command == "pbt" and value == other:
        command = "train"  # a PBT range needs low < high
    with pytest.raises(Compiled):
        main(_argv(command, algo, field, value, other))


@pytest.mark.parametrize("algo", ALGOS)
@_settings(10)
@given(data=st.data())
def test_in_domain_values_pass_the_validation_layer(algo, data):
    """Random in-domain values for random fields pass ``default_hparams`` (``--set``), a
    sweep grid's check and a PBT range's, unchanged but for float32 rounding."""
    spec = agents.get(algo)
    chosen = data.draw(st.lists(st.sampled_from(_fields(algo)), min_size=1, unique=True))
    values = {n: data.draw(_inside(_domain(algo, n)), label=n) for n in chosen}
    hp = spec.default_hparams(**values)
    for n, v in values.items():
        assert getattr(hp, n) == np.float32(v)
    grid = sweep.check_grid({n: [v] for n, v in values.items()}, spec.config, spec.hparams)
    assert grid == {n: [float(v)] for n, v in values.items()}
    name = chosen[0]
    low, high = sorted((values[name], data.draw(_inside(_domain(algo, name)), label="end")))
    if low < high:
        config = pbt.PBTConfig(population=2, perturb=(name,), ranges={name: (low, high)})
        assert pbt.resolve_ranges(config, hp) == {name: (low, high)}


def test_pbt_default_range_stays_in_the_domain():
    hp = agents.get("ppo").default_hparams()
    config = pbt.PBTConfig(population=2, perturb=("gamma", "lr"))
    ranges = pbt.resolve_ranges(config, hp)
    assert ranges["gamma"] == (np.float32(0.99 / 4), 1.0)
    assert ranges["lr"] == pytest.approx((2.5e-4 / 4, 1e-3))


# --- env options ---------------------------------------------------------------------


def test_env_args_lists_common_and_own_options():
    assert envs.env_args("cartpole") == {"episode_length": int, "reward_scale": float}
    point = envs.env_args("pointmaze")
    assert point["dt"] is float and point["episode_length"] is int
    assert envs.env_args("linear/windy")["shift"] is float
    with pytest.raises(ValueError, match="unknown environment"):
        envs.env_args("nosuchenv")


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--env-arg", "nosuch=1"], "unknown key 'nosuch' in --env-arg for cartpole; it takes: "),
        (["--env-arg", "episode_length=ten"], "--env-arg episode_length=ten: expected a value"),
        (["--env-arg", "episode_length=0"], "episode_length must be positive, got 0"),
        (["--env-arg", "reward_scale=inf"], "reward_scale must be a finite number"),
        (["--env-arg", "episode_length"], "--env-arg expects KEY=VALUE"),
    ],
)
def test_bad_env_args_exit_2_with_one_line(argv, fragment, capsys):
    assert main(["train", "ppo", "--env", "cartpole", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_env_args_reach_envs_make(no_training, monkeypatch):
    made = {}
    make = envs.make

    def spy(name, **kwargs):
        made.update(kwargs, name=name)
        return make(name, **kwargs)

    monkeypatch.setattr(envs, "make", spy)
    argv = ["train", "ppo", "--env", "pointmaze", "--seeds", "1"]
    with pytest.raises(Compiled):
        main([*argv, "--env-arg", "episode_length=200", "--env-arg", "dt=0.05"])
    assert made == {"name": "pointmaze", "episode_length": 200, "dt": 0.05}
    _, _, env, _, _ = runner.resolve("ppo", "pointmaze", env_kwargs={"episode_length": 200})
    assert env.max_episode_steps == 200


def test_env_without_episode_limit_names_the_flag(capsys):
    pytest.importorskip("jumanji")
    assert main(["train", "ppo", "--env", "jumanji/Game2048-v1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no episode limit" in err and "--env-arg episode_length=N" in err, err
    with pytest.raises(ValueError, match="board_size"):
        envs.make("jumanji/Game2048-v1", nosuch=1)


def test_ppo_trains_on_a_jumanji_env_without_time_limit(tmp_path):
    """Game2048 has no time limit of its own; ``--env-arg episode_length`` gives one."""
    pytest.importorskip("jumanji")
    argv = ["train", "ppo", "--env", "jumanji/Game2048-v1", "--env-arg", "episode_length=500"]
    small = ["--seeds", "1", "--steps", "2048", "--no-progress"]
    sets = ["num_envs=8", "rollout_len=64", "num_minibatches=4", "num_epochs=2", "num_evals=2"]
    sets += ["num_eval_envs=4"]
    out = tmp_path / "run"
    assert main([*argv, *small, *[a for s in sets for a in ("--set", s)], "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == "jumanji/Game2048-v1" and summary["steps"] == 2048
    # 2048 merges tiles for points: every evaluation episode scores something
    assert np.isfinite(summary["final_return_mean"]) and summary["final_return_mean"] > 0
