"""One renderer per committed results file: ``render(data) -> markdown``.

Each function takes the parsed JSON of one file under ``experiments/results/`` and
returns the markdown of its generated section (a line of facts: seeds, budget, wall
time, date and machine where the file has them; then its tables). Every statistic over
seeds is computed here from the per-seed numbers in the file: IQM with a 95%
stratified bootstrap CI (``jaxrl.report.stratified_bootstrap_ci``, 2000 resamples,
seed 0), so a table cannot drift from its raw data. ``RENDERERS`` registers them, by
the section name the docs use (``<!-- generated:NAME -->``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxrl.report import iqm, stratified_bootstrap_ci

CI = tuple[float, float, float]


# --- shared pieces ------------------------------------------------------------------------


def ci(values: Any) -> CI:
    """``(IQM, low, high)`` over seeds: ``values [seeds]``, 95% stratified bootstrap CI."""
    return stratified_bootstrap_ci([np.asarray(values, np.float64)], iqm)


def fmt_ci(c: CI, digits: int = 1, scale: float = 1.0) -> str:
    p, lo, hi = (scale * x for x in c)
    return f"{p:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def iqm_ci(values: Any, digits: int = 1, scale: float = 1.0) -> str:
    """``"IQM [low, high]"`` of per-seed ``values``."""
    return fmt_ci(ci(values), digits, scale)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; every row has ``len(header)`` cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row {list(row)} has {len(row)} cells, not {len(header)}")
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def facts(**items: Any) -> str:
    """One line ``"seeds: 5 · budget: ... · wall: ..."`` of the items that are not ``None``."""
    shown = [f"{k.replace('_', ' ')}: {v}" for k, v in items.items() if v is not None]
    return " · ".join(shown) + "."


def blocks(*parts: str) -> str:
    return "\n\n".join(p.strip("\n") for p in parts if p)


# --- experiments ---------------------------------------------------------------------------


def assistance_game(data: dict) -> str:
    """``experiments/assistance_game.py``: human actions with each assistant; with the
    newer files also each search's human model, the discounted return, the human actions
    with a human of another temperature and the training curves."""
    floor = data["human_alone"]
    base = np.asarray(floor["human_actions"], np.float64)
    shifted = "other_human" in floor
    other_base = np.asarray(floor["other_human"]["human_actions"]) if shifted else None
    has_source = any("human_model_source" in r for r in data["methods"].values())
    has_disc = "discounted_return" in floor

    def row(name: str, r: dict, source: str, saved: str, paper: str) -> list[str]:
        cells = [name]
        if has_source:
            cells.append(source)
        cells += [
            iqm_ci(r["completed"], 1, 100),
            iqm_ci(r["human_actions"], 2),
            saved,
            iqm_ci(r["length"], 2),
        ]
        if has_disc:
            cells.append(iqm_ci(r["discounted_return"], 2))
        if shifted:
            other = r["other_human"]
            cells.append(iqm_ci(other["human_actions"], 2))
            cells.append(iqm_ci(other_base - np.asarray(other["human_actions"], np.float64), 2))
        return [*cells, paper]

    rows = [row("simulated human alone (floor)", floor, "", "0", "")]
    for name, r in data["methods"].items():
        saved = iqm_ci(base - np.asarray(r["human_actions"], np.float64), 2)
        paper = data.get("paper", {}).get(name, "")
        rows.append(row(name, r, f"`{r.get('human_model_source', '')}`", saved, paper))
    header = ["assistant"] + (["search's human model"] if has_source else [])
    header += ["goal completed (%)", "human actions to finish", "human actions saved"]
    header += ["episode length"] + (["discounted return"] if has_disc else [])
    if shifted:
        t = data["eval_temperature"]
        header += [f"human actions (human at T={t:g})", f"saved (human at T={t:g})"]
    header.append("paper (MBAG, orientation)")
    train = {n: r.get("train_seconds") for n, r in data["methods"].items()}
    cost = data.get("human_action_cost")
    parts = [
        facts(
            env=f"`{data['env']}`",
            human_action_cost=cost,
            recorded_human_temperature=data.get("recorded_temperature"),
            seeds=data["seeds"],
            budget=f"{data['steps']:,} env steps per seed",
            evaluation=f"{data['episodes']} episodes per seed",
            gamma=data.get("gamma"),
            wall=minutes(data["wall_seconds"]) if "wall_seconds" in data else None,
        ),
        "IQM over seeds [95% stratified bootstrap CI]; training seconds: "
        + ", ".join(f"{n} {s:.0f}" for n, s in train.items() if s is not None)
        + ".",
        table(header, rows),
    ]
    curves = {n: r["curves"] for n, r in data["methods"].items() if "curves" in r}
    if curves:
        steps = next(iter(curves.values()))["env_steps"]
        for key, label in (
            ("human_actions", "human actions"),
            ("discounted_return", "discounted return"),
            ("length", "episode length"),
        ):
            crow = [
                [n]
                + [f"{iqm(np.asarray(c[key], np.float64)[:, i]):.2f}" for i in range(len(steps))]
                for n, c in curves.items()
            ]
            parts.append(
                f"Training curve, {label} (IQM over seeds, recorded human):\n\n"
                + table(["assistant", *(f"{s:,} steps" for s in steps)], crow)
            )
    return blocks(*parts)


def muzero_assist(data: dict) -> str:
    """``experiments/muzero_assist.py``: MuZero (learned model) against PPO at equal steps."""
    floor = data["human_alone"]
    base = np.asarray(floor["human_actions"], np.float64)
    rows = [
        [
            "simulated human alone (floor)",
            iqm_ci(floor["human_actions"], 2),
            "0",
            iqm_ci(floor["length"], 2),
            iqm_ci(floor["completed"], 1, 100),
            "",
        ]
    ]
    for name, r in data["methods"].items():
        final = np.asarray(r["eval_return"], np.float64)[:, -1]
        rows.append(
            [
                name,
                iqm_ci(r["human_actions"], 2),
                iqm_ci(base - np.asarray(r["human_actions"], np.float64), 2),
                iqm_ci(r["length"], 2),
                iqm_ci(r["completed"], 1, 100),
                iqm_ci(final, 2),
            ]
        )
    header = [
        "method",
        "human actions to finish",
        "human actions saved",
        "episode length",
        "goal completed (%)",
        "final eval return (undiscounted)",
    ]
    verdicts = []
    methods = data["methods"]
    if "PPO" in methods:
        ppo = methods["PPO"]
        for name, r in methods.items():
            if not name.startswith("MuZero"):
                continue
            # Fewer human actions; more saved on the same evaluation episodes (paired).
            fewer = ci(r["human_actions"])[2] < ci(ppo["human_actions"])[1]
            saved = (
                ci(base - np.asarray(r["human_actions"], np.float64))[1]
                > ci(base - np.asarray(ppo["human_actions"], np.float64))[2]
            )
            verdicts.append(
                f"{name} vs PPO: human actions to finish "
                + ("lower, CIs apart (shown)" if fewer else "CIs overlap (not shown)")
                + "; human actions saved on the same episodes "
                + ("higher, CIs apart (shown)." if saved else "CIs overlap (not shown).")
            )
    train = {n: r.get("train_seconds") for n, r in methods.items()}
    return blocks(
        facts(
            env=f"`{data['env']}`",
            seeds=data["seeds"],
            budget=f"{data['steps']:,} env steps per seed",
            gamma=data["gamma"],
            evaluation=f"{data['episodes']} episodes per seed",
            wall=minutes(data["wall_seconds"]) if "wall_seconds" in data else None,
        ),
        "IQM over seeds [95% stratified bootstrap CI]; training seconds: "
        + ", ".join(f"{n} {s:.0f}" for n, s in train.items() if s is not None)
        + ".",
        table(header, rows),
        "\n".join(f"- {v}" for v in verdicts),
    )


def _drrpo_slope(episodes: np.ndarray, regret: np.ndarray) -> np.ndarray:
    """Per seed, the exponent ``a`` of ``R ~ K^a`` fitted over ``K >= K_max / 10``."""
    tail = episodes >= episodes[-1] / 10
    x = np.log(episodes[tail])
    return np.array([np.polyfit(x, np.log(np.maximum(r[tail], 1e-6)), 1)[0] for r in regret])


def drrpo_shift(data: dict) -> str:
    """``experiments/drrpo_shift.py`` (and its beta-3 and per-step records)."""
    shifts = data["shifts"]
    episodes = np.asarray(data["episodes"], np.float64)
    methods = list(data["methods"])
    exact = {m: np.asarray(data["exact_return"][m], np.float64) for m in methods}  # [S, shifts]
    mc = {m: np.asarray(data["mc_return"][m], np.float64) for m in methods}
    regret = {m: np.asarray(data["regret"][m], np.float64) for m in methods}  # [S, periods]
    ret = table(
        ["method", "rho", "kl_coef", *(f"shift {s:g}" for s in shifts)],
        [
            [
                m,
                f"{data['methods'][m]['rho']:g}",
                f"{data['methods'][m]['kl_coef']:g}",
                *(iqm_ci(exact[m][:, k], 2) for k in range(len(shifts))),
            ]
            for m in methods
        ],
    )
    soft = data.get("exact_return_softmax")  # records from before it have only the greedy
    soft_table = soft and table(
        ["method", *(f"shift {s:g}" for s in shifts)],
        [[m, *(iqm_ci(np.asarray(soft[m])[:, k], 2) for k in range(len(shifts)))] for m in methods],
    )
    mc_table = table(
        ["method", f"Monte Carlo, shift {shifts[0]:g}", f"Monte Carlo, shift {shifts[-1]:g}"],
        [[m, iqm_ci(mc[m][:, 0], 2), iqm_ci(mc[m][:, -1], 2)] for m in methods],
    )
    reg = table(
        ["method", f"robust regret at K = {int(episodes[-1])}", "exponent a (R ~ K^a)"],
        [
            [m, iqm_ci(regret[m][:, -1], 1), iqm_ci(_drrpo_slope(episodes, regret[m]), 2)]
            for m in methods
        ],
    )
    hp = data.get("hparams", {})
    return blocks(
        facts(
            env=f"`{data['env']}`",
            seeds=data["seeds"],
            budget=f"{data['steps']:,} env steps ({int(episodes[-1])} episodes) per run",
            beta=f"{hp['beta']:g}" if "beta" in hp else None,
            ridge=f"{hp['ridge']:g}" if "ridge" in hp else None,
            wall=minutes(data["wall_seconds"]) if "wall_seconds" in data else None,
        ),
        "Return of the final (bonus-free, greedy) policy, exact expected return in the "
        "model with gust probability `shift`, IQM over seeds [95% stratified bootstrap CI]:",
        ret,
        soft_table
        and "The regularised softmax policy of the same bonus-free plan (the policy the "
        "theory is about; greedy above), exact expected return, IQM [95% CI]:",
        soft_table,
        f"The same policies evaluated by the library's evaluation routine "
        f"({data['eval_episodes']} episodes per seed in the shifted env):",
        mc_table,
        "Online robust regret (at the method's own rho, of the policy that acts) after K "
        "episodes, and the exponent of a log-log fit over K >= K_max / 10, per seed:",
        reg,
    )


def _method_label(key: str) -> str:
    """``sac_jJ`` -> ``SAC-J``; other method keys as they are."""
    return f"SAC-{key.removeprefix('sac_j')}" if key.startswith("sac_j") else key


def srl_fas(data: dict) -> str:
    """``experiments/srl_fas.py``: the paper's FAS of SAC-J, SRL and planning, each on its
    best checkpoint, beside the paper's Table 2."""
    meta = data["meta"]
    ks = meta["intervals"]
    shown = [k for k in (1, 2, 4, 8, 16, 30) if k in ks]
    rows, near, far = [], [], []
    for task, methods in data["results"].items():
        paper = meta["paper_sac_j"].get(task) or {}
        for key, r in methods.items():
            rets = np.asarray(r["returns"], np.float64)  # [seeds, K]
            fas = ci(r["fas"])
            want = paper.get(str(r.get("train_interval"))) if key.startswith("sac_j") else None
            if want is not None:
                (near if abs(fas[0] - want) <= 0.1 else far).append(_method_label(key))
            rows.append(
                [
                    task,
                    _method_label(key),
                    r.get("train_interval", "-"),
                    fmt_ci(fas, 3),
                    "-" if want is None else f"{want:.2f}",
                    "-" if want is None else f"{fas[0] - want:+.2f}",
                    *(f"{rets[:, ks.index(k)].mean():.0f}" for k in shown),
                ]
            )
    header = [
        "task",
        "method",
        "trained at J",
        "FAS",
        "paper (Table 2)",
        "FAS - paper",
        *(f"R, k={k}" for k in shown),
    ]
    ran = list(data["results"])
    norms = ", ".join(f"{t}: offset {o:g}, max {m:g}" for t, (o, m) in meta["fas_norms"].items())
    out = [
        facts(
            seeds=meta["seeds"],
            budget=", ".join(f"{t} {meta['budgets'][t]:,} env steps" for t in ran),
            hidden="x".join(str(h) for h in meta["hidden"])
            + f" (paper: {'x'.join(str(h) for h in meta['paper_hidden'])})",
            wall=minutes(60 * meta["wall_min"]),
        ),
        f"FAS = trapz(R_k + offset, k) / (max x {meta['fas_span']:g}) over k = {ks[0]}, "
        f"{ks[1]}, ..., {ks[-1]} ({len(ks)} intervals, {meta['episodes']} episodes each; "
        f"{norms}), on each seed's {meta['checkpoint']}; IQM [95% stratified bootstrap CI] "
        f"over seeds. Paper: {meta['paper_source']} (SAC-J; SRL and planning: "
        f"{meta['paper_srl_planning']}). R, k: the mean return over seeds at interval k.",
        table(header, rows),
    ]
    if near or far:
        out.append(
            "SAC-J within 0.1 of the paper's FAS: "
            + (", ".join(near) if near else "none")
            + "; further than 0.1: "
            + (", ".join(far) if far else "none")
            + "."
        )
    missing = [t for t in meta["budgets"] if t not in data["results"]]
    if missing:
        out.append(f"In the command but not run (no results in the file): {', '.join(missing)}.")
    return blocks(*out)


