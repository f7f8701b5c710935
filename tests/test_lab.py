"""matbal.lab: results round-trip, figure saving, claim registry vs docs/math.md and CLAIMS.md."""
import doctest
import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from matbal import lab
from matbal.lab import claims as claims_mod

ROOT = Path(__file__).resolve().parents[1]
MATH_MD = ROOT / "docs" / "math.md"  # the claims table (§4) the registry must match


@pytest.mark.parametrize("mod", ["results", "figures", "claims", "stats", "matrices"])
def test_doctests(mod):
    assert doctest.testmod(importlib.import_module(f"matbal.lab.{mod}")).failed == 0


def test_results_round_trip(tmp_path):
    rows = [{"name": "a", "k": 1, "x": 0.1, "flag": True, "maybe": None},
            {"name": "b", "k": 2, "x": np.float64(1e-300), "flag": False, "maybe": 3.5},
            {"name": "c", "k": 3, "x": torch.tensor(float("inf")), "extra": "only here"}]
    cfg = {"m": 4, "ranges": (1.0, 10.0), "nested": {"a": [1, 2]}}
    out = lab.save_results("t1", rows, cfg, summary={"s": np.float32(2.5)},
                           claims=[lab.verdict("EQ-1", "numbers", "holds")], results_dir=tmp_path)
    back = lab.load_results("t1", results_dir=tmp_path)
    assert out == back
    assert back.rows[0] == {"name": "a", "k": 1, "x": 0.1, "flag": True, "maybe": None, "extra": None}
    assert back.rows[1]["x"] == 1e-300 and back.rows[1]["maybe"] == 3.5
    assert math.isinf(back.rows[2]["x"]) and back.rows[2]["flag"] is None
    assert back.config == {"m": 4, "ranges": [1.0, 10.0], "nested": {"a": [1, 2]}}
    assert back.summary == {"s": 2.5}
    assert back.claim("EQ-1")["verdict"] == "holds" and back.claim("EQ-2") is None
    assert back.columns == {"name": "str", "k": "int", "x": "float", "flag": "bool",
                            "maybe": "float", "extra": "str"}
    assert back.where(k=[1, 3]) == [back.rows[0], back.rows[2]]
    assert back.unique("flag") == [True, False, None]
    prov = json.loads((tmp_path / "t1.json").read_text())["provenance"]
    assert set(prov) >= {"code_version", "libraries", "date", "argv"}
    assert {"git_sha", "dirty"} <= set(prov["code_version"])
    assert {"torch", "numpy", "python", "matbal"} <= set(prov["libraries"])
    assert lab.list_results(tmp_path) == ["t1"]


def test_results_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="name"):
        lab.save_results("../escape", [], {}, results_dir=tmp_path)
    with pytest.raises(TypeError, match="scalars"):
        lab.save_results("t", [{"v": [1, 2]}], {}, results_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="experiments/nope.py"):
        lab.load_results("nope", results_dir=tmp_path)
    with pytest.raises(ValueError, match="conditions"):
        lab.verdict("EQ-1", "x", "holds under conditions")
    with pytest.raises(ValueError, match="result"):
        lab.verdict("EQ-1", "x", "sort of")
    with pytest.raises(ValueError, match="unknown claim"):
        lab.verdict("XX-9", "x", "holds")


