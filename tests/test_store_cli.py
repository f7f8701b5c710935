"""``matbal store`` commands on a small store (called in-process with argv)."""
import argparse
import csv
import io

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from matbal.instruments import MatrixStore
from matbal.instruments.cli import add_store_parser, main, parse_step




@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "store"
    g = torch.Generator().manual_seed(0)
    with MatrixStore(path, fsync=False) as st:
        for step in (1, 2, 3):
            with st.batch("muon", step) as b:
                b.put("l.0", "grad", torch.randn(8, 12, generator=g))
                b.put("l.1", "grad", torch.randn(6, 6, generator=g).to(torch.bfloat16))
        st.put("adamw", 1, "l.0", "grad", torch.randn(8, 12, generator=g))
    return str(path)


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_ls(store):
    code, out, _ = run("ls", store)
    assert code == 0 and "7 records" in out and "muon: 6 records, steps 1..3" in out
    code, out, _ = run("ls", store, "--run", "muon")
    assert code == 0 and "l.1" in out and "1..3" in out


def test_show_by_id_and_by_query(store):
    code, out, _ = run("show", store, "--id", "1")
    assert code == 0 and "run 'muon' step 1 layer 'l.0'" in out and "stable_rank" in out
    assert "ns_error_pred" in out
    code, out, _ = run("show", store, "--run", "muon", "--step", "2", "--layer", "l.1", "--kind",
                       "grad", "--no-spectrum")
    assert code == 0 and "bfloat16" in out and "stable_rank" not in out
    code, _, err = run("show", store, "--run", "muon", "--step", "2", "--layer", "l.*",
                       "--kind", "grad")
    assert code == 1 and "2 records match" in err
    code, _, err = run("show", store, "--run", "muon")
    assert code == 1 and "missing --step --layer --kind" in err
    code, _, err = run("show", store, "--id", "999")
    assert code == 1 and "no record with id 999" in err


def test_analyze(store, tmp_path):
    code, out, err = run("analyze", store, "--run", "muon", "--layer", "l.0", "--out",
                         str(tmp_path / "an"), "--methods", "none", "R", "--no-progress")
    assert code == 0, err
    assert "3 matrices × 2 balancings → 6 rows" in out
    assert {p.name for p in (tmp_path / "an").iterdir()} == {
        "equilibration.csv", "summary.csv", "equilibration.png", "equilibration.pdf"}


def test_export_safetensors_file_folder_and_npz(store, tmp_path):
    code, out, _ = run("export", store, "--out", str(tmp_path / "all.safetensors"))
    assert code == 0 and "exported 7 records" in out
    t = load_file(str(tmp_path / "all.safetensors"))
    with MatrixStore(store, mode="r") as st:
        rec = st.query(run="muon", step=2, layer="l.1")[0]
        assert torch.equal(t["muon/2/l.1/grad"], st.get(rec))
    assert (tmp_path / "all.index.csv").is_file()
    code, out, _ = run("export", store, "--out", str(tmp_path / "dir"), "--format", "npz",
                       "--step", "2:")
    assert code == 0 and "widened to float32" in out
    assert {p.name for p in (tmp_path / "dir").iterdir()} == {"muon.npz", "index.csv"}
    z = np.load(tmp_path / "dir" / "muon.npz")
    assert sorted(z.files) == ["muon/2/l.0/grad", "muon/2/l.1/grad", "muon/3/l.0/grad",
                               "muon/3/l.1/grad"]
    assert z["muon/3/l.1/grad"].dtype == np.float32
    with open(tmp_path / "dir" / "index.csv") as f:
        idx = {r["key"]: r for r in csv.DictReader(f)}
    assert idx["muon/3/l.1/grad"]["stored_dtype"] == "bfloat16"
    assert idx["muon/3/l.1/grad"]["exported_dtype"] == "float32"


def test_errors(store, tmp_path):
    code, _, err = run("ls", str(tmp_path / "missing"))
    assert code == 1 and "no matrix store" in err
    MatrixStore(tmp_path / "empty").close()
    code, out, _ = run("ls", str(tmp_path / "empty"))
    assert code == 0 and "(empty store)" in out
    code, _, err = run("analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert code == 1 and "is empty" in err
    code, _, err = run("ls", store, "--run", "nope")
    assert code == 1 and "'nope' is not in store" in err
    code, _, err = run("export", store, "--out", str(tmp_path / "x.npz"), "--kind", "update")
    assert code == 1 and "no record" in err and "matches" in err
    code, _, err = run("export", store, "--out", str(tmp_path / "x.npz"), "--step", "x:y")
    assert code == 1 and "--step" in err
    code, _, err = run("export", store, "--out", str(tmp_path / "x.npz"), "--format",
                       "safetensors")
    assert code == 1 and "does not match" in err


def test_parse_step_and_wiring(store):
    assert parse_step("5") == 5 and parse_step("3:") == slice(3, None)
    assert parse_step("0:10:2") == range(0, 10, 2)
    parser = argparse.ArgumentParser(prog="matbal")
    add_store_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["store", "ls", store])
    assert args.func(args) == 0


def test_check_and_repair_through_matbal(store, tmp_path, capsys):
    import shutil

    from matbal.cli import main as matbal_main

    assert matbal_main(["store", "check", store]) == 0
    assert "checked 4 data file(s), 7 tensor(s): OK" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    (copy / "catalog.sqlite").write_bytes(b"")
    assert matbal_main(["store", "check", str(copy)]) == 1
    assert "PROBLEM catalog.sqlite" in capsys.readouterr().out
    code, _, err = run("ls", str(copy))
    assert code == 1 and "damaged catalog" in err and "matbal store repair" in err
    assert matbal_main(["store", "repair", str(copy)]) == 0
    assert "7 record(s)" in capsys.readouterr().out
    code, out, _ = run("ls", str(copy))
    assert code == 0 and "7 records" in out
