"""Every notebook in notebooks/ runs top to bottom (as on a CPU Colab runtime, minus the
install cell, which skips itself where jaxrl is importable)."""

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(path: Path, tmp_path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()


@pytest.mark.parametrize(
    "name",
    [
        "01_quickstart",
        "02_sweeps",
        "03_mjx",
        # fits MBRCSL's models, Drama's world model and MBPO-style SAC: over 2 minutes here
        pytest.param("04_model_based", marks=pytest.mark.slow),
        "05_results",
        "06_planning",
    ],
)
def test_notebook_runs(name, tmp_path):
    run_notebook(NOTEBOOKS / f"{name}.ipynb", tmp_path)


def test_notebook_outputs_are_cleared():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


def install_cell(path: Path) -> str:
    book = nbformat.read(path, as_version=4)
    cells = [c.source for c in book.cells if c.cell_type == "code" and "JAXRL_SOURCE" in c.source]
    assert len(cells) == 1, f"{path.name}: one install cell expected"
    return cells[0]


def test_every_notebook_has_the_one_install_cell():
    cells = {path.name: install_cell(path) for path in sorted(NOTEBOOKS.glob("*.ipynb"))}
    assert len(set(cells.values())) == 1, sorted(cells)


def test_install_cell_says_what_to_set_and_installs_from_it(monkeypatch):
    """Where jaxrl is missing, the cell names JAXRL_SOURCE when it is empty, and pip-installs
    from it when it is set."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(install_cell(NOTEBOOKS / "01_quickstart.ipynb"))
    calls = []

    class FakeShell:
        def run_line_magic(self, name, line):
            calls.append((name, line))
            monkeypatch.delitem(sys.modules, "jaxrl")  # the "installed" package imports again

    monkeypatch.setitem(sys.modules, "jaxrl", None)  # import jaxrl -> ImportError
    monkeypatch.delenv("JAXRL_SOURCE", raising=False)
    with pytest.raises(RuntimeError, match="set JAXRL_SOURCE"):
        exec(code, {"get_ipython": FakeShell})
    assert not calls
    monkeypatch.setenv("JAXRL_SOURCE", "/content/jaxrl")
    exec(code, {"get_ipython": FakeShell})
    assert calls == [("pip", 'install -q "{JAXRL_SOURCE}"')]