def test_savefig_writes_small_pdf_and_png(tmp_path):
    fig, ax = lab.figure(1, 2)
    ax[0].plot(np.random.default_rng(0).standard_normal((2000, 20)))
    paths = lab.savefig(fig, "f", out_dir=tmp_path, max_png_kb=60)
    assert [p.name for p in paths] == ["f.pdf", "f.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[1].stat().st_size <= 60 * 1024


def test_stats_helpers():
    assert lab.asymptotic_rate([1, 0.1, 0.01, 1e-3, 1e-20], floor=1e-15) == pytest.approx(0.1)
    assert math.isnan(lab.asymptotic_rate([1.0]))
    k = np.arange(1, 100)
    assert lab.loglog_slope(k, 3.0 / k) == pytest.approx(-1.0)
    agg = lab.aggregate([{"g": 1, "v": 1.0}, {"g": 1, "v": None}, {"g": 1, "v": 3.0}],
                        by=("g",), values=("v",), stat="max")
    assert agg == [{"g": 1, "v": 3.0, "n": 3}]


def test_matrices():
    x = lab.scaled_core(16, 32, core_kappa=100.0, scale_range=1.0, dtype=torch.float64)
    s = torch.linalg.svdvals(x)
    assert float(s[0] / s[-1]) == pytest.approx(100.0, rel=1e-9)
    y = lab.scaled_core(16, 32, core_kappa=100.0, scale_range=1e3, dtype=torch.float64)
    assert float(y.norm(dim=1).max() / y.norm(dim=1).min()) > 10
    with pytest.raises(ValueError, match="scale_range"):
        lab.scaled_core(4, 4, core_kappa=1.0, scale_range=0.5)
    c = lab.coherent_rows(200, 4000, rho=0.5, dtype=torch.float64)
    r = c / c.norm(dim=1, keepdim=True)
    off = (r @ r.T)[~torch.eye(200, dtype=torch.bool)]
    assert float(off.mean()) == pytest.approx(0.5, abs=0.05)


def test_every_science_claim_is_registered_and_in_claims_md():
    ids = [c.id for c in lab.CLAIMS]
    assert len(ids) == len(set(ids))
    doc_ids = lab.claim_ids_in_science(MATH_MD.read_text())
    assert len(doc_ids) >= 18
    assert sorted(doc_ids) == sorted(ids)
    text = (ROOT / "CLAIMS.md").read_text()
    for cid in ids:
        assert f"| {cid} |" in text, cid
    for cid in ("EQ-5", "REG-2", "REG-3", "RM-1"):  # settled by the training experiments
        line = next(l for l in text.splitlines() if l.startswith(f"| {cid} |"))
        assert claims_mod.PENDING_TRAINING not in line and "**" in line


def test_claims_md_is_up_to_date_with_stored_results():
    """CLAIMS.md is generated: rerun `python experiments/build_claims.py` after an experiment."""
    assert (ROOT / "CLAIMS.md").read_text() == lab.render_claims_md()


def test_claim_ids_parser():
    text = "## 3. x\n| A-1 | no |\n## 4. Claims\n| id | c |\n|---|---|\n| EQ-1 | a |\n| SK-2 | b |\n## 5. y\n| Z-1 | z |\n"
    assert lab.claim_ids_in_science(text) == ["EQ-1", "SK-2"]


def test_saved_results_carry_no_path_of_this_machine(tmp_path):
    from matbal.lab.results import REPO_ROOT

    inside = str(REPO_ROOT / "out" / "runs" / "x")
    res = lab.save_results("paths", [{"run_dir": inside}], {"dir": inside, "p": REPO_ROOT / "a"},
                           results_dir=tmp_path)
    text = (tmp_path / "paths.json").read_text() + (tmp_path / "paths.csv").read_text()
    assert str(REPO_ROOT) not in text
    assert "out/runs/x" in text


def test_code_version_ignores_generated_outputs(tmp_path):
    import subprocess

    from matbal.train.rundir import code_version

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "experiments" / "results").mkdir(parents=True)
    (tmp_path / "experiments" / "results" / "r.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "-A")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init")
    ignore = ("experiments/results/",)
    assert code_version(tmp_path, ignore=ignore)["dirty"] is False
    (tmp_path / "experiments" / "results" / "r.json").write_text('{"a": 1}')
    assert code_version(tmp_path, ignore=ignore)["dirty"] is False
    assert code_version(tmp_path)["dirty"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_version(tmp_path, ignore=ignore)["dirty"] is True
