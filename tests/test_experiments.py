"""Experiments (quick mode) write well-formed results; every paper figure builds from the committed
results; the claim registry, the experiment list and the figure list agree."""
import importlib.util
import json
from pathlib import Path

import pytest

from matbal import lab

ROOT = Path(__file__).resolve().parents[1]


def _load(folder: str, name: str):
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", ROOT / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUN_ALL = _load("experiments", "run_all")
BUILD_ALL = _load("paper_figs", "build_all")




@pytest.mark.parametrize("name", RUN_ALL.EXPERIMENTS)
def test_experiment_quick_mode_writes_well_formed_results(name, tmp_path):
    mod = _load("experiments", name)
    assert mod.NAME == name
    assert set(mod.QUICK) == set(mod.CONFIG), "QUICK must override CONFIG keys only"
    res = mod.main(quick=True, results_dir=tmp_path)
    assert (tmp_path / f"{name}.csv").exists() and (tmp_path / f"{name}.json").exists()
    back = lab.load_results(name, results_dir=tmp_path)
    assert back == res and len(back.rows) > 0
    assert back.config == json.loads(json.dumps(mod.QUICK))
    assert all(set(r) == set(back.columns) for r in back.rows)
    expected = sorted(c.id for c in lab.CLAIMS if c.experiment == name)
    assert sorted(c["id"] for c in back.claims) == expected
    for c in back.claims:
        assert c["verdict"] in lab.claims.VERDICTS and c["measured"] and c.get("criterion")
    if not expected:  # a question of our own (or figure data)
        finding = dict(lab.claims.FINDINGS).get(name)
        if finding:
            assert back.summary.get("question") and back.summary.get("finding")
    assert back.provenance["code_version"]["git_sha"]


def test_registry_experiments_and_figures_exist():
    exps = set(RUN_ALL.EXPERIMENTS)
    figs = set(BUILD_ALL.FIGURES)
    for c in lab.CLAIMS:
        if c.pending:
            assert c.experiment is None
            continue
        assert c.experiment in exps, c.id
        assert c.figure is None or c.figure in figs, c.id
    assert all(name in exps for name, _ in lab.claims.FINDINGS)
    assert all(fig in figs for _, fig in lab.claims.FINDINGS)
    on_disk = {p.stem for p in (ROOT / "experiments").glob("*.py")} - {"run_all", "build_claims"}
    assert on_disk == exps
    assert {p.stem for p in (ROOT / "paper_figs").glob("fig_*.py")} == figs


def test_committed_results_exist_for_every_experiment():
    stored = set(lab.list_results())
    assert set(RUN_ALL.EXPERIMENTS) <= stored
    for name in RUN_ALL.EXPERIMENTS:
        res = lab.load_results(name)
        assert res.config == json.loads(json.dumps(_load("experiments", name).CONFIG)), (
            f"{name}: committed results are not from the full configuration; rerun it")


@pytest.mark.parametrize("name", BUILD_ALL.FIGURES)
def test_figure_builds_from_committed_results(name, tmp_path):
    mod = _load("paper_figs", name)
    assert set(mod.RESULTS) <= set(lab.list_results())
    paths = mod.build(out_dir=tmp_path)
    assert sorted(p.name for p in paths) == [f"{name}.pdf", f"{name}.png"]
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
    assert paths[1].stat().st_size <= 300 * 1024


def _script_at(sha: str, name: str) -> str | None:
    """SHA-256 of ``experiments/<name>.py`` as committed at ``sha`` (None without git history)."""
    import hashlib
    import subprocess

    out = subprocess.run(["git", "show", f"{sha}:experiments/{name}.py"], cwd=ROOT,
                         capture_output=True, timeout=30)
    return hashlib.sha256(out.stdout).hexdigest() if out.returncode == 0 else None


@pytest.mark.parametrize("name", RUN_ALL.EXPERIMENTS)
def test_stored_result_comes_from_a_clean_tree_and_this_script(name):
    """Provenance: every committed result was made at a clean commit by the experiment script that
    is in the repository now — by its stored SHA-256, or (results older than that field) by the
    script as committed at the result's commit; rerun it otherwise."""
    prov = lab.load_results(name).provenance
    cv = prov["code_version"]
    assert cv.get("git_sha") not in (None, "unknown"), f"{name}: no code version recorded"
    assert not cv.get("dirty"), f"{name}: made from a dirty tree; rerun it at a clean commit"
    made_by = prov.get("script_sha256") or _script_at(cv["git_sha"], name)
    assert made_by == lab.results.script_hash(name), (
        f"{name}: made by another version of experiments/{name}.py; rerun it")
