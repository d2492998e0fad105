"""DrM's mechanism at work: an actor's tau-dormant ratio grows under SAC and DrM's
perturbation brings it down (Xu et al. 2023, "DrM: Mastering Visual Reinforcement
Learning through Dormant Ratio Minimization", ICLR 2024).

DrM and SAC train with the same networks, replay settings, update-to-data ratio,
learning rates and seeds (vmapped), both with ``log_dormant=True``, in a setting chosen
to make actor units go dormant on a CPU budget: a high update-to-data ratio and a large
learning rate. The dormant ratio is DrM's (tau 0.025, units measured after their
activation, output heads included). DrM perturbs every ``--perturb-every`` updates
(the paper: every 100k env steps in runs of 1-3M).

    python experiments/drm_dormant.py                       # the recorded setting
    python experiments/drm_dormant.py --steps 2000 --seeds 2 --out /tmp/drm_dormant

Writes ``drm_dormant.json`` (per algorithm and seed: evaluation returns and dormant
ratios at each evaluation point, per-layer ratios, perturbations) and ``drm_dormant.png``
(return and actor dormant ratio over training) under ``--out``; its table (IQM [95%
stratified bootstrap CI] over seeds) is rendered from the JSON by ``python -m jaxrl.report
build`` (docs/results.md) and printed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxrl import report, runner
from jaxrl.agents.actor_critic import drm, sac
from jaxrl.logging import atomic_write, new_figure, save_figure
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"
ALGOS = {"SAC": sac, "DrM": drm}
#: DrM's claim (arXiv 2310.19668, its dormant-ratio and return curves): on DMC, MetaWorld
#: and Adroit visual tasks the actor's dormant ratio falls under DrM and stays below the
#: baselines' (DrQ-v2, ALIX), while DrM's return rises above theirs. No number at this scale.
PAPER = {
    "SAC": "baselines' (DrQ-v2, ALIX) dormant ratio stays high; no number at this scale",
    "DrM": "dormant ratio falls and return rises vs baselines (DMC/MetaWorld/Adroit visual, "
    "arXiv 2310.19668); no number at this scale",
}


def config(algo, args) -> dict:
    cfg = {
        "total_steps": args.steps,
        "warmup_steps": args.warmup,
        "utd_ratio": args.utd,
        "hidden": tuple(int(h) for h in args.hidden.split(",")),
        "batch_size": args.batch,
        "num_evals": args.evals,
        "log_dormant": True,
    }
    if algo is drm:
        cfg["perturb_every"] = args.perturb_every
    return cfg


def train(algo, args) -> dict:
    lr = {"actor_lr": args.lr, "critic_lr": args.lr}
    if algo is drm:
        lr["value_lr"] = args.lr
    t0 = time.perf_counter()
    r = runner.run(
        algo.SPEC,
        args.env,
        seeds=args.seeds,
        config=config(algo, args),
        hparams=lr,
        progress=False,
        log=None,
    )
    m = {k: np.asarray(v) for k, v in r.metrics.items()}
    out = {
        "env_steps": m["env_steps"][0].tolist(),
        "returns": m["eval_return"].tolist(),  # [S, E]
        "dormant_ratio": m["dormant_ratio"].tolist(),  # [S, E], the actor's
        "layers": {
            k.split("/", 1)[1]: v.tolist() for k, v in m.items() if k.startswith("dormant_ratio/")
        },
        "wall_seconds": time.perf_counter() - t0,
    }
    if "perturbations" in m:
        out["perturbations"] = m["perturbations"][:, -1].tolist()
    return out


def stat(x) -> dict:
    point, low, high = report.stratified_bootstrap_ci([np.asarray(x, np.float64)], report.iqm)
    return {"iqm": point, "low": low, "high": high}


def summarise(r: dict) -> dict:
    ret, dr = np.asarray(r["returns"]), np.asarray(r["dormant_ratio"])
    half = dr.shape[1] // 2
    return {
        "final_return": stat(ret[:, -1]),
        "final_dormant": stat(dr[:, -1]),
        "late_dormant": stat(dr[:, half:].mean(1)),  # mean over the second half
        "peak_dormant": stat(dr.max(1)),
    }


def fmt(s: dict, digits: int = 1) -> str:
    return f"{s['iqm']:.{digits}f} [{s['low']:.{digits}f}, {s['high']:.{digits}f}]"


def perturb_steps(a: dict) -> list[int]:
    """Env steps at which DrM's perturbations fall (updates start after the warm-up)."""
    per_step = a["perturb_every"] / a["utd"]
    k = int((a["steps"] - a["warmup"]) // per_step)
    return [round(a["warmup"] + i * per_step) for i in range(1, k + 1)]


def plot(results: dict, path: Path, args) -> None:
    fig, (ax_r, ax_d) = new_figure(1, 2, figsize=(10, 3.8), dpi=100)
    for x in perturb_steps(vars(args)):
        for ax in (ax_r, ax_d):
            ax.axvline(x, color="C3", lw=0.8, ls=":")
    for color, (name, r) in zip(("C0", "C3"), results.items(), strict=False):
        x = np.asarray(r["env_steps"])
        for ax, key in ((ax_r, "returns"), (ax_d, "dormant_ratio")):
            y = np.asarray(r[key])
            mean, low, high = report.bootstrap_band(y)
            ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
            ax.plot(x, mean, color=color, label=name)
    ax_r.set_ylabel("evaluation return")
    ax_d.set_ylabel("actor tau-dormant ratio (tau 0.025)")
    for ax in (ax_r, ax_d):
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{args.env}: UTD {args.utd}, hidden {args.hidden}, lr {args.lr}, {args.seeds} seeds "
        "(mean, 95% bootstrap CI)"
    )
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pendulum")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--utd", type=float, default=4.0)
    p.add_argument("--hidden", default="128,128")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--perturb-every", type=int, default=3000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--evals", type=int, default=15)
    p.add_argument("--algos", default="SAC,DrM")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--from-json", help="re-render the table and plot from a written JSON")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.from_json:
        record = json.loads(Path(args.from_json).read_text())
        args = argparse.Namespace(**{**record["args"], "out": str(out)})
        return write(out, record, args)
    t0 = time.perf_counter()
    results = {}
    for name in args.algos.split(","):
        results[name] = train(ALGOS[name], args)
        s = summarise(results[name])
        print(
            f"{name}: return {fmt(s['final_return'])}, dormant final "
            f"{fmt(s['final_dormant'], 3)} ({results[name]['wall_seconds']:.0f} s)",
            flush=True,
        )
    meta = {"args": vars(args), "wall_seconds": time.perf_counter() - t0}
    return write(out, {**meta, "paper": PAPER, "results": results}, args)


def write(out: Path, record: dict, args) -> dict:
    """Writes ``drm_dormant.{json,png}`` under ``out`` from ``record``."""
    results = record["results"]
    record["summary"] = {k: summarise(r) for k, r in results.items()}
    record["perturb_env_steps"] = perturb_steps(vars(args))
    atomic_write(out / "drm_dormant.json", (json.dumps(record, indent=1) + "\n").encode())
    plot(results, out / "drm_dormant.png", args)
    print(RENDERERS["drm_dormant"].render(record))
    return record


if __name__ == "__main__":
    main()
