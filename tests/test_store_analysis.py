"""analyze_store: equilibration rows over a small synthetic store, files, and clear errors."""
import csv
import doctest

import pytest
import torch

import matbal.instruments.store_analysis.analyze as A
import matbal.instruments.store_analysis.figures as F
import matbal.synthetic as syn
from matbal.analysis import equilibration_rows
from matbal.instruments import MatrixStore, StoreNotFoundError, UnknownRunError
from matbal.instruments.store_analysis import EmptyStoreError, NoMatchError, analyze_store




def _matrices():
    return {
        ("a.0", "grad"): syn.scale_mismatch(12, 20, row_range=(1e-2, 1e2), seed=0),
        ("a.1", "grad"): syn.prescribed_spectrum(16, 16, syn.geometric_spectrum(16, kappa=1e3),
                                                 seed=1),
        ("a.0", "momentum"): syn.scale_mismatch(12, 20, row_range=(1e-1, 1e1), seed=2),
    }


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("st") / "store"
    with MatrixStore(path, fsync=False) as st:
        for step in (1, 2):
            with st.batch("muon", step) as b:
                for (layer, kind), x in _matrices().items():
                    b.put(layer, kind, x.float() * step)
        st.put("reg", 1, "a.0", "grad", _matrices()[("a.0", "grad")].to(torch.bfloat16))
        st.put("reg", 1, "bias", "grad", torch.ones(5))
    return path


@pytest.mark.parametrize("mod", [A, F])
def test_doctests(mod):
    assert doctest.testmod(mod).failed == 0


def test_rows_equal_equilibration_rows_and_files_are_written(store_path, tmp_path):
    res = analyze_store(store_path, run="muon", kinds="grad", step=1, out=tmp_path / "out",
                        progress=False)
    assert len(res.rows) == 2 * 5 and not res.skipped
    ref = {(r["matrix"], r["balancing"]): r for r in equilibration_rows(
        {layer: x.float() for (layer, kind), x in _matrices().items() if kind == "grad"})}
    for r in res.rows:
        e = ref[(r["layer"], r["balancing"])]
        assert (r["run"], r["step"], r["kind"]) == ("muon", 1, "grad")
        for k in ("condition_number", "stable_rank", "x_min", "ns_error", "ns_error_pred"):
            assert r[k] == pytest.approx(e[k], rel=1e-9), k
    # R removes the row-scale mismatch: κ drops by orders of magnitude (EQ-1)
    kappa = {r["balancing"]: r["condition_number"] for r in res.rows if r["layer"] == "a.0"}
    assert kappa["R"] < kappa["none"] / 100
    for name in ("table", "summary", "png", "pdf"):
        assert res.files[name].stat().st_size > 0
    with open(res.files["table"]) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 10 and {"run", "layer", "balancing", "ns_error_pred"} <= set(table[0])
    with open(res.files["summary"]) as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 5 * 4  # balancings × metrics (one kind)


def test_all_kinds_bf16_widened_and_1d_skipped(store_path):
    res = analyze_store(MatrixStore(store_path, mode="r"), run="reg", methods=("none", "RACS"),
                        progress=False)
    assert [r["balancing"] for r in res.rows] == ["none", "RACS"]
    assert len(res.skipped) == 1 and "not a matrix" in res.skipped[0][1]
    res = analyze_store(store_path, run="muon", methods=("none",), progress=False)
    assert {r["kind"] for r in res.rows} == {"grad", "momentum"} and len(res.rows) == 6


def test_clear_errors(store_path, tmp_path):
    with pytest.raises(UnknownRunError, match="known runs"):
        analyze_store(store_path, run="nope", progress=False)
    with pytest.raises(NoMatchError, match="update"):
        analyze_store(store_path, kinds="update", progress=False)
    with pytest.raises(ValueError, match="methods"):
        analyze_store(store_path, methods=("R", "QR"), progress=False)
    with pytest.raises(StoreNotFoundError):
        analyze_store(tmp_path / "missing", progress=False)
    MatrixStore(tmp_path / "empty").close()
    with pytest.raises(EmptyStoreError, match="empty"):
        analyze_store(tmp_path / "empty", progress=False)
    with pytest.raises(TypeError, match="MatrixStore or a path"):
        analyze_store(3)