def pbt_vs_grid(data: dict) -> str:
    """``experiments/pbt_vs_grid.py``: PBT against a fixed grid at equal env steps."""
    rows, settings = [], []
    for task, t in data["tasks"].items():
        for method, scores in t["scores"].items():
            x = np.asarray(scores, np.float64)
            rows.append([task, method, iqm_ci(x, 1), f"{x.mean():.1f}", len(x)])
        settings.append(
            [
                task,
                f"`{t['env']}`",
                f"{t['steps_per_run']:,}",
                t["population"],
                ", ".join(f"{k}={v:g}" for k, v in t["grid_best_setting"].items()),
                ", ".join(f"{k}={v:g}" for k, v in t["grid_median_setting"].items()),
                minutes(t["seconds"]["grid"] + t["seconds"]["pbt"]),
            ]
        )
    return blocks(
        facts(seeds=f"{data['seeds']} of the whole procedure", wall=minutes(data["wall_seconds"])),
        "Final evaluation return, IQM over seeds [95% stratified bootstrap CI]. "
        "`PBT (best member)` is the best of the population's members on each seed; `grid "
        "best` / `grid median` are the settings whose mean over seeds ranks first / in the "
        "middle.",
        table(["task", "method", "final return IQM [95% CI]", "mean", "seeds"], rows),
        table(
            [
                "task",
                "env",
                "env steps per run",
                "runs (grid settings = members)",
                "grid best",
                "grid median",
                "wall",
            ],
            settings,
        ),
    )


