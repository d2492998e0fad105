"""DR-RPO under test-time dynamics shift, and its online regret.

Trains DR-RPO at several TV radii ``rho``, the non-robust learner (``rho = 0``) and the
robust learner without policy regularisation (``kl_coef = 0``) on the nominal env
(``shift = 0``), all methods and seeds in one compiled run, then evaluates each
final bonus-free policy on the env with its dynamics shifted (``linear/<name>`` with
``shift = s``): exactly (policy evaluation in the shifted model) and by the library's
evaluation routine (Monte Carlo episodes in the shifted env). The run goes in
evaluation periods (``Trainer.run_periods``); after each, the exact robust value (at the
method's own ``rho``) of the policy that acts gives the regret
``sum_k V*_rho(s_1) - V^{pi_k}_rho(s_1)`` (the policy is taken as constant within a
period, the mean of its values at the period's two ends), fitted as ``log R ~ a log K``
against the paper's ``sqrt(K)`` rate.

    python experiments/drrpo_shift.py --env linear/windy --seeds 10 --steps 12000

Writes ``drrpo_shift.json`` (per method and seed: returns per shift, exact and Monte
Carlo; regret curve) and ``drrpo_shift.png`` under ``--out``; its tables (IQM with 95%
stratified bootstrap CIs) are rendered from the JSON by ``python -m jaxrl.report build``
(docs/results.md) and printed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import compile_cache, envs, report
from jaxrl.agents.linear import drrpo
from jaxrl.envs import linear
from jaxrl.logging import atomic_write
from jaxrl.loops.evaluate import evaluate
from jaxrl.loops.streaming import learners
from jaxrl.report.renderers import RENDERERS

#: label -> (rho, kl_coef); beta is the default.
METHODS = {
    "DR-RPO rho=0.05": (0.05, 0.02),
    "DR-RPO rho=0.1": (0.1, 0.02),
    "DR-RPO rho=0.2": (0.2, 0.02),
    "non-robust (rho=0)": (0.0, 0.02),
    "robust, no KL (rho=0.1)": (0.1, 0.0),
}
SHIFTS = (0.0, 0.05, 0.1, 0.2, 0.3)


def exact_return(mdp, mu: np.ndarray, log_pi: np.ndarray, rho: float = 0.0) -> float:
    """Value at the start state of the policy ``softmax(log_pi) [H, S, A]`` in the model
    ``phi^T mu`` (robust at radius ``rho``)."""
    pi = np.exp(log_pi - log_pi.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    v = linear.robust_dp(mdp.features_np, mu, mdp.reward_np, mdp.horizon, rho, policy=pi)[1]
    return float(v[0, mdp.start])


def greedy_log_pi(log_pi: np.ndarray) -> np.ndarray:
    """The deterministic evaluation policy (``argmax``) as log-probabilities."""
    one = np.eye(log_pi.shape[-1])[np.argmax(log_pi, -1)]
    return np.where(one > 0, 0.0, -1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="linear/windy")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=12_000)
    parser.add_argument("--periods", type=int, default=20)
    parser.add_argument("--eval-episodes", type=int, default=256)
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--from-json", help="re-render the table and plot from this JSON")
    args = parser.parse_args()
    compile_cache.configure()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        write_outputs(json.loads(Path(args.from_json).read_text()), out)
        return

    env = envs.make(args.env)
    mdp = env.unwrapped
    spec = drrpo.SPEC
    config = spec.make_config(args.env, total_steps=args.steps, num_evals=args.periods)
    spec.validate(config, env)
    labels = list(METHODS)
    rhos = np.array([METHODS[m][0] for m in labels], np.float32)
    base = spec.default_hparams()
    hp = base.replace(
        rho=jnp.asarray(rhos),
        kl_coef=jnp.asarray([METHODS[m][1] for m in labels], jnp.float32),
        beta=jnp.full(len(labels), base.beta),
        ridge=jnp.full(len(labels), base.ridge),
    )
    trainer = spec.make_train(config, env)
    sched = trainer.schedule
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)

    def grid(fn, inner=(None, 0), outer=(0, None)):  # [seeds] x [methods]
        return jax.jit(jax.vmap(jax.vmap(fn, in_axes=inner), in_axes=outer))

    # Training maps over seeds and methods with lax.map, not vmap: under vmap the
    # episode-end re-plan (a lax.cond) would run at every step as a select.
    init = jax.jit(
        lambda ks, h: jax.lax.map(lambda k: jax.lax.map(partial(trainer.init, k), h), ks)
    )

    def one_period(st, h):
        return trainer.run_periods(st, h, 1)

    step = jax.jit(
        lambda st, h: jax.lax.map(lambda s: jax.lax.map(lambda a: one_period(*a), (s, h)), st)
    )
    t0 = time.perf_counter()
    state = init(keys, hp)
    optimal = {
        float(r): linear.robust_dp(
            mdp.features_np, mdp.nominal_mu, mdp.reward_np, mdp.horizon, float(r)
        )[1][0, mdp.start]
        for r in set(rhos.tolist())
    }

    def robust_gaps(agent_state) -> np.ndarray:
        """``[seeds, methods]`` gap of the acting policy's robust value to the optimum."""
        log_pi = np.asarray(agent_state.act.log_pi[:, :, 0], np.float64)
        gaps = np.zeros(log_pi.shape[:2])
        for i in range(log_pi.shape[0]):
            for j, r in enumerate(rhos):
                value = exact_return(mdp, mdp.nominal_mu, log_pi[i, j], float(r))
                gaps[i, j] = optimal[float(r)] - value
        return gaps

    gaps, curves = [robust_gaps(state.agent_state)], []
    for _ in range(sched.num_evals):
        state, metrics = step(state, hp)
        gaps.append(robust_gaps(state.agent_state))
        curves.append(np.asarray(metrics["eval_return"][..., 0]))
    train_s = time.perf_counter() - t0
    episodes_per_period = sched.iters_per_eval * sched.steps_per_iter / mdp.horizon
    gaps = np.stack(gaps)  # [periods + 1, seeds, methods]
    regret = np.cumsum(0.5 * (gaps[1:] + gaps[:-1]) * episodes_per_period, axis=0)
    episodes = episodes_per_period * np.arange(1, sched.num_evals + 1)

    # test-time shift: exact expected return and Monte Carlo episodes in the shifted env
    final = state.agent_state

    def greedy_log_pi_of(agent_state, h):  # one learner's bonus-free policy
        agent_state = jax.tree.map(lambda x: x[0], agent_state)
        return drrpo.greedy_plan(config, env, h, agent_state).log_pi

    eval_log_pi = np.asarray(grid(greedy_log_pi_of, (0, 0), (0, None))(final, hp), np.float64)
    exact = np.zeros((len(SHIFTS), args.seeds, len(labels)))
    soft = np.zeros_like(exact)  # the regularised softmax policy of the same plan
    mc = np.zeros_like(exact)
    for k, shift in enumerate(SHIFTS):
        shifted = envs.make(args.env, shift=shift)
        mu = shifted.unwrapped.mu_np
        for i in range(args.seeds):
            for j in range(len(labels)):
                exact[k, i, j] = exact_return(mdp, mu, greedy_log_pi(eval_log_pi[i, j]))
                soft[k, i, j] = exact_return(mdp, mu, eval_log_pi[i, j])

        def mc_return(agent_state, h, key, shifted=shifted):
            agent = learners(drrpo.make_agent(config, shifted, h, sched), 1)
            return evaluate(agent, agent_state, shifted, key, args.eval_episodes)[0]

        mc_grid = grid(mc_return, (0, 0, None), (0, None, 0))
        mc[k] = np.asarray(mc_grid(final, hp, keys))
    wall_s = time.perf_counter() - t0

    result = {
        "env": args.env,
        "seeds": args.seeds,
        "steps": sched.total_steps,
        "eval_episodes": args.eval_episodes,
        "episodes": episodes.tolist(),
        "shifts": list(SHIFTS),
        "methods": {
            m: {"rho": float(METHODS[m][0]), "kl_coef": float(METHODS[m][1])} for m in labels
        },
        "hparams": {"beta": float(base.beta), "ridge": float(base.ridge)},
        "exact_return": {m: exact[:, :, j].T.tolist() for j, m in enumerate(labels)},
        "exact_return_softmax": {m: soft[:, :, j].T.tolist() for j, m in enumerate(labels)},
        "mc_return": {m: mc[:, :, j].T.tolist() for j, m in enumerate(labels)},
        "regret": {m: regret[:, :, j].T.tolist() for j, m in enumerate(labels)},
        "eval_curve": {m: np.stack(curves)[:, :, j].T.tolist() for j, m in enumerate(labels)},
        "optimal_robust_value": {str(k): float(v) for k, v in optimal.items()},
        "wall_seconds": wall_s,
        "train_seconds": train_s,
    }
    write_outputs(result, out)


