"""The README's Python snippets run as written (slow: they train for real)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_snippets_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    scope: dict = {}
    exec(compile("\n".join(blocks), str(README), "exec"), scope)
    assert scope["m"]["eval_return"].shape[0] == len(scope["settings"])


def _layout_paths() -> list[str]:
    text = README.read_text()
    block = re.search(r"## Layout\n\n```\n(.*?)```", text, re.S).group(1)
    return [line.split()[0] for line in block.splitlines() if line and not line[0].isspace()]


def test_readme_layout_matches_the_package_tree():
    """Every path the Layout names exists, and every package folder and top-level module
    of jaxrl/ is named there."""
    root = README.parent
    listed = _layout_paths()
    missing = [p for p in listed if not (root / p).exists()]
    assert not missing, f"README Layout names paths that do not exist: {missing}"
    pkg = root / "jaxrl"
    tree = {
        f"jaxrl/{p.name}/" for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    skip = {"__init__.py", "__main__.py"}
    tree |= {f"jaxrl/{p.name}" for p in pkg.glob("*.py") if p.name not in skip}
    unlisted = sorted(tree - set(listed))
    assert not unlisted, f"README Layout misses {unlisted}"
    families = {p.name for p in (pkg / "agents").iterdir() if (p / "__init__.py").exists()}
    agents_lines = README.read_text().split("jaxrl/agents/", 1)[1].split("jaxrl/models/", 1)[0]
    assert all(f"{f}/" in agents_lines for f in families), families
