"""The report builder: README and docs tables are generated from committed JSON."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from jaxrl import report
from jaxrl.report import build, renderers

ROOT = Path(__file__).resolve().parents[1]


def test_readme_and_docs_are_up_to_date_with_no_hand_written_results_table(capsys):
    """``python -m jaxrl.report build --check`` on this checkout: every generated section
    equals a fresh render and no table of numbers sits outside one."""
    code = build.main(["build", "--check", "--root", str(ROOT)])
    assert code == 0, capsys.readouterr().err


def test_every_renderer_has_a_section_and_every_results_json_a_renderer():
    used = {n for p in build.doc_files(ROOT) for n in build.section_names(p.read_text())}
    assert used == set(renderers.RENDERERS), set(renderers.RENDERERS) ^ used
    files = {e.file for e in renderers.RENDERERS.values()}
    results = ROOT / "experiments" / "results"
    committed = {str(p.relative_to(results)) for p in results.rglob("*.json")}
    # golden.json is the regression record of every algorithm's state, not a results table.
    assert committed - files == {"golden.json"}, committed - files


def _checkout(tmp_path: Path, readme: str) -> Path:
    (tmp_path / "experiments" / "results").mkdir(parents=True)
    shutil.copy(ROOT / "experiments/results/pbt_vs_grid.json", tmp_path / "experiments/results")
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_check_fails_on_a_stale_section_and_changes_nothing_build_fixes_it(tmp_path):
    stale = "# x\n\n<!-- generated:pbt_vs_grid -->\n| a | b |\n<!-- /generated:pbt_vs_grid -->\n"
    root = _checkout(tmp_path, stale)
    assert build.main(["build", "--check", "--root", str(root)]) == 1
    assert (root / "README.md").read_text() == stale
    assert build.main(["build", "--root", str(root)]) == 0
    fresh = (root / "README.md").read_text()
    assert "-79.2 [-79.8, -78.5]" in fresh  # PBT best member on Acrobot, IQM [CI]
    assert build.main(["build", "--check", "--root", str(root)]) == 0
    # The JSON changes: the section is stale again.
    data = json.loads((root / "experiments/results/pbt_vs_grid.json").read_text())
    data["tasks"]["ppo/acrobot"]["scores"]["grid best"] = [-70.0, -71.0, -72.0, -73.0]
    (root / "experiments/results/pbt_vs_grid.json").write_text(json.dumps(data))
    assert build.main(["build", "--check", "--root", str(root)]) == 1
    assert (root / "README.md").read_text() == fresh


def test_unknown_section_or_unpaired_marker_is_an_error(tmp_path, capsys):
    root = _checkout(tmp_path, "<!-- generated:nope -->\n<!-- /generated:nope -->\n")
    assert build.main(["build", "--check", "--root", str(root)]) == 2
    assert "no renderer for generated section 'nope'" in capsys.readouterr().err
    (root / "README.md").write_text("<!-- generated:pbt_vs_grid -->\nno end\n")
    assert build.main(["build", "--check", "--root", str(root)]) == 2
    assert "has no matching marker" in capsys.readouterr().err


def test_stray_tables_are_found_outside_generated_sections_only():
    results = "| method | return |\n|---|---|\n| SAC | -136.0 |\n"
    settings = "| flag | what |\n|---|---|\n| `--seeds 4` | seeds (`[1, 2]`) |\n"
    named = "| env | what |\n|---|---|\n| build-3x3 | 5x5 grid, Mamba2 |\n"
    inside = f"<!-- generated:x -->\n{results}<!-- /generated:x -->\n"
    fenced = f"```\n{results}```\n"
    allowed = "| name | what |\n|---|---|\n| assist | 8 x 8 |\n"
    text = "\n".join(["# t", settings, named, inside, fenced, allowed, "Prose.", results])
    found = build.stray_tables(text)
    assert [t.header for t in found] == ["| method | return |"]
    lines = text.split("\n")
    assert found[0].line == max(i for i, x in enumerate(lines) if x == "| method | return |") + 1
    bare = "method | return\n--- | ---\nSAC | -136.0\n"  # GFM tables need no outer pipes
    assert [t.line for t in build.stray_tables(f"Text.\n\n{bare}")] == [3]
    assert build.stray_tables("A setext heading 2024\n---\n") == []
    assert build.stray_tables(allowed, allowed=()) != []  # the allow-list is what lets it pass


def test_rendered_statistics_match_the_experiments_own_records():
    """The renderers recompute IQM and CI from per-seed values; the experiment scripts
    stored theirs (same estimator) next to the raw data: they agree."""
    results = ROOT / "experiments" / "results"
    mbrcsl = json.loads((results / "mbrcsl_pointmaze.json").read_text())
    stored = mbrcsl["full"]["results"]["MBRCSL"]
    assert renderers.iqm_ci(stored["final_returns"]) == renderers.fmt_ci(stored["iqm"])
    assert renderers.fmt_ci(stored["iqm"]) in renderers.mbrcsl_pointmaze(mbrcsl)
    drrpo = json.loads((results / "drrpo_shift.json").read_text())
    episodes = np.asarray(drrpo["episodes"])
    for m, slope in drrpo["regret_slope"].items():
        per_seed = renderers._drrpo_slope(episodes, np.asarray(drrpo["regret"][m]))
        np.testing.assert_allclose(renderers.ci(per_seed), slope)
    # A record with the softmax policy's returns gets their table (older records: none).
    assert "regularised softmax" not in renderers.drrpo_shift(drrpo)
    soft = {m: (np.asarray(r) - 1.0).tolist() for m, r in drrpo["exact_return"].items()}
    text = renderers.drrpo_shift({**drrpo, "exact_return_softmax": soft})
    m = next(iter(soft))
    row = " | ".join([m, *(renderers.iqm_ci(np.asarray(soft[m])[:, k], 2) for k in range(2))])
    assert "regularised softmax" in text and row in text
    x = np.array([3.0, -1.0, 7.0, 2.0, 5.0, 100.0, 4.0, 0.0])
    assert renderers.ci(x)[0] == report.iqm(x) == np.mean(np.sort(x)[2:6])


def test_drama_minatar_renders_greedy_sampled_and_training_metrics():
    """A record with the final greedy and sampled returns and ``train_metrics`` curves
    gets both return columns and the end-of-training table (a metric a method lacks is
    "-"); a record of greedy curves only (the earlier runs) keeps its one return column."""
    record = json.loads((ROOT / "experiments" / "results" / "drama_minatar.json").read_text())
    assert "final return (sampled)" in renderers.drama_minatar(record)
    new_keys = ("greedy", "sampled", "train_metrics", "final_eval_episodes")
    old = {
        **record,
        "games": {
            game: {
                **g,
                "methods": {
                    m: {k: v for k, v in r.items() if k not in new_keys}
                    for m, r in g["methods"].items()
                },
            }
            for game, g in record["games"].items()
        },
    }
    assert "final return (sampled)" not in renderers.drama_minatar(old)
    greedy, sampled = [0.0, 0.0, 1.0, 2.0, 4.0], [0.5, 1.0, 1.5, 3.0, 9.0]
    drama = {
        "greedy": greedy,
        "sampled": sampled,
        "returns": [[0.0, 7.0]] * 5,
        "env_steps": [2560, 5120],
        "seconds": 10.0,
        "train_metrics": {
            "entropy": [[0.0, e] for e in (1.0, 1.1, 1.2, 1.3, 1.4)],
            "imag_reward": [[0.0, 0.25]] * 5,
            "wm_loss": [[9.0, 3.0]] * 5,
        },
    }
    ppo = {
        **drama,
        "greedy": sampled,
        "sampled": greedy,
        "train_metrics": {"entropy": [[1.0, 0.5]] * 5},
    }
    record = {
        "steps": 5120,
        "env_steps": 5120,
        "seeds": {"Drama": 5, "PPO": 5},
        "eval_episodes": 16,
        "drama_overrides": {"train_every": 8},
        "total_seconds": 60.0,
        "timing": {},
        "games": {
            "minatar/breakout": {
                "random": {"episodes": 8, "mean": 0.4},
                "methods": {"PPO": ppo, "Drama (Mamba)": drama},
            }
        },
    }
    text = renderers.drama_minatar(record)
    g, s = renderers.iqm_ci(greedy, 2), renderers.iqm_ci(sampled, 2)
    assert f"| minatar/breakout | Drama (Mamba) | 5 | 5,120 | {g} | {s} | 10 |" in text
    assert f"| minatar/breakout | PPO | 5 | 5,120 | {s} | {g} | 10 |" in text
    assert "| minatar/breakout | random | 8 episodes | - | 0.40 (mean) | 0.40 (mean) | - |" in text
    entropy = renderers.iqm_ci([1.0, 1.1, 1.2, 1.3, 1.4], 3)
    assert f"| Drama (Mamba) | {entropy} | 0.250 [0.250, 0.250] | 3.000 [3.000, 3.000] |" in text
    assert "| PPO | 0.500 [0.500, 0.500] | - | - |" in text
    assert "16 episodes per seed" in text and "Drama 5, PPO 5" in text
    assert "s / update" not in text  # no timing recorded: no timing table


def test_import_leaves_matplotlib_unloaded():
    code = "import sys, jaxrl.report.build; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
