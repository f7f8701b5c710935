"""matbal compare: tables, figure and the lr sweep round trip (tiny MLP runs on digits)."""
import csv
import json

from matbal.train.cli import compare_main

COMMON = ["--model", "mlp", "--steps", "8", "--eval-every", "4", "--warmup-steps", "1",
          "--quiet", "--threads", "1", "--mlp-hidden", "32"]


def test_sweep_then_compare(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert compare_main(["--optimizers", "adamw,muon", "--sweep", "1e-2,1e6", "--seeds", "1",
                         "--results", str(sweep), *COMMON]) == 0
    best = json.loads((sweep / "best_lrs.json").read_text())
    assert best["mlp"]["adamw"]["lr"] == 0.01 and best["mlp"]["muon"]["lr"] == 0.01
    assert best["mlp"]["muon"]["swept"] == [0.01, 1e6] and "--sweep" in best["mlp"]["muon"]["command"]
    rows = list(csv.DictReader(open(sweep / "sweep.csv")))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok", "diverged/failed"}

    cmp_dir = tmp_path / "cmp"
    assert compare_main(["--optimizers", "adamw,muon", "--seeds", "2", "--lrs",
                         str(sweep / "best_lrs.json"), "--results", str(cmp_dir), *COMMON]) == 0
    meta = json.loads((cmp_dir / "compare.json").read_text())
    assert meta["lrs"]["muon"]["lr"] == 0.01
    table = list(csv.DictReader(open(cmp_dir / "table.csv")))
    assert [r["optimizer"] for r in table] == ["adamw", "muon"]
    assert all(r["seeds"] == "2/2" and "±" in r["final val loss"] for r in table)
    assert (cmp_dir / "table.md").read_text().startswith("| optimizer")
    assert (cmp_dir / "loss_curves.png").stat().st_size > 10_000
    cfg = json.loads((cmp_dir / "runs" / "muon-s1" / "config.json").read_text())
    assert cfg["seed"] == 1 and cfg["lr"] == 0.01


def test_compare_marks_untuned_arms_and_shows_the_step_time_spread(tmp_path):
    import warnings

    from matbal.train.lrs import load_best_lrs

    table = load_best_lrs()
    assert "normuon" not in table["mlp"] and "muon" in table["mlp"]  # packaged mlp sweep
    out = tmp_path / "cmp"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert compare_main(["--optimizers", "muon,normuon", "--seeds", "1", "--log-every", "2",
                             "--results", str(out), *COMMON]) == 0
    assert any("normuon" in str(x.message) for x in w)
    rows = {r["optimizer"]: r for r in csv.DictReader(open(out / "table.csv"))}
    assert rows["muon"]["lr"] == f"{table['mlp']['muon']['lr']:g}"
    assert rows["muon"]["lr source"] == "swept"
    assert rows["normuon"]["lr"].endswith("†") and rows["normuon"]["lr source"] == "preset default"
    for r in rows.values():
        lo, hi = (float(x) for x in r["step time p10–p90 (ms)"].split("–"))
        assert 0 < lo <= float(r["step time median (ms)"]) <= hi
    md = (out / "table.md").read_text()
    assert "† lr not tuned for this model (normuon)" in md
    # an lr given on the command line is not a tuned one either
    out2 = tmp_path / "given"
    assert compare_main(["--optimizers", "muon", "--seeds", "1", "--lr", "0.05",
                         "--results", str(out2), *COMMON]) == 0
    row = next(csv.DictReader(open(out2 / "table.csv")))
    assert row["lr"] == "0.05 †" and row["lr source"] == "given"
