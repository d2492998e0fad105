"""DrM's mechanism at work, all three parts on, against SAC and MENTOR (Xu et al. 2023,
"DrM: Mastering Visual Reinforcement Learning through Dormant Ratio Minimization", ICLR
2024; official code github.com/XuGW-Kevin/DrM, ``agents/drm.py``).

SAC, DrM and MENTOR train at their default learning rates with the same networks,
replay settings, update-to-data ratio and seeds (vmapped), each with ``log_dormant``.
DrM runs its three parts: the dormant-ratio-guided perturbation every
``--perturb-every`` updates, awakened exploration (``awaken_exploration``: noise std
``max(1 / (1 + exp(-10 (beta - 0.2))), linear(1 -> 0.1 over --awaken-duration updates
since awakening))``, DrM's ``stddev_type: awake``; the decay is a third of the run's
updates as in DrM's configs, e.g. 500k of 1.5M agent steps) and the expectile
exploitation. MENTOR (method key ``mentor``) is DrM with a MoE actor and task-oriented
perturbation, the same three parts.

Around each perturbation the compiled program records the actor's dormant ratio at every
update, ``--window`` updates either side, into a fixed-size ``[P, 2W]`` buffer of the
agent state (``jaxrl.transforms.dormant.window_slot``; read from the final state by
``drm.HOOK``), a small metric beside the ``--evals`` periodic evaluations.

Task: dormancy has to rise at default settings. Considered: ``pendulum`` (the last run
needed lr 10x to see it), ``brax/inverted_double_pendulum`` and ``brax/hopper`` (larger
observations and longer runs, where ReDo and DrM report more dormant units; MJX compiles
take minutes here). ``--probe`` trains SAC alone at default settings on each candidate of
``--probe-envs`` and records the dormant ratio's rise (``probe`` in the JSON), so
the task is chosen from data; the default ``--env`` is ``pendulum`` at UTD 4.

    python experiments/drm_dormant.py --probe                  # pick the task
    python experiments/drm_dormant.py --algos sac              # one method per call
    python experiments/drm_dormant.py --algos drm
    python experiments/drm_dormant.py --algos mentor           # then merges the three
    python experiments/drm_dormant.py --steps 1500 --seeds 2 --out /tmp/drm   # smoke

Each call writes ``drm_dormant.<method>.json.part`` per method it ran (the probe
``drm_dormant.probe.json.part``; parts are not committed, ``.gitignore``) and merges every
part run with the same settings, and the probe, into ``drm_dormant.json`` (per method
and seed: evaluation returns, dormant ratios and awaken noise std per evaluation, the
per-perturbation windows; top level ``awaken``: the schedule and each seed's awakening
update) and
``drm_dormant.png``. Its table is rendered by ``python -m jaxrl.report build``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxrl import report, runner
from jaxrl.agents.actor_critic import drm, mentor, sac
from jaxrl.logging import atomic_write, new_figure, save_figure
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"
ALGOS = {"sac": sac, "drm": drm, "mentor": mentor}
LABELS = {"sac": "SAC", "drm": "DrM", "mentor": "MENTOR"}
#: The settings a merged record's parts must share.
SHARED = ("env", "steps", "warmup", "utd", "hidden", "batch", "perturb_every", "window", "seeds")
#: DrM's claim (arXiv 2310.19668, its dormant-ratio and return curves): the actor's
#: dormant ratio falls under DrM and stays below the baselines' (DrQ-v2, ALIX) on DMC,
#: MetaWorld and Adroit visual tasks while its return rises above theirs. MENTOR (Huang et
#: al. 2024) reports returns above DrM's on the same suites. No number at this scale.
PAPER = {
    "sac": "baselines' (DrQ-v2, ALIX) dormant ratio stays high; no number at this scale",
    "drm": "dormant ratio falls and return rises vs baselines (DMC/MetaWorld/Adroit visual); "
    "no number at this scale",
    "mentor": "return above DrM's (DMC/MetaWorld/Adroit, Huang et al. 2024); no number at "
    "this scale",
}


def num_updates(a: dict) -> int:
    """Gradient updates of a run (updates start after the warm-up, ``utd`` per step)."""
    return int(round((a["steps"] - a["warmup"]) * a["utd"]))


def num_windows(a: dict) -> int:
    """Perturbations whose after-window ends inside the run."""
    return max(0, (num_updates(a) - a["window"]) // a["perturb_every"])


def awaken_duration(a: dict) -> float:
    """``--awaken-duration`` or a third of the run's updates (DrM's configs' ratio)."""
    return float(a["awaken_duration"] or max(1, num_updates(a) // 3))


def config(name: str, a: dict) -> dict:
    cfg = {
        "total_steps": a["steps"],
        "warmup_steps": a["warmup"],
        "utd_ratio": a["utd"],
        "hidden": tuple(int(h) for h in str(a["hidden"]).split(",")),
        "batch_size": a["batch"],
        "num_evals": a["evals"],
        "log_dormant": True,
    }
    if name != "sac":  # DrM's three parts on, the windows recorded
        cfg.update(
            perturb=True,
            exploitation=True,
            awaken_exploration=True,
            perturb_every=a["perturb_every"],
            dormant_window=a["window"],
            num_windows=num_windows(a),
        )
    return cfg


def hparams(name: str, a: dict) -> dict:
    return {} if name == "sac" else {"explore_duration": awaken_duration(a)}


def train(name: str, a: dict, env: str | None = None) -> dict:
    """One method's runs (``a["seeds"]`` vmapped seeds) as a JSON-ready dict."""
    t0 = time.perf_counter()
    r = runner.run(
        ALGOS[name].SPEC,
        env or a["env"],
        seeds=a["seeds"],
        config=config(name, a),
        hparams=hparams(name, a),
        progress=False,
        log=None,
    )
    m = {k: np.asarray(v) for k, v in r.metrics.items()}
    out = {
        "env_steps": m["env_steps"][0].tolist(),
        "returns": m["eval_return"].tolist(),  # [S, E]
        "dormant_ratio": m["dormant_ratio"].tolist(),  # [S, E], the actor's, period means
        "layers": {
            k.split("/", 1)[1]: v.tolist() for k, v in m.items() if k.startswith("dormant_ratio/")
        },
        "wall_seconds": time.perf_counter() - t0,
    }
    if "explore_std" in m:
        out["awaken_std"] = m["explore_std"].tolist()  # [S, E], period means
    if "perturbations" in m:
        out["perturbations"] = m["perturbations"][:, -1].tolist()
    if "dormant_window" in r.summary:
        out["window"] = r.summary["dormant_window"]  # [S, P, 2W]
        out["awaken_update"] = r.summary["awaken_update"]  # [S]
    return out


def probe(args) -> dict:
    """SAC alone at default settings on each candidate env: does dormancy rise? Adds to
    the saved probe of the same settings (one env per call fits the CPU lock)."""
    a = vars(args)
    path = Path(args.out) / "drm_dormant.probe.json.part"
    settings = {k: a[k] for k in (*SHARED, "evals")}
    record = json.loads(path.read_text()) if path.exists() else {}
    if record.get("args") != settings:
        record = {"args": settings, "envs": {}}
    for env in args.probe_envs.split(","):
        r = train("sac", a, env)
        dr = np.asarray(r["dormant_ratio"])
        record["envs"][env] = {
            "dormant_first": dr[:, 0].tolist(),
            "dormant_last": dr[:, -1].tolist(),
            "rise": (dr[:, -1] - dr[:, 0]).tolist(),
            "wall_seconds": r["wall_seconds"],
        }
        print(f"{env}: dormant {dr[:, 0].mean():.3f} -> {dr[:, -1].mean():.3f}", flush=True)
        atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())
    return record


def awaken_record(a: dict, results: dict) -> dict:
    """The awakened-exploration schedule's settings and each method's awakening updates."""
    hp = drm.HParams()
    return {
        "formula": "max(scale / (1 + exp(-temp (beta - target))), "
        "linear(std_init -> std_final over duration updates since awaken_update)); "
        "before awakening the sigmoid alone; awaken_update: first update with beta < target",
        "target": hp.target_dormant_ratio,
        "temp": hp.dormant_temp,
        "scale": hp.explore_std_scale,
        "std_init": 1.0,
        "std_final": hp.explore_std_final,
        "duration_updates": awaken_duration(a),
        "awaken_update": {
            k: r["awaken_update"] for k, r in results.items() if "awaken_update" in r
        },
    }


def stat(x) -> dict:
    point, low, high = report.stratified_bootstrap_ci([np.asarray(x, np.float64)], report.iqm)
    return {"iqm": point, "low": low, "high": high}


def window_summary(r: dict, half_width: int) -> dict:
    """Per seed, over its perturbations: the mean ratio before (offsets ``-W+1..0``) and
    after (``1..W``), and the lowest after."""
    w = np.asarray(r["window"], np.float64)  # [S, P, 2W]
    before, after = w[..., :half_width], w[..., half_width:]
    return {
        "before": stat(before.mean((1, 2))),
        "after": stat(after.mean((1, 2))),
        "lowest_after": stat(after.min(2).mean(1)),
    }


def summarise(r: dict, half_width: int) -> dict:
    ret, dr = np.asarray(r["returns"]), np.asarray(r["dormant_ratio"])
    half = dr.shape[1] // 2
    out = {
        "final_return": stat(ret[:, -1]),
        "final_dormant": stat(dr[:, -1]),
        "late_dormant": stat(dr[:, half:].mean(1)),
        "peak_dormant": stat(dr.max(1)),
    }
    if r.get("window") and np.asarray(r["window"]).size:
        out["window"] = window_summary(r, half_width)
    return out


def perturb_steps(a: dict) -> list[int]:
    """Env steps at which the perturbations fall (updates start after the warm-up)."""
    per_step = a["perturb_every"] / a["utd"]
    k = num_updates(a) // a["perturb_every"]
    return [round(a["warmup"] + i * per_step) for i in range(1, k + 1)]


def plot(record: dict, path: Path) -> None:
    a, results = record["args"], record["results"]
    fig, (ax_r, ax_d, ax_w) = new_figure(1, 3, figsize=(14, 3.8), dpi=100)
    for x in perturb_steps(a):
        for ax in (ax_r, ax_d):
            ax.axvline(x, color="C3", lw=0.8, ls=":")
    for i, (name, r) in enumerate(results.items()):
        color = f"C{i}"
        x = np.asarray(r["env_steps"])
        for ax, key in ((ax_r, "returns"), (ax_d, "dormant_ratio")):
            mean, low, high = report.bootstrap_band(np.asarray(r[key]))
            ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
            ax.plot(x, mean, color=color, label=LABELS[name])
        if r.get("window") and np.asarray(r["window"]).size:
            w = np.asarray(r["window"])  # [S, P, 2W]: mean over seeds, one line per perturbation
            offsets = np.arange(w.shape[-1]) - a["window"] + 1
            for p in range(w.shape[1]):
                ax_w.plot(offsets, w[:, p].mean(0), color=color, alpha=0.4 + 0.6 * p / w.shape[1])
            ax_w.plot([], [], color=color, label=LABELS[name])
    ax_r.set_ylabel("evaluation return")
    ax_d.set_ylabel("actor tau-dormant ratio (tau 0.025)")
    ax_w.set_ylabel("dormant ratio at every update")
    ax_w.set_xlabel("updates from the perturbation")
    ax_w.axvline(0.5, color="C3", lw=0.8, ls=":")
    for ax in (ax_r, ax_d, ax_w):
        if ax is not ax_w:
            ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{a['env']}: UTD {a['utd']}, hidden {a['hidden']}, default lr, {a['seeds']} seeds "
        "(mean, 95% bootstrap CI)"
    )
    fig.tight_layout()
    save_figure(fig, path)