def sweep_compile(data: dict) -> str:
    """``experiments/sweep_compile.py``: one sweep program against separate runs."""
    s, t = data["sweep"], data["train_total"]
    n = len(data["train_runs"])
    rows = [
        [
            "`jaxrl sweep` (one program)",
            s["compiles"],
            f"{s['compile_seconds']:.1f}",
            f"{s['run_seconds']:.1f}",
            f"{s['process_seconds']:.1f}",
        ],
        [
            f"{n} x `jaxrl train` (total)",
            t["compiles"],
            f"{t['compile_seconds']:.1f}",
            f"{t['run_seconds']:.1f}",
            f"{t['process_seconds']:.1f}",
        ],
    ]
    return blocks(
        facts(
            seeds=data["seeds"],
            budget=f"{data['steps']:,} env steps per seed and setting",
            settings=n,
        ),
        table(["", "XLA compiles", "compile s", "run s", "process wall s"], rows),
    )


def bench_compile(data: dict) -> str:
    """``jaxrl bench --suite compile``: cold and warm compile of each case's programs."""
    rows = []
    for case, r in data["cases"].items():
        cold, warm = r["cold"], r["warm"]
        if cold.get("status") != "ok" or warm.get("status") != "ok":
            rows.append([case, f"`{r['settings']['env']}`", "failed", "", "", "", ""])
            continue
        rows.append(
            [
                case,
                f"`{r['settings']['env']}`",
                f"{cold['compile_seconds']:.1f} ({cold['backend_compile_seconds']:.1f})",
                f"{warm['compile_seconds']:.1f} ({warm['backend_compile_seconds']:.1f})",
                f"{warm['cache_hits']} of {warm['programs']}",
                f"{r['ratio_compile_cold_over_warm']:.1f}x",
                f"{cold['hlo_instructions']:,}",
            ]
        )
    meta, done = data["meta"], data["done_when"]
    header = [
        "case",
        "env",
        "cold compile s (XLA)",
        "warm compile s (XLA)",
        "warm cache hits",
        "cold / warm",
        "HLO instructions",
    ]
    return blocks(
        facts(
            date=meta["date"],
            machine=f"{meta['cpu']}, {meta['cpu_count']} cores",
            cases=len(rows),
            wall=minutes(meta["wall_seconds"]),
        ),
        table(header, rows),
        "A second identical `jaxrl train ppo` in a new process: XLA compile "
        f"{done['ppo_ratio_backend_compile_cold_over_warm']:.1f}x faster (goal "
        f">= {done['goals']['backend_compile']:g}), whole `compile_seconds` "
        f"{done['ppo_ratio_compile_cold_over_warm']:.1f}x smaller (goal "
        f">= {done['goals']['compile_seconds']:g}).",
    )


def seed_scaling(data: dict) -> str:
    """``experiments/seed_scaling.py``: the cost of a seed as seeds are added."""
    rows = []
    for key in ("one_device", "one_device_per_core"):
        layout = data[key]
        for learner in ("ppo", "stream_ac"):
            r = layout[learner]
            many = max(int(k) for k in r if k.isdigit())
            rows.append(
                [
                    learner,
                    layout["devices"],
                    many,
                    f"{r['per_seed_relative']:.2f}",
                    f"{r['cost_many_over_one']:.2f}",
                ]
            )
    same = data["results_one_device_vs_per_core"]
    return blocks(
        facts(
            CPU_cores=data["cpu_cores"],
            budget=f"PPO {data['steps']:,}, stream_ac {data['stream_steps']:,} env steps per seed",
        ),
        table(
            [
                "learner",
                "devices",
                "seeds",
                "per-seed time (1 seed = 1)",
                "wall time vs 1 seed",
            ],
            rows,
        ),
        f"One device against one per core: {same['differing_leaves']} of {same['leaves']} "
        f"state leaves differ, by at most {same['max_abs_diff']:.2g}.",
    )


def dsac_vs_sac(data: dict) -> str:
    """``experiments/dsac_vs_sac.py``: DSAC-T vs DSAC-v1 vs SAC, and across reward scales."""
    meta, res = data["meta"], data["results"]
    known = {"SAC": "SAC", "DSAC-T": "DSAC-T", "dsac_v1": "DSAC-v1"}
    methods = [m for m in known if any(m in r for r in res.values())]

    def cell(k: str, m: str) -> str:
        return iqm_ci(res[k][m]["final"]) if m in res.get(k, {}) else "not run"

    main = [
        [task, f"{steps:,}", *(cell(f"{task}@1", m) for m in methods)]
        for task, steps in meta["budgets"].items()
    ]
    scale_rows = []
    for task in meta["scale_tasks"]:
        for m in methods:
            keys = [f"{task}@{c:g}" for c in meta["scales"]]
            if not all(m in res.get(k, {}) for k in keys):
                scale_rows.append([task, known[m], *("not run" for _ in keys), "-"])
                continue
            finals = [np.asarray(res[k][m]["final"], np.float64) for k in keys]
            scale_rows.append(
                [task, known[m], *(iqm_ci(f) for f in finals), fmt_ci(_spread_ci(finals))]
            )
    paper = data.get("paper", {})
    return blocks(
        facts(
            seeds=meta["seeds"],
            hidden="x".join(str(h) for h in meta["hidden"]),
            protocol=_dsac_protocol(meta),
            wall=minutes(60 * meta["wall_min"]),
        ),
        "Final evaluation return in the task's own reward, IQM [95% stratified bootstrap CI] "
        "(DSAC-v1: DSAC-T's agent without expected value substitution and without the "
        "variance-based critic gradient adjustment, `dsac_t.V1`):",
        table(["task", "steps", *(known[m] for m in methods)], main),
        f"Across reward scales ({meta['evaluation']}); spread = max - min of the per-scale "
        "IQMs, with a bootstrap CI:",
        table(
            ["task", "method", *(f"reward x{c:g}" for c in meta["scales"]), "spread"], scale_rows
        ),
        "Paper: " + " ".join(f"({k}) {v}" for k, v in paper.items()) if paper else "",
    )


