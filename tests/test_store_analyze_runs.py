"""``store analyze`` over a store holding several runs: run column, per-run groups, --threads."""
import csv
import io
import statistics

import pytest
import torch

from matbal.instruments import MatrixStore
from matbal.instruments.cli import main
from matbal.instruments.store_analysis import analyze_store, equilibration_figure, summarize


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "store"
    g = torch.Generator().manual_seed(0)
    with MatrixStore(path, fsync=False) as st:
        for run, scale in (("muon", 1.0), ("adamw", 100.0)):
            for step in (1, 2):
                with st.batch(run, step) as b:
                    b.put("l.0", "grad", torch.randn(8, 12, generator=g) * scale)
                    b.put("l.1", "grad", torch.randn(6, 6, generator=g))
    return str(path)


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_two_runs_are_grouped_run_by_run(store, tmp_path):
    threads = torch.get_num_threads()
    code, out, err = run("analyze", store, "--out", str(tmp_path / "an"), "--methods", "none",
                         "R", "--threads", "1", "--no-progress")
    assert code == 0, err
    assert torch.get_num_threads() == threads  # restored
    assert "8 matrices × 2 balancings → 16 rows (2 runs)" in out
    res = analyze_store(store, methods=("none", "R"), progress=False)
    for name in ("muon", "adamw"):
        sub = [r for r in res.rows if r["run"] == name]
        med = {b: statistics.median(r["x_min"] for r in sub if r["balancing"] == b)
               for b in ("none", "R")}
        assert f"run {name}: 4 matrices, median x_min none {med['none']:.3g}, R " \
               f"{med['R']:.3g}" in out
    with open(tmp_path / "an" / "equilibration.csv") as f:
        table = list(csv.DictReader(f))
    assert {r["run"] for r in table} == {"muon", "adamw"}
    with open(tmp_path / "an" / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 2 * 2 * 4  # runs × balancings × metrics (one kind)
    for s in summary:
        vals = [r[s["metric"]] for r in res.rows
                if (r["run"], r["balancing"]) == (s["run"], s["balancing"])]
        assert float(s["median"]) == pytest.approx(statistics.median(vals), rel=1e-12)
    # the figure has one row of panels per run × kind (one kind here)
    assert len(equilibration_figure(res.rows, methods=("none", "R")).axes) == 2 * 4
    one = analyze_store(store, run="muon", methods=("none",), progress=False)
    assert len(equilibration_figure(one.rows, methods=("none",)).axes) == 4


def test_single_run_output_and_bad_threads(store, tmp_path):
    code, out, _ = run("analyze", store, "--run", "muon", "--out", str(tmp_path / "o"),
                       "--methods", "none", "--no-progress")
    assert code == 0 and "runs)" not in out and "run muon:" not in out
    code, _, err = run("analyze", store, "--out", str(tmp_path / "o"), "--threads", "0")
    assert code == 1 and "threads must be a positive int" in err
