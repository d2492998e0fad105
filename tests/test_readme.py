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