def _dsac_protocol(meta: dict) -> str:
    """The sampling every method shared: ``official`` is DSAC-v2's own trainer's."""
    shared = meta.get("shared_config", {"utd_ratio": 1.0, "warmup_steps": 1000})
    envs = shared.get("num_envs", 1)
    per = 1 / shared["utd_ratio"]
    every = "one update per env step" if per == 1 else f"one update per {per:g} env steps"
    return (
        f"{meta.get('protocol', 'matched')} ({envs} env(s), {every}, "
        f"warm-up {shared['warmup_steps']:,} steps, {shared.get('activation', 'relu')})"
    )


def memory_task(data: dict) -> str:
    """``experiments/memory_task.py``: feed-forward vs recurrent PPO on masked CartPole."""
    meta, res = data["meta"], data["results"]
    cis = {name: ci(r["final"]) for name, r in res.items()}
    rows = [
        [
            f"{name} (`{r['algo']}`)",
            fmt_ci(cis[name]),
            ", ".join(f"{x:.0f}" for x in r["final"]),
            f"{r['run_seconds']:.0f} s",
        ]
        for name, r in res.items()
    ]
    low, high = cis["PPO-RNN"][1], cis["PPO"][2]
    verdict = "do not overlap" if low > high else "overlap"
    return blocks(
        facts(
            env=f"`{meta['env']}`",
            seeds=meta["seeds"],
            budget=f"{meta['steps']:,} env steps per seed",
            wall=minutes(60 * meta["wall_min"]),
            date=meta.get("date"),
        ),
        f"Final evaluation return ({meta['eval_episodes']} deterministic episodes per seed, "
        "optimum 500), IQM [95% stratified bootstrap CI] over seeds:",
        table(["method", "final return", "per seed", "training time"], rows),
        f"The CIs {verdict}: PPO-RNN's lower bound {low:.1f}, PPO's upper bound {high:.1f}.",
    )


def _spread_ci(finals: list[np.ndarray], reps: int = 2000, seed: int = 0) -> CI:
    """``max - min`` over scales of the per-scale IQM, with a percentile bootstrap CI."""
    point = float(np.ptp([iqm(x) for x in finals]))
    rng = np.random.default_rng(seed)
    iqms = np.stack([iqm(x[rng.integers(0, len(x), (reps, len(x)))]) for x in finals])
    low, high = np.quantile(iqms.max(0) - iqms.min(0), [0.025, 0.975])
    return point, float(low), float(high)


def drama_minatar(data: dict) -> str:
    """``experiments/drama_minatar.py``: Drama vs PPO vs random on MinAtar; with the
    newer files the final greedy and sampled returns side by side and the training
    metrics at the end (policy entropy, imagined reward, world-model loss)."""
    both = all("greedy" in r for g in data["games"].values() for r in g["methods"].values())
    rows, train_rows = [], []
    for game, g in data["games"].items():
        for name, r in g["methods"].items():
            scores = [r["greedy"], r["sampled"]] if both else [_final(r["returns"])]
            rows.append(
                [
                    game,
                    name,
                    len(scores[0]),
                    f"{int(r['env_steps'][-1]):,}",
                    *(iqm_ci(x, 2) for x in scores),
                    f"{r['seconds']:.0f}",
                ]
            )
            curves = r.get("train_metrics", {})
            if curves:
                cells = [iqm_ci(_final(curves[k]), 3) if k in curves else "-" for k in _TRAINED]
                train_rows.append([game, name, *cells])
        rnd = g["random"]
        mean = f"{rnd['mean']:.2f} (mean)"
        rows.append([game, "random", f"{rnd['episodes']} episodes", "-", *[mean] * (1 + both), "-"])
    timing = [
        [
            name,
            f"{t['sequence_model_params']:,}",
            f"{t['world_model_params']:,}",
            f"{t['update_seconds_median']:.3f}",
        ]
        for name, t in data["timing"].items()
    ]
    seeds = data.get("seeds")
    if both:
        intro = (
            f"Final evaluation return ({data['eval_episodes']} episodes per seed, greedy "
            "and sampled actions), IQM [95% stratified bootstrap CI] over seeds:"
        )
        returns = ["final return (greedy)", "final return (sampled)"]
    else:
        intro = "Final greedy evaluation return, IQM [95% stratified bootstrap CI] over seeds:"
        returns = ["final return"]
    parts = [
        facts(
            budget=f"{data['steps']:,} env steps" if "env_steps" not in data else None,
            env_steps=f"{data['env_steps']:,} per method" if "env_steps" in data else None,
            seeds=", ".join(f"{k} {v}" for k, v in seeds.items()) if seeds else None,
            Drama_size=", ".join(f"{k} {v}" for k, v in data["drama_overrides"].items()),
            wall=minutes(data["total_seconds"]),
        ),
        intro,
        table(["game", "method", "seeds", "env steps", *returns, "wall s"], rows),
    ]
    if train_rows:
        parts += [
            "At the end of training (means over the last evaluation period's updates), "
            "IQM [95% stratified bootstrap CI] over seeds:",
            table(["game", "method", *_TRAINED.values()], train_rows),
        ]
    if timing:
        parts += [
            "The two sequence models inside the same agent (time per jitted update after "
            f"warm-up, median of {data['timing_repeats']}):",
            table(
                ["sequence model", "sequence-model params", "world-model params", "s / update"],
                timing,
            ),
        ]
    if "paper" in data:
        parts.append(f"Paper: {data['paper']}")
    return blocks(*parts)


#: ``train_metrics`` columns of the Drama MinAtar table: key -> header.
_TRAINED = {
    "entropy": "policy entropy",
    "imag_reward": "imagined reward",
    "wm_loss": "world-model loss",
}


def _final(curves: Any) -> np.ndarray:
    """``[seeds]`` last entries of ``[seeds, periods]`` curves."""
    return np.asarray(curves, np.float64)[:, -1]


def drama_atari(data: dict) -> str:
    """``experiments/drama_atari.py``: Drama on one real Atari game."""
    lo, hi = data["reference_random_human"]
    rnd = np.asarray(data["random_returns"], np.float64)
    final = np.asarray(data["final_returns"], np.float64)
    rows = [
        [
            f"Drama (CPU size), {data['steps']:,} agent steps",
            f"{final.mean():.1f}",
            f"{np.mean(data['final_hns']):.3f}",
        ],
        [
            f"random policy ({len(rnd)} episodes)",
            f"{rnd.mean():.1f}",
            f"{(rnd.mean() - lo) / (hi - lo):.3f}",
        ],
    ]
    return blocks(
        facts(
            game=data["game"],
            seeds=data["seeds"],
            budget=f"{data['steps']:,} agent steps",
            wall=minutes(data["wall_seconds"]),
            throughput=f"{data['steps_per_second']:.1f} agent steps/s with updates",
        ),
        f"Human-normalised score HNS = (score - random) / (human - random), with the "
        f"standard references random {lo:g}, human {hi:g}:",
        table(["method", "final return", "HNS"], rows),
    )