def ci(x) -> tuple[float, float, float]:
    """IQM over seeds with its 95% stratified bootstrap CI."""
    return report.stratified_bootstrap_ci([np.asarray(x)], report.iqm)


def write_outputs(result: dict, out: Path) -> None:
    """Adds the aggregates to ``result`` and writes the JSON and the plot."""
    labels, shifts = list(result["methods"]), result["shifts"]
    episodes = np.asarray(result["episodes"])
    exact = {m: np.asarray(result["exact_return"][m]) for m in labels}  # [seeds, shifts]
    regret = {m: np.asarray(result["regret"][m]) for m in labels}  # [seeds, periods]
    table = {m: [ci(exact[m][:, k]) for k in range(len(shifts))] for m in labels}
    tail = episodes >= episodes[-1] / 10
    slopes = {
        m: ci(
            [
                np.polyfit(np.log(episodes[tail]), np.log(np.maximum(r[tail], 1e-6)), 1)[0]
                for r in regret[m]
            ]
        )  # fmt: skip
        for m in labels
    }
    final_regret = {m: ci(regret[m][:, -1]) for m in labels}
    result.update(iqm_exact_return=table, regret_slope=slopes, final_regret=final_regret)
    atomic_write(out / "drrpo_shift.json", json.dumps(result, indent=1))

    print(RENDERERS["drrpo_shift"].render(result))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    for m in labels:
        pts = np.array(table[m])
        ax0.plot(shifts, pts[:, 0], marker="o", label=m)
        ax0.fill_between(shifts, pts[:, 1], pts[:, 2], alpha=0.2)
        ax1.loglog(episodes, np.median(np.maximum(regret[m], 1e-3), axis=0), label=m)
    plain = "non-robust (rho=0)"
    ref = np.median(regret[plain][:, -1]) * np.sqrt(episodes / episodes[-1])
    ax1.loglog(episodes, ref, "k--", label="sqrt(K) rate")
    ax0.set(xlabel="test-time shift (gust probability)", ylabel="return (IQM, 95% CI)")
    ax1.set(xlabel="episodes K", ylabel="robust regret (median over seeds)")
    ax0.legend(fontsize=7)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "drrpo_shift.png", dpi=120)


if __name__ == "__main__":
    main()
