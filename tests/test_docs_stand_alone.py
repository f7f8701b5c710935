"""The repository stands alone: no file cites a document outside it (``../shared``), and every
markdown document a file names exists in the repository (or is an output matbal writes)."""
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".toml", ".txt", ".yml", ".yaml", ".cfg"}
SKIP_DIRS = {"__pycache__", "out", "runs", "build", "dist", "node_modules"}
# names of markdown files that matbal writes (cited in help texts), not documents of the repo
GENERATED = {"table.md": "matbal compare", "sweep.md": "matbal compare --sweep"}
OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w-])shared/[\w.-]+\.md\b")
DOC = re.compile(r"[\w./-]*[\w-]\.md\b")


def repo_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS
                       and not d.endswith(".egg-info")]
        for name in filenames:
            path = Path(dirpath) / name
            if path.suffix in TEXT_SUFFIXES or name == "Makefile":
                yield path


FILES = [p for p in repo_files() if p != Path(__file__).resolve()]  # not its own examples
NAMES = {p.name for p in FILES}


def resolves(token: str, citing: Path) -> bool:
    if "/" not in token:  # a bare name: a document of that name somewhere in the repository
        return token in NAMES or token in GENERATED
    head = token.split("/")[0]
    if "." in head and head not in (".", ".."):  # a web address (github.com/…/README.md)
        return True
    return (citing.parent / token).exists() or (ROOT / token.lstrip("./")).exists()


def test_the_scan_sees_the_repository():
    rel = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert {"README.md", "docs/architecture.md", "docs/math.md", "matbal/optim/optimizer.py"} <= rel
    assert not any(r.startswith(".venv/") for r in rel)


def test_no_file_cites_documents_outside_the_repository():
    bad = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in FILES
           for m in OUTSIDE.finditer(p.read_text(errors="replace"))]
    assert not bad, bad


def test_every_cited_markdown_document_exists():
    bad = [f"{p.relative_to(ROOT)}: {tok}" for p in FILES
           for tok in set(DOC.findall(p.read_text(errors="replace"))) if not resolves(tok, p)]
    assert not bad, bad


def test_the_checks_catch_what_they_are_for(tmp_path):
    assert OUTSIDE.search("see ../shared/brief.md §2") and OUTSIDE.search("(`shared/notes.md`)")
    assert not OUTSIDE.search("--out-dir must be on a shared filesystem")
    citing = ROOT / "matbal" / "optim" / "optimizer.py"
    assert not resolves("brief.md", citing) and not resolves("docs/nothing.md", citing)
    assert resolves("docs/math.md", citing) and resolves("CLAIMS.md", citing)
    assert resolves("../../docs/architecture.md", citing)


def test_no_python_source_holds_a_control_character():
    """A tab or form feed in a source file is almost always a docstring's LaTeX escape eaten by
    a non-raw string or an editor (``\\top`` → tab + ``op``, ``\\frac`` → form feed + ``rac``)."""
    bad = re.compile(r"[\x00-\x08\x09\x0b\x0c\x0e-\x1f]")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in FILES if p.suffix == ".py"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if bad.search(line)]
    assert not found, found