def merge(out: Path, a: dict) -> dict | None:
    """The record of every saved part run with ``a``'s shared settings, or None."""
    results = {}
    for name in ALGOS:
        path = out / f"drm_dormant.{name}.json.part"
        if not path.exists():
            continue
        part = json.loads(path.read_text())
        if all(part["args"][k] == a[k] for k in SHARED):
            results[name] = part["result"]
    if not results:
        return None
    record = {"args": a, "paper": PAPER, "results": results, "awaken": awaken_record(a, results)}
    probed = out / "drm_dormant.probe.json.part"
    if probed.exists():
        record["probe"] = json.loads(probed.read_text())
    return record


def write(out: Path, record: dict) -> dict:
    """Writes ``drm_dormant.{json,png}`` under ``out`` from ``record``."""
    a = record["args"]
    record["summary"] = {k: summarise(r, a["window"]) for k, r in record["results"].items()}
    record["perturb_env_steps"] = perturb_steps(a)
    record["wall_seconds"] = sum(r["wall_seconds"] for r in record["results"].values())
    atomic_write(out / "drm_dormant.json", (json.dumps(record, indent=1) + "\n").encode())
    plot(record, out / "drm_dormant.png")
    print(RENDERERS["drm_dormant"].render(record))
    return record


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pendulum")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--utd", type=float, default=4.0)
    p.add_argument("--hidden", default="128,128")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--perturb-every", type=int, default=5000, help="updates")
    p.add_argument("--window", type=int, default=200, help="updates either side")
    p.add_argument("--awaken-duration", type=float, default=0.0, help="0: a third of the run")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--evals", type=int, default=12)
    p.add_argument("--algos", default="sac,drm,mentor")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--probe", action="store_true", help="SAC alone on --probe-envs")
    p.add_argument("--probe-envs", default="pendulum,brax/inverted_double_pendulum,brax/hopper")
    p.add_argument("--from-json", help="re-render the table and plot from a written JSON")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        return write(out, json.loads(Path(args.from_json).read_text()))
    if args.probe:
        return probe(args)
    a = {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "probe")}
    for name in args.algos.split(","):
        if name not in ALGOS:
            raise SystemExit(f"unknown method {name!r}; one of {', '.join(ALGOS)}")
        result = train(name, a)
        part = {"args": a, "result": result}
        atomic_write(out / f"drm_dormant.{name}.json.part", (json.dumps(part) + "\n").encode())
        s = summarise(result, a["window"])
        print(
            f"{name}: return {s['final_return']['iqm']:.1f}, dormant final "
            f"{s['final_dormant']['iqm']:.3f} ({result['wall_seconds']:.0f} s)",
            flush=True,
        )
    record = merge(out, a)
    return write(out, record) if record else None


if __name__ == "__main__":
    main()
