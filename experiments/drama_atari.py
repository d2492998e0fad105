"""Drama on a real Atari game (Atari100k protocol) through the CLI's run driver.

    python experiments/drama_atari.py --game Pong --steps 5000 --seeds 1

Runs ``runner.run("drama", "atari/<game>")`` (the same code path as ``jaxrl train drama
--env atari/<game>``) with a CPU-sized Drama (``CONFIG``; ``--set k=v`` overrides), plus
a uniformly random policy under the same protocol, and reports the final evaluation
return and its human-normalised score (HNS = (score - random) / (human - random) with the
standard Atari random/human reference scores). Writes
``experiments/results/drama_atari.{json,png}``; its table is rendered from the JSON by
``python -m jaxrl.report build`` (docs/results.md) and printed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxrl import envs, runner
from jaxrl import logging as jlog
from jaxrl.agents.model_based import drama
from jaxrl.cli import parse_overrides
from jaxrl.report.renderers import RENDERERS

RESULTS = Path(__file__).parent / "results"
#: Random and human reference scores used by Atari100k papers (DQN, Mnih et al. 2015;
#: the Atari100k tables of SimPLe, DreamerV3, STORM and Drama use the same values).
REFERENCE = {"Pong": (-20.7, 14.6), "Breakout": (1.7, 30.5), "Boxing": (0.1, 12.1)}
#: On top of the ``atari`` preset (CNN 16/32, wm_batch 8, img_batch 64, 2 x 3 evaluation
#: episodes): one update per 8 agent steps after 1,000 random ones.
CONFIG = {"train_every": 8, "warmup_steps": 1000}


def random_returns(game: str, episodes: int, seed: int) -> list[float]:
    """Whole-episode returns of a uniformly random policy under the same protocol."""
    env = envs.make(f"atari/{game}", seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated = env.step(
                int(rng.integers(env.action_spec.num_actions))
            )
            total, done = total + reward, terminated or truncated
        out.append(total)
    return out


def hns(score: float, game: str) -> float | None:
    if game not in REFERENCE:
        return None
    low, high = REFERENCE[game]
    return (score - low) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="Pong")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--random-episodes", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    out = Path(args.out)
    config_over, hparam_over = parse_overrides(args.set, drama.Config, drama.HParams)
    start = time.perf_counter()
    result = runner.run(
        "drama",
        f"atari/{args.game}",
        seeds=args.seeds,
        steps=args.steps,
        config=CONFIG | config_over,
        hparams=hparam_over,
        out=Path("runs") / f"drama_atari_{args.game}",
        progress=False,
        log=None,
    )
    wall = time.perf_counter() - start
    rnd = random_returns(args.game, args.random_episodes, seed=123)
    s, m = result.summary, result.metrics
    record = {
        "game": args.game,
        "steps": args.steps,
        "seeds": args.seeds,
        "config": s["config"],
        "env_steps": m["env_steps"][0].tolist(),
        "eval_return": m["eval_return"].tolist(),
        "train_return": m["train_return"].tolist(),
        "final_returns": s["final_returns"],
        "final_hns": [hns(x, args.game) for x in s["final_returns"]],
        "random_returns": rnd,
        "reference_random_human": REFERENCE.get(args.game),
        "wall_seconds": wall,
        "first_call_seconds": s["compile_seconds"],
        "steps_per_second": s["steps_per_second"],
    }
    out.mkdir(parents=True, exist_ok=True)
    jlog.atomic_write(out / "drama_atari.json", json.dumps(record, indent=1))
    fig, ax = jlog.new_figure()
    steps = np.asarray(record["env_steps"])
    for i, row in enumerate(np.asarray(record["eval_return"])):
        ax.plot(steps, row, marker="o", label=f"Drama eval, seed {i}")
    ax.axhline(np.mean(rnd), color="grey", linestyle="--", label="random")
    ax.set_xlabel("agent steps")
    ax.set_ylabel("episode return")
    ax.set_title(f"Drama on atari/{args.game}")
    ax.legend()
    jlog.save_figure(fig, out / "drama_atari.png")
    print(RENDERERS["drama_atari"].render(record))


if __name__ == "__main__":
    main()
