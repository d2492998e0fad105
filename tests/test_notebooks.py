"""Every notebook in notebooks/ runs top to bottom (as on a CPU Colab runtime, minus the
install cell, which skips itself where jaxrl is importable)."""

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


@pytest.mark.parametrize("name", ["01_quickstart", "02_sweeps", "03_mjx", "04_model_based"])
def test_notebook_runs(name, tmp_path):
    run_notebook(NOTEBOOKS / f"{name}.ipynb", tmp_path)


def test_notebook_outputs_are_cleared():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name