def drm_dormant(data: dict) -> str:
    """``experiments/drm_dormant.py``: return and dormant ratio, SAC vs DrM (and, with
    ``awaken`` in the record, MENTOR and the windows around each perturbation)."""
    if "awaken" in data:
        return _drm_windows(data)
    rows = []
    for name, r in data["results"].items():
        ret = np.asarray(r["returns"], np.float64)
        dr = np.asarray(r["dormant_ratio"], np.float64)  # [S, E]
        last = {k: np.asarray(v, np.float64)[:, -1] for k, v in r.get("layers", {}).items()}
        rows.append(
            [
                name,
                iqm_ci(ret[:, -1]),
                iqm_ci(dr[:, -1], 3),
                iqm_ci(dr[:, dr.shape[1] // 2 :].mean(1), 3),
                iqm_ci(dr.max(1), 3),
                ", ".join(f"{k} {iqm(v):.2f}" for k, v in last.items()),
                data.get("paper", {}).get(name, ""),
            ]
        )
    a = data["args"]
    return blocks(
        facts(
            env=f"`{a['env']}`",
            seeds=a["seeds"],
            budget=f"{a['steps']:,} env steps ({a['warmup']:,} warm-up), UTD {a['utd']:g}",
            hidden=a["hidden"],
            lr=f"{a['lr']:g}",
            perturbations=", ".join(f"{s:,}" for s in data.get("perturb_env_steps", [])) or None,
            wall=minutes(data["wall_seconds"]),
        ),
        "IQM [95% stratified bootstrap CI] over seeds; the dormant ratio of the actor's "
        "hidden units after the activation (tau 0.025):",
        table(
            [
                "algorithm",
                "final return",
                "final dormant ratio",
                "dormant ratio, 2nd half",
                "peak",
                "final ratio per layer (IQM)",
                "paper",
            ],
            rows,
        ),
    )


_DRM_LABELS = {"sac": "SAC", "drm": "DrM", "mentor": "MENTOR"}


def _drm_windows(data: dict) -> str:
    """The all-three-parts layout: per method the final return and dormant ratio, the
    ratio averaged over each perturbation's ``W`` updates before and after it, and the
    awakened exploration's noise std and awakening update."""
    a, aw = data["args"], data["awaken"]
    w = a["window"]
    rows = []
    for name, r in data["results"].items():
        ret = np.asarray(r["returns"], np.float64)
        dr = np.asarray(r["dormant_ratio"], np.float64)  # [S, E]
        win = np.asarray(r.get("window", []), np.float64)  # [S, P, 2W]
        has = win.ndim == 3 and win.size > 0
        std = np.asarray(r.get("awaken_std", []), np.float64)
        woke = [u for u in aw.get("awaken_update", {}).get(name, []) if u >= 0]
        rows.append(
            [
                _DRM_LABELS.get(name, name),
                iqm_ci(ret[:, -1]),
                iqm_ci(dr[:, -1], 3),
                iqm_ci(win[..., :w].mean((1, 2)), 3) if has else "n/a",
                iqm_ci(win[..., w:].mean((1, 2)), 3) if has else "n/a",
                f"{std[:, 0].mean():.2f} -> {std[:, -1].mean():.2f}" if std.size else "n/a",
                f"{len(woke)}/{len(ret)} seeds, median {np.median(woke):,.0f}" if woke else "none",
                data.get("paper", {}).get(name, ""),
            ]
        )
    probe = [
        [env, f"{np.mean(v['dormant_first']):.3f}", f"{np.mean(v['dormant_last']):.3f}"]
        for env, v in data.get("probe", {}).get("envs", {}).items()
    ]
    return blocks(
        facts(
            env=f"`{a['env']}`",
            seeds=a["seeds"],
            budget=f"{a['steps']:,} env steps ({a['warmup']:,} warm-up), UTD {a['utd']:g}",
            hidden=a["hidden"],
            lr="each method's default",
            perturbations=f"every {a['perturb_every']:,} updates; window {w} updates either side",
            awaken=f"{aw['formula']}; duration {aw['duration_updates']:,.0f} updates",
            wall=minutes(data["wall_seconds"]),
        ),
        "IQM [95% stratified bootstrap CI] over seeds; the actor's tau-dormant ratio "
        "(tau 0.025) after the activation; before/after: mean over every update in the "
        f"{w} updates up to and the {w} after each perturbation:",
        table(
            [
                "method",
                "final return",
                "final dormant ratio",
                "ratio before perturbation",
                "ratio after",
                "awaken noise std (first -> last eval)",
                "awakened",
                "paper",
            ],
            rows,
        ),
        table(
            ["probe env (SAC, default settings)", "dormant ratio, first eval", "last eval"], probe
        )
        if probe
        else "",
    )


_GPAYN_METHODS = ("G-PAYN", "SAC (grasp pose, no demos)", "SAC (scratch)", "Demonstrator")


def gpayn_grasp(data: dict) -> str:
    """``experiments/gpayn_grasp.py``: success rate and time to grasp per method, IQM
    [95% stratified bootstrap CI] over seeds with the shapes as strata, and per shape."""
    shapes = list(data["shapes"])
    a = data.get("args", {})
    rows = []
    for m in _GPAYN_METHODS:
        runs = [data["shapes"][s]["methods"][m] for s in shapes]
        succ = [np.asarray(r["success_per_seed"], np.float64) for r in runs]
        times = [
            np.asarray([t for t in (r["time_to_grasp_per_seed"] or []) if t is not None])
            for r in runs
        ]
        timed = [t for t in times if t.size]
        point, low, high = stratified_bootstrap_ci(succ, iqm)
        rows.append(
            [
                m,
                f"{point:.2f} [{low:.2f}, {high:.2f}]",
                f"{np.mean(np.concatenate(timed)):.1f}" if timed else "n/a",
                *(f"{np.mean(x):.2f}" for x in succ),
                data.get("paper", {}).get(m, ""),
            ]
        )
    return blocks(
        facts(
            shapes=", ".join(shapes),
            seeds=a.get("seeds"),
            budget=f"{a['steps']:,} env steps per run" if "steps" in a else None,
            init_alpha=a.get("init_alpha"),
            episodes=f"{a['eval_episodes']} final evaluation episodes per seed"
            if "eval_episodes" in a
            else None,
        ),
        "Success: the object held >= lift_height up by >= 2 fingertips. Time to grasp: env "
        "steps (0.04 s each) until success, over successful episodes. IQM [95% stratified "
        "bootstrap CI] over seeds, shapes as strata:",
        table(
            [
                "method",
                "success rate",
                "time to grasp (steps)",
                *(f"success, {s}" for s in shapes),
                "paper (Ceola et al. 2023)",
            ],
            rows,
        ),
        data.get("notes", ""),
    )


#: The stream-x paper's claim per row (figures, no table): Elsayed et al. 2024.
_STREAM_PAPER = {
    "stream-x": "learns",
    "classic": "fails",
    "sac1": "fails",
    "ppo1": "fails",
    "dqn1": "fails",
}
_BATCH1 = {"sac1": "SAC1", "ppo1": "PPO1", "dqn1": "DQN1"}


def stream_barrier(data: dict) -> str:
    """``experiments/stream_barrier.py``: stream-x against classic streaming learners and
    the batch methods at batch = buffer = 1 (``sac1``, ``ppo1``, ``dqn1``)."""
    meta = data["meta"]
    rows, batch_rows, per_lr = [], [], []
    for task, learners in data["results"].items():
        names = list(dict.fromkeys(k.split(" | ")[0] for k in learners if " | " in k))
        for learner in names:
            sx, cl = learners[f"{learner} | stream-x"], learners[f"{learner} | classic"]
            rows.append(
                [
                    f"{task} ({int(sx['env_steps'][-1]):,})",
                    learner,
                    iqm_ci(sx["final"]),
                    f"{iqm_ci(cl['final'])} ({cl['lr']:g})",
                    iqm_ci(np.asarray(sx["returns"], np.float64).mean(1)),
                    iqm_ci(np.asarray(cl["returns"], np.float64).mean(1)),
                    f"stream-x {_STREAM_PAPER['stream-x']}, classic {_STREAM_PAPER['classic']}",
                ]
            )
            for lr, m, n in zip(
                cl["lrs"], cl["final_mean_per_lr"], cl["diverged_seeds_per_lr"], strict=True
            ):
                mean = f"{m:.1f}" if np.isfinite(m) else "diverged"
                per_lr.append([task, learner, f"{lr:g}", mean, f"{n} of {len(cl['final'])}"])
        for key in (k for k in _BATCH1 if k in learners):
            r = learners[key]
            diverged = int(np.sum(r["diverged_seeds_per_lr"]))
            batch_rows.append(
                [
                    f"{task} ({int(r['env_steps'][-1]):,})",
                    f"{_BATCH1[key]} (`{key}`)",
                    f"{iqm_ci(r['final'])} ({r['lr']:g})",
                    iqm_ci(np.asarray(r["returns"], np.float64).mean(1)),
                    f"{diverged} of {len(r['final'])}",
                    _STREAM_PAPER[key],
                ]
            )
    return blocks(
        facts(
            seeds=meta["seeds"],
            budget=", ".join(f"{t} {s:,} env steps" for t, s in meta["budgets"].items()),
            wall=minutes(60 * meta["wall_min"]),
        ),
        f"Final return = mean of a seed's last {meta['final_evals']} evaluations; mean over "
        "the curve = a seed's mean over every evaluation; IQM [95% stratified bootstrap CI] "
        "over seeds. Classic: the best Adam learning rate (in brackets) chosen on the same seeds. "
        "Paper: Elsayed et al. 2024 (arXiv 2410.14606), the stream-barrier figures (no table).",
        table(
            [
                "task (steps)",
                "learner",
                "stream-x",
                "classic (best Adam lr)",
                "stream-x, mean over the curve",
                "classic, mean over the curve",
                "paper",
            ],
            rows,
        ),
        "Batch methods at batch = buffer = 1, their own default learning rate (in brackets):"
        if batch_rows
        else "",
        table(
            [
                "task (steps)",
                "method",
                "final return (lr)",
                "mean over the curve",
                "diverged seeds",
                "paper",
            ],
            batch_rows,
        )
        if batch_rows
        else "",
        "Classic learners at every Adam rate (mean final return over seeds; a rate with a "
        "diverged seed ranks last):",
        table(["task", "learner", "Adam lr", "final return (mean)", "diverged seeds"], per_lr),
    )


def mbrcsl_pointmaze(data: dict) -> str:
    """``experiments/mbrcsl_pointmaze.py``: MBRCSL vs RCSL, BC, IQL on Point Maze."""
    modes = [m for m in ("default", "full") if m in data]
    methods = list(dict.fromkeys(n for m in modes for n in data[m]["results"]))
    rows = []
    for name in methods:
        cells = []
        for mode in modes:
            r = data[mode]["results"].get(name)
            cells.append(iqm_ci(r["final_returns"]) if r else "not run")
        rows.append([name, *cells])
    gains = []
    for mode in modes:
        g = data[mode].get("gain_over_rcsl")
        if g:
            gains.append(
                f"{iqm_ci(g['per_seed'])}, ahead on {g['seeds_ahead']} of {len(g['per_seed'])}"
            )
        else:
            gains.append("-")
    rows.append(["MBRCSL - RCSL, same seed", *gains])
    ref = data[modes[0]]["references"]
    header = ["method", *(f"{m} ({data[m]['seeds']} seeds)" for m in modes)]
    wall = {m: sum(r.get("seconds", 0.0) for r in data[m]["results"].values()) for m in modes}
    return blocks(
        facts(
            seeds=", ".join(f"{m} {data[m]['seeds']}" for m in modes),
            wall=", ".join(f"{m} {minutes(wall[m])}" for m in modes),
        ),
        "Final return (16 evaluation episodes per seed), IQM [95% stratified bootstrap CI] "
        "over seeds. `default`: every algorithm's default config; `full`: the paper's "
        "dynamics ensemble and longer budgets (config overrides in the JSON).",
        table(header, rows),
        f"For scale: the dataset's best trajectory returns {ref['dataset_max']:.1f}, the "
        f"scripted stitched route {ref['scripted_stitched_route']:.1f}.",
    )


# --- benchmark -----------------------------------------------------------------------------


def _rate(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x / 1e3:.0f}k" if x >= 1e4 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _r(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def bench_quick(data: dict) -> str:
    """``jaxrl bench --quick``: jaxrl against rejax, SB3, SBX and Brax, paired rounds."""
    c, meta = data["cases"], data["meta"]
    rows = []
    if "ppo_cartpole" in c:
        p, k = c["ppo_cartpole"]["contenders"], c["ppo_cartpole"]
        rows += [
            [
                "PPO cartpole, env steps/s",
                f"{_rate(p['jaxrl']['env_steps_per_second'])} "
                f"(return {p['jaxrl']['final_return']:.0f})",
                f"rejax {_rate(p['rejax']['env_steps_per_second'])} "
                f"({p['rejax']['final_return']:.0f}), "
                f"SB3 {_rate(p['sb3']['env_steps_per_second'])}",
                f"{_r(k['ratio_steps_per_second_vs_rejax'])}, "
                f"{_r(k['ratio_steps_per_second_vs_sb3'])}",
            ],
            [
                f"PPO cartpole, compile s (median of {k['settings']['repeats']} paired compiles)",
                _s(p["jaxrl"]["compile_seconds"]),
                f"rejax {_s(p['rejax']['compile_seconds'])}",
                _r(k["ratio_compile_speedup_vs_rejax"]),
            ],
        ]
    if "ppo_cartpole_solve" in c:
        k = c["ppo_cartpole_solve"]
        p, st = k["contenders"], k["settings"]
        n, thr = st["seeds"], f"{st['threshold']:g}"

        def both(name: str) -> str:
            return (
                f"{_s(p[name]['seconds_to_threshold'])} / "
                f"{_s(p[name][f'seconds_to_threshold_{n}_seeds'])} s"
            )

        rows += [
            [
                f"time to {thr}, 1 / {n} seeds, rejax's settings",
                both("jaxrl"),
                f"rejax {both('rejax')}",
                f"{_r(k['ratio_time_to_solve_vs_rejax'])} / "
                f"{_r(k[f'ratio_time_to_solve_{n}_seeds_vs_rejax'])}",
            ],
            [
                f"time to {thr}, 1 / {n} seeds, own tuned settings",
                both("jaxrl_tuned"),
                f"rejax {both('rejax')}",
                f"{_r(k['ratio_time_to_solve_vs_tuned_rejax'])} / "
                f"{_r(k[f'ratio_time_to_solve_{n}_seeds_vs_tuned_rejax'])}",
            ],
            [
                f"time to {thr}, 1 / {n} seeds, rl-zoo settings",
                both("jaxrl_sb3_zoo"),
                f"SB3 {both('sb3')} ({n} x 1 seed)",
                f"{_r(k['ratio_time_to_solve_vs_sb3'])} / "
                f"{_r(k[f'ratio_time_to_solve_{n}_seeds_vs_sb3'])}",
            ],
            [
                f"time to {thr}, 1 / {n} seeds, jaxrl tuned vs SB3 zoo",
                both("jaxrl_tuned"),
                f"SB3 {both('sb3')}",
                f"{_r(k['ratio_time_to_solve_vs_tuned_sb3'])} / "
                f"{_r(k[f'ratio_time_to_solve_{n}_seeds_vs_tuned_sb3'])}",
            ],
        ]
    if "env_throughput" in c:
        k = c["env_throughput"]
        p = k["contenders"]
        rows += [
            [
                f"raw env steps/s, batch {k['settings']['num_envs']}",
                _rate(p["jaxrl"]["env_steps_per_second"]),
                f"gymnax {_rate(p['gymnax']['env_steps_per_second'])}",
                _r(k["ratio_steps_per_second_vs_gymnax"]),
            ],
            [
                "PPO / raw env throughput",
                _r(k["jaxrl_ppo_fraction_of_raw"]),
                f"rejax {_r(k['rejax_ppo_fraction_of_raw'])}",
                "",
            ],
        ]
    if "seed_scaling" in c:
        k = c["seed_scaling"]
        p = k["contenders"]
        n = str(max(int(s) for s in p["jaxrl"]["seeds"]))
        rows.append(
            [
                f"per-seed time at {n} seeds (1 seed = 1)",
                _r(p["jaxrl"]["seeds"][n]["per_seed_relative"]),
                f"rejax {_r(p['rejax']['seeds'][n]['per_seed_relative'])}",
                _r(k["ratio_per_seed_scaling_vs_rejax"][n]),
            ]
        )
    if "sac_pendulum" in c:
        k = c["sac_pendulum"]
        p, st = k["contenders"], k["settings"]
        hidden = "x".join(str(h) for h in st["hidden"])
        n = meta["budget"]["sac_solve_seeds"]
        rows += [
            [
                f"SAC pendulum, env steps/s ({hidden})",
                _rate(p["jaxrl"]["env_steps_per_second"]),
                ", ".join(
                    f"{label} {_rate(p[name]['env_steps_per_second'])}"
                    for name, label in (("rejax", "rejax"), ("sbx", "SBX"), ("sb3", "SB3"))
                ),
                ", ".join(
                    _r(k[f"ratio_steps_per_second_vs_{name}"]) for name in ("rejax", "sbx", "sb3")
                ),
            ],
            [
                f"TD3 pendulum, env steps/s ({hidden})",
                _rate(p["jaxrl_td3"]["env_steps_per_second"]),
                f"rejax {_rate(p['rejax_td3']['env_steps_per_second'])}",
                _r(k["ratio_steps_per_second_vs_rejax_td3"]),
            ],
        ]

        def solve(name: str) -> str:
            one, many = (
                p[name]["seconds_to_threshold"],
                p[name].get(f"seconds_to_threshold_{n}_seeds"),
            )
            if one is None:
                return "not solved"
            return f"{_s(one)} / {_s(many)} s"

        rows.append(
            [
                f"time to {st['threshold']:g}, SAC, 1 / {n} seeds",
                solve("jaxrl"),
                ", ".join(
                    f"{label} {solve(name)}"
                    for name, label in (("sbx", "SBX"), ("sb3", "SB3"), ("rejax", "rejax"))
                ),
                ", ".join(
                    f"{_r(k.get(f'ratio_time_to_solve_vs_{name}'))} / "
                    f"{_r(k.get(f'ratio_time_to_solve_{n}_seeds_vs_{name}'))}"
                    for name in ("sbx", "sb3")
                ),
            ]
        )
    if "stream_cartpole" in c:
        k = c["stream_cartpole"]
        a, b = k["settings"]["seed_counts"]
        rows.append(
            [
                f"stream AC cartpole, cost per step {b} seeds / {a}",
                "",
                "",
                _r(k[f"per_step_cost_{b}_over_{a}"]),
            ]
        )
    if "ppo_mjx" in c:
        k = c["ppo_mjx"]
        p = k["contenders"]
        for task, thr in k["settings"]["thresholds"].items():
            j, b = p[f"jaxrl/{task}"], p[f"brax/{task}"]
            rows += [
                [
                    f"PPO MJX {task}, env steps/s",
                    f"{_rate(j['env_steps_per_second'])} (return {j['final_return']:.0f})",
                    f"Brax {_rate(b['env_steps_per_second'])} ({b['final_return']:.0f})",
                    _r(k["ratio_steps_per_second_vs_brax"][task]),
                ],
                [
                    f"time to {thr:g}, MJX {task}, compile included",
                    f"{_s(j['seconds_to_threshold'])} s",
                    f"Brax {_s(b['seconds_to_threshold'])} s",
                    _r(k["ratio_time_to_solve_vs_brax"][task]),
                ],
            ]
    if "value_cartpole" in c:
        rows += _value_rows(c["value_cartpole"])
    extra = []
    if "drama_world_model" in c:
        k = c["drama_world_model"]
        lengths = [str(n) for n in k["settings"]["lengths"]]
        rows.append(
            [
                "Drama world model, Transformer / Mamba time at length " + " / ".join(lengths),
                "",
                "",
                " / ".join(_r(k["transformer_over_mamba_time"][n]) for n in lengths),
            ]
        )
        per = k["per_length"]
        extra = [
            f"Drama world-model step (`drama_world_model`: d_model {k['settings']['d_model']}, "
            f"{k['settings']['num_layers']} layers, {k['settings']['batch']} sequences per "
            "step); memory is XLA's compiled temp buffer size:",
            table(
                [
                    "length",
                    "Mamba ms/seq",
                    "Transformer ms/seq",
                    "Mamba temp MiB/seq",
                    "Transformer temp MiB/seq",
                ],
                [
                    [
                        n,
                        f"{1e3 * per[n]['mamba']['seconds_per_sequence']:.1f}",
                        f"{1e3 * per[n]['transformer']['seconds_per_sequence']:.1f}",
                        f"{per[n]['mamba']['temp_bytes_per_sequence'] / 2**20:.1f}",
                        f"{per[n]['transformer']['temp_bytes_per_sequence'] / 2**20:.1f}",
                    ]
                    for n in lengths
                ],
            ),
        ]
    seconds = meta.get("case_seconds", {})
    if seconds:
        extra.append(
            "Wall seconds per case: "
            + ", ".join(f"`{name}` {s:.0f}" for name, s in seconds.items())
            + f" (cases total {sum(seconds.values()):.0f} s)."
        )
    v = meta.get("versions", {})
    return blocks(
        facts(
            mode=meta["mode"],
            devices=f"{meta['devices']} {meta['backend']}",
            CPU_cores=meta.get("cpu_count"),
            machine=meta.get("machine"),
            date=meta.get("date"),
            jax=v.get("jax"),
            wall=minutes(meta["wall_seconds"]),
        ),
        "Ratios read higher-is-better for jaxrl (contender / jaxrl for times).",
        table(["case", "jaxrl", "contender", "ratio (jaxrl / contender)"], rows),
        *extra,
    )


def _value_rows(k: dict) -> list[list[str]]:
    """``value_cartpole``'s rows: DQN and PQN against rejax's, on rejax's settings."""
    p, st = k["contenders"], k["settings"]
    thr = f"{st['threshold']:g}"

    def solve(c: dict, n: int) -> str:
        one, many = c["seconds_to_threshold"], c.get(f"seconds_to_threshold_{n}_seeds")
        if one is None:
            return "not solved"
        return f"{_s(one)} / {_s(many)} s" if n > 1 else f"{_s(one)} s"

    rows = []
    for algo in ("dqn", "pqn"):
        ours, theirs, label = p[f"jaxrl_{algo}"], p.get(f"rejax_{algo}", {}), algo.upper()
        if theirs.get("status") != "ok":
            continue
        n = st["seeds"][algo]
        ratio = {
            name: _r(k.get(f"ratio_{name}_vs_rejax_{algo}"))
            for name in ("steps_per_second", "compile_speedup", "time_to_solve")
        }
        many = _r(k.get(f"ratio_time_to_solve_{n}_seeds_vs_rejax_{algo}"))
        seeds = f"1 / {n} seeds" if n > 1 else "1 seed"
        steps = st["steps"][algo]
        rows += [
            [
                f"{label} cartpole, env steps/s ({steps // 1000}k steps)",
                f"{_rate(ours['env_steps_per_second'])} (return {ours['final_return']:.0f})",
                f"rejax {_rate(theirs['env_steps_per_second'])} ({theirs['final_return']:.0f})",
                ratio["steps_per_second"],
            ],
            [
                f"{label} cartpole, compile s",
                _s(ours["compile_seconds"]),
                f"rejax {_s(theirs['compile_seconds'])}",
                ratio["compile_speedup"],
            ],
            [
                f"{label} time to {thr}, {seeds}, rejax's settings",
                solve(ours, n),
                f"rejax {solve(theirs, n)}",
                f"{ratio['time_to_solve']} / {many}" if n > 1 else ratio["time_to_solve"],
            ],
        ]
    return rows


def bench_atari(data: dict) -> str:
    """``atari_throughput`` from ``jaxrl bench --quick``: Breakout stepped four ways."""
    k, meta = data["cases"]["atari_throughput"], data["meta"]
    st, p = k["settings"], k["contenders"]
    env_sps = p["jaxrl/env"]["env_steps_per_second"]
    labels = {
        "jaxrl/env": f"`ale/{st['game']}` alone, in one jitted scan",
        "jaxrl/ppo": "jaxrl PPO training on it (`ale` preset's network), one program",
        "gymnasium": "ale-py `AtariVectorEnv` stepped from Python",
        "host": f"host env `atari/{st['game']}` (one emulator, from Python)",
    }
    rows = []
    for name, label in labels.items():
        c = p.get(name, {})
        if c.get("status") != "ok":
            rows.append([label, "missing", "", "", ""])
            continue
        rows.append(
            [
                label,
                _s(c["compile_seconds"]) if c["compile_seconds"] is not None else "",
                f"{c['env_steps_per_second']:,.0f}",
                f"{c['frames_per_second']:,.0f}",
                f"{c['env_steps_per_second'] / env_sps:.2f}",
            ]
        )
    emulators = f"{st['num_envs']} emulators" if "num_envs" in st else ""
    return blocks(
        facts(
            mode=meta["mode"],
            game=st["game"],
            envs=emulators,
            agent_steps=st["steps"],
            repeats=st["repeats"],
            CPU_cores=meta.get("cpu_count"),
            jax=meta.get("versions", {}).get("jax"),
        ),
        f"Protocol: {st['protocol']}. Agent steps per second (frames = 4x), median of "
        "the timed runs; the last column is each way's rate over the in-program env's.",
        table(["way", "compile s", "agent steps/s", "frames/s", "/ env alone"], rows),
    )


# --- the registry --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Renderer:
    """A section's source ``file`` (relative to ``experiments/results/``) and ``render``."""

    file: str
    render: Callable[[dict], str]


#: Section name -> renderer. The one place a results file is tied to its table.
RENDERERS: dict[str, Renderer] = {
    "assistance_game": Renderer("assistance_game.json", assistance_game),
    "assistance_game_gamma0.5": Renderer("gamma0.5/assistance_game.json", assistance_game),
    "bench_atari": Renderer("bench_quick.json", bench_atari),
    "bench_compile": Renderer("bench_compile.json", bench_compile),
    "bench_quick": Renderer("bench_quick.json", bench_quick),
    "drama_atari": Renderer("drama_atari.json", drama_atari),
    "drama_minatar": Renderer("drama_minatar.json", drama_minatar),
    "drm_dormant": Renderer("drm_dormant.json", drm_dormant),
    "drrpo_shift": Renderer("drrpo_shift.json", drrpo_shift),
    "drrpo_shift_beta3": Renderer("drrpo_shift_beta3.json", drrpo_shift),
    "drrpo_shift_per_step": Renderer("drrpo_shift_per_step.json", drrpo_shift),
    "dsac_vs_sac": Renderer("dsac_vs_sac.json", dsac_vs_sac),
    "dsac_vs_sac_pendulum30k": Renderer("dsac_vs_sac_pendulum30k.json", dsac_vs_sac),
    "dsac_vs_sac_official": Renderer("dsac_vs_sac_official.json", dsac_vs_sac),
    "gpayn_grasp": Renderer("gpayn_grasp.json", gpayn_grasp),
    "mbrcsl_pointmaze": Renderer("mbrcsl_pointmaze.json", mbrcsl_pointmaze),
    "memory_task": Renderer("memory_task.json", memory_task),
    "muzero_assist": Renderer("muzero_assist.json", muzero_assist),
    "pbt_vs_grid": Renderer("pbt_vs_grid.json", pbt_vs_grid),
    "seed_scaling": Renderer("seed_scaling.json", seed_scaling),
    "srl_fas": Renderer("srl_fas.json", srl_fas),
    "stream_barrier": Renderer("stream_barrier.json", stream_barrier),
    "sweep_compile": Renderer("sweep_compile.json", sweep_compile),
}
