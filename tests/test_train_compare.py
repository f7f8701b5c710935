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
