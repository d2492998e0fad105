"""``AlgoSpec``: one registered record per algorithm, read by the CLI, runner, tests,
experiments and docs (``jaxrl.agents.get(name)``).

It lives with the loops, not in ``jaxrl.core``: a spec's ``data`` is a loop declaration
and ``make_train`` assembles the loop, so the record sits in the layer that owns both
(core imports no loop and no env).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from jaxrl.core.types import Agent, hparams_from
from jaxrl.envs import Env
from jaxrl.loops.data import Data
from jaxrl.loops.run import EvalProgress, Progress, Schedule, Trainer
from jaxrl.loops.train import make_train, schedule_for

ACTION_KINDS = ("discrete", "continuous")
#: ``make_agent(config, env, hparams, schedule) -> Agent``; ``hparams`` may be traced.
MakeAgent = Callable[[Any, Env, Any, Schedule], Agent]
#: ``data(config, env) -> a loops data declaration`` (what the algorithm consumes).
DataFn = Callable[[Any, Env], Data]


@dataclasses.dataclass(frozen=True)
class HookInput:
    """What an evaluation hook sees after a run.

    Attributes:
      agent: the run's ``Agent`` (built with the run's config, hparams and schedule).
      agent_states: the agent states to evaluate, leaves ``[seeds, ...]``: the best
        evaluation's where the run keeps it (``which == "best"``), else the final ones.
      env: the env the run trained on; ``env_name`` its registry name.
      config: the run's ``Config``; ``seed`` the run's base seed.
      to_host: device pytree -> NumPy pytree (gathered from every process).
      which: ``"best"`` or ``"final"``, the agent states handed over.
    """

    agent: Agent
    agent_states: Any
    env: Env
    env_name: str
    config: Any
    seed: int
    to_host: Callable[[Any], Any]
    which: str = "final"


@dataclasses.dataclass(frozen=True)
class EvalHook:
    """An evaluation of a run's final agents that a spec declares (``eval_hooks``) and the
    runner runs after training, adding fields to ``summary.json`` (e.g. SRL's
    Frequency-Averaged Score, ``jaxrl.transforms.fas``).

    Attributes:
      name: a short name.
      run: ``HookInput -> summary fields`` (``{}``: nothing to add for this config).
      rows: ``summary -> [(label, text)]`` for the table ``jaxrl train`` prints.
      check: ``config -> None``, raising ``ValueError`` for settings the hook cannot use
        (run by ``AlgoSpec.validate``, before any compilation).
    """

    name: str
    run: Callable[[HookInput], dict[str, Any]]
    rows: Callable[[dict[str, Any]], list[tuple[str, str]]] = lambda summary: []
    check: Callable[[Any], None] = lambda config: None


def action_kind(env: Env) -> str:
    return "discrete" if env.action_spec.discrete else "continuous"


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """An algorithm as data.

    Attributes:
      name: the registry name (``jaxrl train NAME``).
      summary: one line for ``jaxrl list``.
      config: the frozen ``Config`` dataclass (static: shapes, control flow); it has
        ``total_steps``, ``num_evals``, ``num_eval_envs`` and ``eval_max_steps``.
      hparams: the ``HParams`` pytree class (float32 leaves; vmappable, sweepable).
      make_agent: ``(config, env, hparams, schedule) -> Agent``.
      data: ``(config, env) -> Rollout | Replay | Stream | Sequences | Dataset``.
      action_kinds: subset of ``("discrete", "continuous")``.
      default_env: the env ``jaxrl train NAME`` uses when none is given.
      presets: env name -> ``Config`` overrides tuned for it (applied before the user's);
        a family key (``"atari"``) covers every ``family/<id>`` without its own entry.
      positive: ``Config`` fields that must be > 0 (checked before compilation).
      check: ``(config, env) -> None``, raising ``ValueError`` for other bad settings
        (``validate`` prefixes the message with the algorithm's name).
      eval_hooks: evaluations of the final agents the runner adds to ``summary.json``.
    """

    name: str
    summary: str
    config: type
    hparams: type
    make_agent: MakeAgent
    data: DataFn
    action_kinds: tuple[str, ...]
    default_env: str
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    positive: tuple[str, ...] = ()
    check: Callable[[Any, Env], None] | None = None
    eval_hooks: tuple[EvalHook, ...] = ()

    def __post_init__(self) -> None:
        bad = [k for k in self.action_kinds if k not in ACTION_KINDS]
        if bad or not self.action_kinds:
            raise ValueError(f"{self.name}: action_kinds must be from {ACTION_KINDS}, got {bad}")

    def make_config(self, env_name: str | None = None, **overrides: Any) -> Any:
        """``Config`` with ``env_name``'s preset (default env's if ``None``; else its
        family's), then ``overrides``."""
        name = env_name or self.default_env
        preset = self.presets.get(name, self.presets.get(name.partition("/")[0], {}))
        return self.config(**{**preset, **overrides})

    def default_hparams(self, **overrides: Any) -> Any:
        """``HParams`` of float32 scalars; ValueError (prefixed with the algorithm's name)
        for an unknown name, a non-number or a value outside its field's declared domain."""
        try:
            return hparams_from(self.hparams, overrides)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None

    def validate(self, config: Any, env: Env) -> None:
        """Raises ``ValueError`` naming the field for settings that cannot work on ``env``."""
        if action_kind(env) not in self.action_kinds:
            need = " or ".join(self.action_kinds)
            raise ValueError(
                f"{self.name} needs a {need} action space; the env's is {action_kind(env)}"
            )
        fields = ("total_steps", "num_evals", "num_eval_envs", "eval_max_steps")
        for field in (*fields, *self.positive):
            if getattr(config, field) <= 0:
                raise ValueError(
                    f"{self.name}: {field} must be positive, got {getattr(config, field)}"
                )
        try:
            if self.check is not None:
                self.check(config, env)
            for hook in self.eval_hooks:
                hook.check(config)
            self.schedule(config, env)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None

    def schedule(self, config: Any, env: Env) -> Schedule:
        """How ``config.total_steps`` splits into iterations and evaluation periods."""
        data = self.data(config, env)
        return schedule_for(data, config.total_steps, config.num_evals)

    def make_train(
        self,
        config: Any,
        env: Env,
        progress: Progress | None = None,
        eval_progress: EvalProgress | None = None,
    ) -> Trainer:
        """``train(key, hparams) -> (agent_state, metrics)``, one jittable function
        (``progress``, ``eval_progress``: host callbacks, see ``jaxrl.loops.run``)."""
        self.validate(config, env)

        def make_agent(hparams: Any, schedule: Schedule) -> Agent:
            return self.make_agent(config, env, hparams, schedule)

        return make_train(
            self.data(config, env),
            make_agent,
            env,
            total_steps=config.total_steps,
            num_evals=config.num_evals,
            num_eval_envs=config.num_eval_envs,
            progress=progress,
            eval_max_steps=config.eval_max_steps,
            eval_progress=eval_progress,
        )
