"""The notebooks in ``notebooks/``: each runs headless top to bottom, is committed without outputs,
and no two notebooks define the same function or class (a helper used twice belongs in matbal).

Each notebook is executed by nbclient in a fresh ``python3`` kernel whose working directory is a
temporary folder, so a run writes nothing into the repository. A failing cell (an exception or a
failed ``assert`` on a claimed number) fails the test with the cell's traceback.
"""
from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = (
    "01_spectral_effects_of_equilibration.ipynb",
    "02_verifying_a_claim.ipynb",
    "03_prototype_a_preconditioner.ipynb",
    "04_a_real_pretrained_model.ipynb",
)
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # per cell; each notebook takes well under a minute on a CPU
NOTEBOOK_LIMIT_S = 180  # a whole notebook: generous (shared machines), catches a runaway cell


def _read(path: Path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_expected_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert set(EXPECTED) <= names, f"missing notebooks: {sorted(set(EXPECTED) - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = _read(path)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        f"{path.name}: kernelspec name must be 'python3'"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {i}: outputs not stripped"
        assert cell.execution_count is None, f"{path.name} cell {i}: execution_count not stripped"
    assert any("import matbal" in src or "from matbal" in src for src in _code(nb)), \
        f"{path.name} does not use matbal"


def _defined_names(sources: list[str]) -> set[str]:
    """Names of functions and classes a notebook defines (methods are part of their class)."""
    names = set()
    for src in sources:
        tree = ast.parse(src)  # notebooks use no IPython magics, so every cell is plain Python
        methods = {id(m) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for m in c.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and id(node) not in methods:
                names.add(node.name)
    return names


def test_no_helper_defined_in_two_notebooks():
    seen: dict[str, str] = {}
    clashes = []
    for path in NOTEBOOKS:
        for name in sorted(_defined_names(_code(_read(path)))):
            if name in seen:
                clashes.append(f"{name!r} in {seen[name]} and {path.name}")
            else:
                seen[name] = path.name
    assert not clashes, ("defined in two notebooks (move it into matbal, with a test): "
                         + "; ".join(clashes))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = _read(path)
    before = sorted(NOTEBOOK_DIR.iterdir())
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the traceback) on any failing cell
    elapsed = time.perf_counter() - start
    print(f"{path.name}: {elapsed:.1f} s")
    assert elapsed < NOTEBOOK_LIMIT_S, f"{path.name} took {elapsed:.0f} s"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert sorted(NOTEBOOK_DIR.iterdir()) == before, "running a notebook wrote into notebooks/"
