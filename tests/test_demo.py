"""`make demo` (matbal demo): the tour runs and writes its table, figures, run and store analysis."""
import json

import pytest

from matbal.cli import main


def test_demo_tour_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--m", "24", "--n", "48", "--train-steps", "10"]) == 0
    text = capsys.readouterr().out
    assert "NS5 err" in text and "validation loss" in text
    rows = json.loads((out / "rows.json").read_text())
    assert {r["balancing"] for r in rows} == {"none", "R", "C", "RC", "RACS"}
    assert all(abs(r["ns_error"] - r["ns_error_pred"]) < 1e-4 for r in rows)
    for name in ("table.txt", "equilibration.png", "probe_traces.png", "tour/probes.jsonl",
                 "tour/summary.json", "store_analysis/equilibration.csv"):
        assert (out / name).stat().st_size > 0, name
    # a second run rebuilds its own scratch run instead of mixing trajectories
    assert main(["demo", "--out", str(out), "--m", "24", "--n", "48", "--train-steps", "10"]) == 0


def test_demo_refuses_a_tour_dir_it_did_not_make(tmp_path):
    (tmp_path / "tour").mkdir()
    with pytest.raises(FileExistsError, match="not made by the demo"):
        main(["demo", "--out", str(tmp_path), "--m", "8", "--n", "16", "--train-steps", "4"])
